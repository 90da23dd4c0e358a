"""Foundation: configuration is validated, the schema migrates, the store works."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from idp import create_app
from idp.config import ConfigError, load_settings
from idp.extensions import db
from idp.security.models import AuditEvent


def test_production_refuses_default_secret() -> None:
    """R-N2: production does not start with the default secret key."""
    with pytest.raises(ConfigError, match="IDP_SECRET_KEY"):
        load_settings({"IDP_CONFIG": "production.example"}, environ={})


def test_production_refuses_plain_http_issuer() -> None:
    """R-N2: production needs an https issuer unless it is loopback."""
    env = {"IDP_SECRET_KEY": "x" * 40, "IDP_SUBJECT_SECRET": "y" * 40, "IDP_ISSUER": "http://sso.example.edu.tw"}
    with pytest.raises(ConfigError, match="https issuer"):
        load_settings({"IDP_CONFIG": "production.example"}, environ=env)


def test_production_refuses_missing_redis() -> None:
    """R-N2: production needs Redis so several processes share one state."""
    env = {"IDP_SECRET_KEY": "x" * 40, "IDP_SUBJECT_SECRET": "y" * 40, "IDP_REDIS_URL": ""}
    with pytest.raises(ConfigError, match="IDP_REDIS_URL"):
        load_settings({"IDP_CONFIG": "production.example"}, environ=env)


def test_environment_variable_overrides_and_types() -> None:
    """R-N1: IDP_* variables override files and are typed; a bad value names its key."""
    s = load_settings({"IDP_CONFIG": "testing"}, environ={"IDP_ACCESS_TOKEN_LIFETIME": "120"})
    assert s.access_token_lifetime == 120
    with pytest.raises(ConfigError, match="access_token_lifetime"):
        load_settings({"IDP_CONFIG": "testing"}, environ={"IDP_ACCESS_TOKEN_LIFETIME": "soon"})


def test_store_code_is_redeemed_once(app) -> None:
    """R-N2: getdel hands a value to exactly one caller."""
    store = app.extensions["idp.store"]
    store.set("k", "v", 10)
    assert store.getdel("k") == b"v"
    assert store.getdel("k") is None


# -- the transaction edge (issue 10 "make room" item 1) ----------------------------------------
def _app_with_routes(app_config: dict) -> Flask:  # its own engine: it commits for real (cleaned up)
    """An app with two throwaway views: one that forgets to commit, one that fails half-way."""
    from idp.db import commit
    from idp.errors import IdpError
    from idp.security import audit

    app = create_app(app_config)

    @app.get("/_test/forgets-commit")
    def forgets_commit() -> str:
        audit.record("test.written")
        return "ok"

    @app.get("/_test/fails-half-way")
    def fails_half_way() -> str:
        audit.record("test.first-half")
        db.session.flush()
        raise IdpError("the second half failed")

    @app.get("/_test/commits")
    def commits() -> str:
        audit.record("test.committed")
        commit()
        return "ok"

    return app


def _audit_rows(app: Flask, event: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.event == event))


def test_a_view_that_forgets_to_commit_is_caught(app: Flask, app_config: dict) -> None:
    """R-N4: a request ending with uncommitted writes is a bug the test configuration raises; nothing is kept."""
    app = _app_with_routes(app_config)
    client = app.test_client()
    with pytest.raises(RuntimeError, match="uncommitted writes"):
        client.get("/_test/forgets-commit")
    assert _audit_rows(app, "test.written") == 0
    with app.app_context():
        db.engine.dispose()


def test_a_flow_that_fails_half_way_leaves_nothing(app: Flask, app_config: dict) -> None:
    """R-N4: an error after some writes answers with a page and keeps none of them; a committed flow keeps its rows."""
    app = _app_with_routes(app_config)
    client = app.test_client()
    try:
        assert client.get("/_test/fails-half-way", headers={"Accept": "application/json"}).status_code == 400
        assert _audit_rows(app, "test.first-half") == 0
        assert client.get("/_test/commits").status_code == 200
        assert _audit_rows(app, "test.committed") == 1
    finally:
        with app.app_context():
            db.session.execute(sa.delete(AuditEvent).where(AuditEvent.event.like("test.%")))
            db.session.commit()
            db.engine.dispose()


def test_on_postgresql_a_read_opens_no_transaction_and_a_write_still_opens_one(app: Flask, app_config: dict) -> None:
    """Issue 11, R-N4: BEGIN is deferred to the first write (``idp.db.defer_begin``): a request that
    only reads sends neither BEGIN nor ROLLBACK, yet from the first write on, everything up to the
    rollback is one transaction, undone whole, the read before it included in nothing."""
    if not app_config.get("redis_url"):
        pytest.skip("the deferred BEGIN is PostgreSQL's (SQLite's driver begins on its own)")
    from psycopg.pq import TransactionStatus

    idle, in_transaction = TransactionStatus.IDLE, TransactionStatus.INTRANS
    with app.app_context(), db.engine.connect() as conn:  # the app's pool, as a request gets it
        driver = conn.connection.driver_connection
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        assert driver.info.transaction_status == idle  # no BEGIN went out for a read
        conn.execute(sa.text("CREATE TEMP TABLE deferred_begin_probe (x int)"))
        assert driver.info.transaction_status == in_transaction
        conn.execute(sa.text("INSERT INTO deferred_begin_probe VALUES (1)"))
        assert conn.execute(sa.text("SELECT count(*) FROM deferred_begin_probe")).scalar() == 1
        locked = conn.execute(sa.text("SELECT x FROM deferred_begin_probe FOR UPDATE")).all()
        assert locked == [(1,)]
        conn.rollback()
        assert driver.info.transaction_status == idle
        # Had each statement committed on its own, the table would still be there.
        assert conn.execute(sa.text("SELECT to_regclass('pg_temp.deferred_begin_probe')")).scalar() is None
    with app.app_context(), db.engine.connect() as conn:  # a lock is never taken outside a transaction
        driver = conn.connection.driver_connection
        conn.execute(sa.text("SELECT id FROM account LIMIT 0 FOR SHARE"))
        assert driver.info.transaction_status == in_transaction
        conn.rollback()


@pytest.mark.parametrize("ending", ["commit", "rollback"])
def test_writes_sent_together_keep_every_value_and_the_request_transaction(app: Flask, ending: str) -> None:
    """Issue 11: a sign-in's ``last_login_at`` and audit row go in one round trip on PostgreSQL
    (``idp.db.write_together``, parameters bound by psycopg on the client side). Every value arrives
    as given (quotes, ``%``, non-ASCII, an SQL-looking name, NULL, nested JSON, a time zone), and the
    writes stay in the request's transaction: a rollback takes them back, a commit keeps them."""
    import datetime as dt

    from idp.accounts import services as account_services
    from idp.db import commit, rollback, write_together
    from idp.security import audit

    actor = "O'Brien 王小明'); DROP TABLE account; --"
    at = dt.datetime(2026, 12, 2, 21, 0, 5, 123456, tzinfo=dt.UTC)
    with app.test_request_context(environ_base={"REMOTE_ADDR": "192.0.2.7"}):
        account = account_services.create_account("together1", None, name="together")
        commit()
        write_together([
            (account_services._SIGNED_IN_NOW, {"account_id": account.id, "at": at}),
            audit.row("test.together", actor=actor, account_id=account.id, note='a "quoted" 100% value',
                      nothing=None, nested={"list": [1, "二"], "flag": True}),
        ])
        commit() if ending == "commit" else rollback()
        db.session.expire_all()
        row = db.session.execute(sa.select(AuditEvent).where(AuditEvent.event == "test.together")).scalar_one_or_none()
        seen = db.session.get(type(account), account.id).last_login_at
        assert db.session.execute(sa.select(sa.func.count()).select_from(type(account))).scalar() >= 1
    if ending == "rollback":
        assert row is None and seen is None
        return
    assert row is not None
    assert (row.actor, row.ip) == (actor, "192.0.2.7")
    assert row.data == {"account_id": account.id, "note": 'a "quoted" 100% value', "nothing": None,
                        "nested": {"list": [1, "二"], "flag": True}}
    assert (seen if seen.tzinfo else seen.replace(tzinfo=dt.UTC)) == at
