"""Shared fixtures: a real app on a real database and store, isolated per test.

Backends: PostgreSQL + Redis by default (IDP_TEST_DATABASE_URL / IDP_TEST_REDIS_URL, defaulting
to the machine's 127.0.0.1 servers; the database is created if missing). With
IDP_TEST_BACKEND=embedded the same tests run on SQLite + the in-process store. The schema is
migrated once per session with Alembic; each test runs inside a transaction rolled back at
its end (SQLite: tables emptied), and the store keys of the session's prefix are deleted.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy.session import Session as FlaskSession

from idp import create_app
from idp.extensions import db

BACKEND = os.environ.get("IDP_TEST_BACKEND", "postgres")
PG_URL = os.environ.get("IDP_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` if it does not exist; fail loudly if unreachable."""
    target = sa.engine.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": target.database}).scalar()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


def reset_schema(app: Flask) -> None:
    """Drop every table (including Alembic's) and migrate from scratch: the real upgrade path."""
    import flask_migrate

    with app.app_context():
        meta = sa.MetaData()
        meta.reflect(bind=db.engine)
        meta.drop_all(bind=db.engine)
        flask_migrate.upgrade()


@pytest.fixture(scope="session")
def keys_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="idp-keys-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def app_config(keys_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    config = {"IDP_CONFIG": "testing", "keys_dir": str(keys_dir), "store_prefix": f"idptest{os.getpid()}:"}
    if BACKEND == "postgres":
        ensure_database(PG_URL)
        config.update(database_url=PG_URL, redis_url=REDIS_URL)
    else:
        config.update(database_url=f"sqlite:///{tmp_path_factory.mktemp('db') / 'idp.sqlite'}", redis_url="")
    return config


@pytest.fixture(scope="session")
def app(app_config: dict) -> Iterator[Flask]:
    app = create_app(app_config)
    if BACKEND == "postgres":
        store = app.extensions["idp.store"]
        if not store.ping():
            pytest.fail(f"Redis is not reachable at {REDIS_URL}: start it (see .ci/run)")
    reset_schema(app)
    yield app
    with app.app_context():
        db.engine.dispose()


class _ConnectionSession(FlaskSession):
    """Flask-SQLAlchemy's Session picks the engine per mapper and ignores ``bind``; the test
    session must use the one connection whose outer transaction is rolled back."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):  # type: ignore[override]
        return bind if bind is not None else self.bind


@pytest.fixture(autouse=True)
def _isolate(request: pytest.FixtureRequest) -> Iterator[None]:
    """Roll back the database and clear the store after every test that uses the app."""
    if "app" not in request.fixturenames:
        yield
        return
    app: Flask = request.getfixturevalue("app")
    with app.app_context():
        if BACKEND == "postgres":
            connection = db.engine.connect()
            outer = connection.begin()
            original = db.session
            db.session = db._make_scoped_session(
                {"bind": connection, "join_transaction_mode": "create_savepoint", "class_": _ConnectionSession})
            try:
                yield
            finally:
                db.session.remove()
                db.session = original
                outer.rollback()
                connection.close()
        else:
            try:
                yield
            finally:
                db.session.remove()
                with db.engine.begin() as conn:
                    for table in reversed(db.metadata.sorted_tables):
                        conn.execute(table.delete())
    app.extensions["idp.store"].flush()
    cache = app.extensions.get("idp.client_cache")
    if cache is not None:  # snapshots of clients the rolled-back transaction made
        cache.changed()
    if BACKEND != "postgres":  # in-process rate-limit counters (Redis ones went with the prefix above)
        app.extensions["idp.ratelimiter"].storage.reset()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
