"""What the hot paths skip, held by tests: no form session on the JSON APIs, client changes reach every
process without a store read per request (issue 11, R-O1, R-N2)."""

from __future__ import annotations

import time

import pytest
from oidc_helpers import basic

from idp import create_app
from idp.extensions import db


def test_the_token_endpoint_neither_reads_nor_sets_the_form_cookie(client, make_client) -> None:
    """R-O1: a token answer carries no Set-Cookie and no Vary: Cookie, even for a browser that has a form session."""
    rp = make_client("cc1", grant_types=["client_credentials"], scope="profile")
    client.get("/login")  # the browser now has an idp_session cookie
    assert client.get_cookie("idp_session") is not None
    resp = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(rp.client_id))
    assert resp.status_code == 200
    assert "Set-Cookie" not in resp.headers and "Cookie" not in resp.headers.get("Vary", "")
    page = client.get("/login")
    assert "Cookie" in page.headers.get("Vary", "")  # people's pages still have their session


def test_a_rotated_secret_stops_working_in_another_process_at_once(app, app_config) -> None:
    """R-N2, R-O3: a process that cached a client refuses its old secret right after another process rotates it."""
    if not app_config.get("redis_url"):
        pytest.skip("two processes share state only through Redis")
    from idp.oidc import registration
    from idp.oidc.models import Client, Token

    writer, reader = create_app(app_config), create_app(app_config)  # two processes: real commits
    ask = reader.test_client()

    def token(secret: str) -> int:
        with reader.app_context():
            return ask.post("/oauth/token", data={"grant_type": "client_credentials"},
                            headers=basic("cc2", secret)).status_code

    try:
        with writer.app_context():
            old = registration.create_client({"name": "CC", "grant_types": ["client_credentials"],
                                              "scope": "profile"}, "op1", client_id="cc2").secret
            db.session.commit()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # until the reader listens to the change channel
            assert token(old) == 200
            cache = reader.extensions["idp.client_cache"]
            if cache.watcher is not None and cache.watcher.healthy:
                break
            time.sleep(0.05)
        assert token(old) == 200  # cached, and trusted without asking the store
        with writer.app_context():
            new = registration.rotate_secret("cc2", "op1").secret
            db.session.commit()
        deadline, status = time.monotonic() + 2, 200
        while status == 200 and time.monotonic() < deadline:
            status = token(old)
        assert status == 401
        assert token(new) == 200
    finally:
        with writer.app_context():
            db.session.execute(db.delete(Token).where(Token.client_id == "cc2"))
            db.session.execute(db.delete(Client).where(Client.client_id == "cc2"))
            from idp.security.models import AuditEvent

            db.session.execute(db.delete(AuditEvent).where(AuditEvent.client_id == "cc2"))
            db.session.commit()
            db.engine.dispose()
        with reader.app_context():
            db.engine.dispose()


def test_a_token_written_on_its_own_is_at_once_introspectable_and_revocable_elsewhere(app, app_config) -> None:
    """R-O1, R-N2: a client_credentials token, written by one autocommit INSERT outside the request's
    transaction (issue 11), is known to another process as soon as the answer leaves, and revoking it
    there ends it here; nothing depends on the process that issued it staying alive."""
    if not app_config.get("redis_url"):
        pytest.skip("the token-alone path is PostgreSQL's")
    from idp.oidc import registration
    from idp.oidc.models import Client, Token
    from idp.security.models import AuditEvent

    # Real commits on the pool, as in production (not the test's one connection, rolled back).
    test_session, db.session = db.session, db._make_scoped_session({})
    issuer, other = create_app(app_config), create_app(app_config)  # two processes
    try:
        with issuer.app_context():
            secret = registration.create_client({"name": "CC", "grant_types": ["client_credentials"],
                                                 "scope": "profile"}, "op1", client_id="cc3").secret
            db.session.commit()
        auth = basic("cc3", secret)
        with issuer.app_context():
            resp = issuer.test_client().post("/oauth/token", data={"grant_type": "client_credentials"}, headers=auth)
        assert resp.status_code == 200
        access = resp.get_json()["access_token"]
        with other.app_context():
            there = other.test_client().post("/oauth/introspect", data={"token": access}, headers=auth)
            assert there.get_json()["active"] is True and there.get_json()["client_id"] == "cc3"
            assert other.test_client().post("/oauth/revoke", data={"token": access}, headers=auth).status_code == 200
        with issuer.app_context():
            here = issuer.test_client().post("/oauth/introspect", data={"token": access}, headers=auth)
            assert here.get_json() == {"active": False}
    finally:
        with issuer.app_context():
            db.session.execute(db.delete(Token).where(Token.client_id == "cc3"))
            db.session.execute(db.delete(Client).where(Client.client_id == "cc3"))
            db.session.execute(db.delete(AuditEvent).where(AuditEvent.client_id == "cc3"))
            db.session.commit()
            db.session.remove()
            db.engine.dispose()
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
        db.session = test_session
