"""Declarative base with a constraint naming convention (so Alembic can name and drop constraints),
and the transaction edge every view and command uses."""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

from flask import Flask
from sqlalchemy import DateTime, MetaData, event, func
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


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
    from psycopg.types.json import Json
    from sqlalchemy import exc as sa_exc

    parts, values = [], {}
    if driver.autocommit and driver.info.transaction_status == TransactionStatus.IDLE:
        parts.append("BEGIN")  # the deferred BEGIN (``defer_begin``), in the same round trip
    for i, (statement, params) in enumerate(writes):
        sql, json_names = _client_side_sql(connection.dialect, statement, tuple(params))
        parts.append(_PARAM.sub(lambda m, i=i: f"%(w{i}_{m.group(1)})s", sql))
        for name in _PARAM.findall(sql):
            value = params[name]  # every parameter is given: no column default is applied here
            values[f"w{i}_{name}"] = Json(value) if name in json_names and value is not None else value
    sql = "; ".join(parts)
    try:
        with ClientCursor(driver) as cursor:
            cursor.execute(sql, values)
    except OperationalError as exc:  # as SQLAlchemy reports it: the app's handler answers 503
        raise sa_exc.OperationalError(sql, None, exc) from exc


@functools.lru_cache(maxsize=64)
def _client_side_sql(dialect: Any, statement: Any, keys: tuple[str, ...]) -> tuple[str, frozenset[str]]:
    """The statement as the driver runs it (named parameters; an INSERT names the given columns
    only), and the names of its JSON parameters."""
    from sqlalchemy.types import JSON

    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    return str(compiled), frozenset(name for name, bind in compiled.binds.items()
                                    if isinstance(bind.type, JSON))


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
