"""Declarative base with a constraint naming convention (so Alembic can name and drop constraints),
and the transaction edge every view and command uses."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import re
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask
from sqlalchemy import DateTime, Engine, MetaData, event, func
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_T = TypeVar("_T")
_M = TypeVar("_M")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TimestampMixin:
    """Creation and update times, kept by the database clock where it can."""

    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=func.now()
    )


# -- the transaction edge ----------------------------------------------------------------------
# Services add and flush; audit rows join the same transaction; the view or the command that
# called them commits, once, with ``commit()``. A flow that fails half-way leaves nothing: the
# error handlers roll back, and a request that ends with writes nobody committed is a bug, which
# the guard below reports (and, in the test configuration, raises, so a test catches it).
_WRITES = "idp_uncommitted_writes"


def commit(*, keep_loaded: bool = False) -> None:
    """Commit this request's (or command's) work: the one place a transaction ends well.

    ``keep_loaded``: the objects the session holds are not expired by this commit, for a request
    that goes on with rows it has just written itself (a sign-in answering the app's authorization
    request, issue 11): reading them again would cost a statement each and tell nothing new."""
    from idp.extensions import db

    if not db.session.registry.has():
        return  # no session was made (a client_credentials grant writes its token row on its own)
    session = db.session()
    if not session.in_transaction() and not (session.new or session.dirty or session.deleted):
        return  # a session, but nothing began in it
    if not keep_loaded:
        session.commit()
        return
    expiring, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expiring


def rollback() -> None:
    """Drop this request's uncommitted work (error handlers, failed flows)."""
    from idp.extensions import db

    db.session.rollback()


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, flush_context: Any) -> None:
    session.info[_WRITES] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: Any) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WRITES] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _ended(session: Session) -> None:
    session.info.pop(_WRITES, None)


def uncommitted_writes(session: Session) -> bool:
    """Did this session write something no commit or rollback has ended?"""
    return bool(session.info.get(_WRITES) or session.new or session.dirty or session.deleted)


# -- BEGIN deferred to the first write (PostgreSQL) ---------------------------------------------
# psycopg opens every transaction with a BEGIN of its own round trip, and a request that only read
# then ends it with a ROLLBACK: two of the three round trips of an authorization with a session
# (issue 11). Under READ COMMITTED, PostgreSQL's default, every statement of a transaction takes its
# own snapshot, so a read outside one sees what it would have seen inside: the connections run in
# autocommit, and the BEGIN is sent just before the first statement that is not a plain read (a
# write, a savepoint, a lock, anything else), from where on everything up to the commit or rollback
# is one transaction as before. A request that only reads sends no BEGIN and no ROLLBACK. Used
# only where the server's default isolation is READ COMMITTED, and never on a connection given an
# isolation level of its own (SQLAlchemy turns psycopg's autocommit off for those).
_ROW_LOCKS = (" FOR UPDATE", " FOR SHARE", " FOR NO KEY UPDATE", " FOR KEY SHARE")


def _plain_read(statement: str) -> bool:
    head = statement.lstrip()[:6].upper()
    if head != "SELECT":
        return False
    upper = statement.upper()
    return not any(lock in upper for lock in _ROW_LOCKS)


def defer_begin(engine: Any) -> None:
    """Install the deferred BEGIN on this PostgreSQL engine (see above)."""
    from psycopg.pq import TransactionStatus

    idle = TransactionStatus.IDLE

    def _autocommit(dbapi_connection: Any, *_: Any) -> None:
        # The dialect learnt the server's default isolation on the first connection, before this runs.
        if (engine.dialect.default_isolation_level == "READ COMMITTED" and not dbapi_connection.autocommit
                and dbapi_connection.info.transaction_status == idle):
            dbapi_connection.autocommit = True

    def _begin_before_write(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        driver = cursor.connection
        if (driver.autocommit and driver.info.transaction_status == idle and not _plain_read(statement)
                and conn.in_transaction() and conn.get_execution_options().get("isolation_level") is None):
            driver.execute("BEGIN")

    event.listen(engine, "connect", _autocommit)
    event.listen(engine, "checkout", _autocommit)
    event.listen(engine, "before_cursor_execute", _begin_before_write)


# -- several writes in one round trip (PostgreSQL) ------------------------------------------------
# A password sign-in writes ``last_login_at`` and its audit row and reads neither back. Sent through
# SQLAlchemy one by one, with the deferred BEGIN before them, they were three statements and about a
# fifth of the sign-in's CPU (issue 11): each statement costs SQLAlchemy's execution machinery on top
# of the driver's. ``write_together`` sends them, with the BEGIN where one is due, as one query in
# the request's transaction: the statements are compiled once by SQLAlchemy, their parameters bound
# by psycopg on the client side (``ClientCursor``: psycopg's own quoting, never string formatting
# of ours), and the commit ends them with everything else. Elsewhere (SQLite, or a connection given
# an isolation level of its own) it executes them one after the other on the session's connection.
_PARAM = re.compile(r"(?<!%)%\((\w+)\)s")


def write_together(writes: list[tuple[Any, dict[str, Any]]]) -> None:
    """Execute Core writes (no RETURNING) in this request's transaction, in order; on PostgreSQL
    in one round trip (see above). Nothing is read back."""
    from idp.extensions import db

    session = db.session()
    connection = session.connection()
    session.info[_WRITES] = True
    driver = connection.connection.driver_connection
    if connection.dialect.driver != "psycopg" or connection.get_execution_options().get("isolation_level"):
        for statement, params in writes:
            connection.execute(statement, params)
        return
    from psycopg import ClientCursor, OperationalError
    from psycopg.pq import TransactionStatus
    from sqlalchemy import exc as sa_exc

    begin = driver.autocommit and driver.info.transaction_status == TransactionStatus.IDLE
    sql, values = _one_query(connection.dialect, writes)
    if begin:
        sql = "BEGIN; " + sql  # the deferred BEGIN (``defer_begin``), in the same round trip
    try:
        with ClientCursor(driver) as cursor:
            cursor.execute(sql, values)
    except OperationalError as exc:  # as SQLAlchemy reports it: the app's handler answers 503
        raise sa_exc.OperationalError(sql, None, exc) from exc


def _one_query(dialect: Any, writes: list[tuple[Any, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    """The statements as one query for a ``ClientCursor``: each one's parameters renamed apart."""
    from psycopg.types.json import Json

    parts, values = [], {}
    for i, (statement, params) in enumerate(writes):
        sql, json_names = _client_side_sql(dialect, statement, tuple(params))
        parts.append(_PARAM.sub(lambda m, i=i: f"%(w{i}_{m.group(1)})s", sql))
        for name in _PARAM.findall(sql):
            value = params[name]  # every parameter is given: no column default is applied here
            values[f"w{i}_{name}"] = Json(value) if name in json_names and value is not None else value
    return "; ".join(parts), values


@functools.lru_cache(maxsize=64)
def _client_side_sql(dialect: Any, statement: Any, keys: tuple[str, ...]) -> tuple[str, frozenset[str]]:
    """The statement as the driver runs it (named parameters; an INSERT names the given columns
    only), and the names of its JSON parameters."""
    from sqlalchemy.types import JSON

    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    return str(compiled), frozenset(name for name, bind in compiled.binds.items()
                                    if isinstance(bind.type, JSON))


# -- statements that stand alone (PostgreSQL) -----------------------------------------------------
# Some statements are the request's only business with the database, or stand apart from the rest of
# it: a token row (a code or client_credentials grant writes nothing else), a sign-in's read of its
# account and, once the password is right, its ``last_login_at`` and audit row, an authorization's
# read of a consent. Taking a pooled connection for one of them and giving it back (the pool's
# check-out, its reset on return, the autocommit switch), SQLAlchemy's execution machinery and a
# separate COMMIT cost more CPU than the statement (issue 11). So each thread keeps one connection
# of its own for them, taken from the pool once and detached from it, in autocommit: one more
# connection per worker thread than the pool's size, always idle between statements (it holds no
# snapshot and no lock), replaced after ``KEPT_LIFETIME`` like the pool's (``pool_recycle``) and
# after any failure, never shared with a forked child, closed when its engine is disposed or
# collected. A failure there is SQLAlchemy's ``OperationalError``, as from the pool: a 503.
#
# Only on PostgreSQL through psycopg, with sessions made on the pool. Elsewhere (SQLite; a test's
# session bound to one connection inside an outer transaction, whose rows another connection could
# not see) the same calls go through the session, in the request's transaction.
KEPT_LIFETIME = 3600.0


class _KeptConnection:
    def __init__(self, engine: Engine) -> None:
        self.fairy = engine.raw_connection()
        self.driver = self.fairy.driver_connection
        self.fairy.detach()  # ours now: outside the pool's count, closed by us
        self.driver.autocommit = True
        self.pid, self.born = os.getpid(), time.monotonic()
        self._finalizer = weakref.finalize(engine, _close_quietly, self.fairy)

    def usable(self) -> bool:
        return (self.pid == os.getpid() and not self.driver.closed
                and time.monotonic() - self.born < KEPT_LIFETIME)

    def close(self) -> None:
        if self.pid == os.getpid():  # a forked child must not end its parent's session
            self._finalizer()
        else:
            self._finalizer.detach()


def _close_quietly(fairy: Any) -> None:
    with contextlib.suppress(Exception):  # already broken: nothing to end
        fairy.close()


class _Kept(threading.local):
    def __init__(self) -> None:
        self.by_engine: weakref.WeakKeyDictionary[Engine, _KeptConnection] = weakref.WeakKeyDictionary()


_kept = _Kept()


def _kept_connection(engine: Engine) -> _KeptConnection:
    kept = _kept.by_engine.get(engine)
    if kept is not None and kept.usable():
        return kept
    if kept is not None:
        kept.close()
    kept = _kept.by_engine[engine] = _KeptConnection(engine)
    if not event.contains(engine, "engine_disposed", _forget_kept):
        event.listen(engine, "engine_disposed", _forget_kept)
    return kept


def kept_connection(engine: Engine) -> Any:
    """This thread's kept connection to ``engine`` (its driver's), if it has one: for tests and
    diagnostics."""
    kept = _kept.by_engine.get(engine)
    return kept.driver if kept is not None else None


def _forget_kept(engine: Engine) -> None:
    """The engine's connections were closed (``dispose``): this thread's kept one goes with them."""
    kept = _kept.by_engine.pop(engine, None)
    if kept is not None:
        kept.close()


def alone_engine() -> Engine | None:
    """The engine statements may stand alone on (see above), or None: through the session. Asked of
    the session factory, so a request that needs no session does not make one."""
    from idp.extensions import db

    bind = db.session.session_factory.kw.get("bind") or db.engine
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql" and bind.dialect.driver == "psycopg":
        return bind
    return None


def run_alone(engine: Engine, sql: str, work: Callable[[Any], _T]) -> _T:
    """``work(driver connection)`` on this thread's kept connection; a connection that failed is
    never used again, and the error goes to the app's handlers as SQLAlchemy's."""
    import psycopg
    from sqlalchemy import exc as sa_exc

    kept = None
    try:
        kept = _kept_connection(engine)  # a new one may fail to connect: the same 503
        return work(kept.driver)
    except BaseException as exc:
        if kept is not None:
            _kept.by_engine.pop(engine, None)
            kept.close()
        if isinstance(exc, psycopg.OperationalError):  # as SQLAlchemy reports it: the 503 handler's
            raise sa_exc.OperationalError(sql, None, exc) from exc
        raise


def read_alone(statement: Any, params: dict[str, Any]) -> Any:
    """The first row of a Core SELECT (None: no row), read on its own: under READ COMMITTED a
    statement sees what it would see inside the request's transaction, so a read made before that
    transaction wrote anything needs none. After the request wrote something it has not committed,
    or where statements cannot stand alone, through the session (which sees those writes)."""
    from idp.extensions import db

    engine = alone_engine()
    if engine is None or (db.session.registry.has() and db.session().in_transaction()
                          and uncommitted_writes(db.session())):
        return db.session.execute(statement, params).first()
    sql = _client_side_sql(engine.dialect, statement, tuple(params))[0]
    return run_alone(engine, sql, lambda driver: driver.execute(sql, params).fetchone())


def write_alone(writes: list[tuple[Any, dict[str, Any]]]) -> None:
    """Core writes (no RETURNING) that belong together and to nothing else the request does: on
    PostgreSQL one query on the kept connection, run by the server as one implicit transaction (all
    or nothing) and committed when this returns, whatever the request does next; elsewhere in the
    request's transaction (``write_together``), committed with it."""
    engine = alone_engine()
    if engine is None:
        write_together(writes)
        return
    from psycopg import ClientCursor

    sql, values = _one_query(engine.dialect, writes)
    run_alone(engine, sql, lambda driver: ClientCursor(driver).execute(sql, values).close())


def adopt(model: type[_M], values: dict[str, Any]) -> _M:
    """The ORM object for a row read outside the session (``read_alone``), as the session would have
    loaded it: in its identity map (or the object already there, if this request loaded the row
    before), nothing marked changed, so it can be used, changed and committed like any other."""
    from sqlalchemy import inspect
    from sqlalchemy.orm import make_transient_to_detached

    from idp.extensions import db

    session = db.session()
    mapper = inspect(model)
    key = mapper.identity_key_from_primary_key([values[column.key] for column in mapper.primary_key])
    existing = session.identity_map.get(key)
    if existing is not None:
        return existing
    instance = model(**values)
    make_transient_to_detached(instance)
    session.add(instance)
    return instance


def init_app(app: Flask) -> None:
    import logging

    from idp.extensions import db

    log = logging.getLogger(__name__)
    strict = app.testing
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        defer_begin(engine)

    @app.teardown_request
    def _no_forgotten_writes(exc: BaseException | None) -> None:
        # A request that never used the database has no session to look at (none is made for it).
        if exc is not None or not db.session.registry.has() or not uncommitted_writes(db.session()):
            return
        db.session.rollback()
        log.error("request ended with uncommitted writes (rolled back): a view forgot idp.db.commit()")
        if strict:
            raise RuntimeError("request ended with uncommitted writes: a view forgot idp.db.commit()")
