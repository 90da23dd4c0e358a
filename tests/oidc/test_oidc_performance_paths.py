"""What the hot paths skip, held by tests: no form session on the JSON APIs, client changes reach every
process without a store read per request (issue 11, R-O1, R-N2)."""

from __future__ import annotations

import time

import pytest
from oidc_helpers import basic

from idp import create_app
from idp.db import kept_connection
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
        _drop_client(writer, "cc2")
        with reader.app_context():
            db.engine.dispose()


def test_a_token_written_on_its_own_is_at_once_introspectable_and_revocable_elsewhere(app, app_config) -> None:
    """R-O1, R-N2: a client_credentials token, written by one autocommit INSERT outside the request's
    transaction (issue 11), is known to another process as soon as the answer leaves, and revoking it
    there ends it here; nothing depends on the process that issued it staying alive."""
    if not app_config.get("redis_url"):
        pytest.skip("the token-alone path is PostgreSQL's")
    from idp.oidc import registration

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
        _drop_client(issuer, "cc3")
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
        db.session = test_session


# -- the token endpoint is answered before Flask's dispatch (idp/oidc/token_endpoint.py) ----------
def test_the_token_answer_keeps_every_header_a_view_gave_it(client, make_client) -> None:
    """R-O1, R-N3: a token (and a refused client) still carries no-store, Pragma, the CSP and the fixed security
    headers, with Authlib's WWW-Authenticate on the 401; other methods still get 405."""
    rp = make_client("lane1", grant_types=["client_credentials"], scope="profile")
    for path in ("/oauth/token", "/oidc/v1/token"):
        ok = client.post(path, data={"grant_type": "client_credentials"}, headers=basic(rp.client_id))
        refused = client.post(path, data={"grant_type": "client_credentials"}, headers=basic(rp.client_id, "wrong"))
        assert ok.status_code == 200 and ok.json["token_type"] == "Bearer"
        assert refused.status_code == 401 and refused.json["error"] == "invalid_client"
        assert refused.headers["WWW-Authenticate"].startswith("Basic ")
        for resp in (ok, refused):
            assert resp.headers["Cache-Control"] == "no-store" and resp.headers["Pragma"] == "no-cache"
            assert resp.headers.getlist("Cache-Control") == ["no-store"]  # once, not twice
            assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
            assert resp.headers["X-Content-Type-Options"] == "nosniff" and resp.headers["X-Frame-Options"] == "DENY"
            assert resp.headers["Content-Length"] == str(len(resp.data))
        assert client.get(path).status_code == 405


def test_an_outage_or_a_fault_at_the_token_endpoint_is_json_not_a_traceback(client, make_client, monkeypatch) -> None:
    """R-N2, R-N4: the store or the database down while issuing a token is a 503 with Retry-After; any other fault a
    JSON 500; nothing half-written stays behind and no traceback reaches the client."""
    import sqlalchemy.exc as sa_exc

    from idp.oidc import services
    from idp.oidc.models import Token
    from idp.store import StoreUnavailable

    rp = make_client("lane2", grant_types=["client_credentials"], scope="profile")
    faults = {503: StoreUnavailable("ConnectionError"), 500: RuntimeError("a bug with a secret in it")}
    faults_db = sa_exc.OperationalError("INSERT", {}, Exception("server closed the connection"))
    for status, fault in [*faults.items(), (503, faults_db)]:
        def fail(*args, _fault=fault, **kwargs):
            raise _fault

        monkeypatch.setattr(services, "save_token", fail)
        resp = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(rp.client_id))
        assert resp.status_code == status and resp.is_json, resp.data
        assert b"Traceback" not in resp.data and b"secret" not in resp.data
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        if status == 503:
            assert int(resp.headers["Retry-After"]) > 0
    monkeypatch.undo()
    assert db.session.query(Token).filter_by(client_id="lane2").count() == 0
    assert client.post("/oauth/token", data={"grant_type": "client_credentials"},
                       headers=basic(rp.client_id)).status_code == 200


def test_behind_a_trusted_proxy_the_token_endpoint_sees_the_client_address(app_config, monkeypatch) -> None:
    """R-N3: with ``trusted_proxies`` the token endpoint (answered before Flask's dispatch) reads the client's address
    and scheme from the proxy's headers, as every page does: the per-address limits and audit rows name the client."""
    from flask import Response, request

    from idp.oidc import views

    seen: list[tuple[str | None, str]] = []

    class Recording:
        def create_token_response(self) -> Response:
            seen.append((request.remote_addr, request.scheme))
            return Response('{"error":"invalid_client"}', 401, {"Content-Type": "application/json"})

    monkeypatch.setattr(views, "oauth", lambda: Recording())
    proxied = create_app(dict(app_config, trusted_proxies=1))
    try:
        resp = proxied.test_client().post("/oauth/token", data={"grant_type": "client_credentials"},
                                          headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
        assert resp.status_code == 401
        assert seen == [("203.0.113.7", "https")]
    finally:
        with proxied.app_context():
            db.engine.dispose()


def test_an_authorization_with_a_session_reads_account_and_consent_in_one_statement(client, rp, account) -> None:
    """Issue 11, R-L4: a signed-in person's remembered consent costs one SELECT (account and consent together); the
    code still comes, and a scope never granted still asks."""
    from helpers import sign_in, sql_statements
    from oidc_helpers import authorize_params, get_code, query

    sign_in(client, account)
    get_code(client, rp, scope="openid profile")  # consents once
    with sql_statements() as statements:
        params, _ = authorize_params(rp, scope="openid profile")
        resp = client.get("/oauth/authorize", query_string=params)
    assert resp.status_code == 302 and "code" in query(resp.headers["Location"])
    selects = [s for s in statements if s.startswith("SELECT")]
    assert len(selects) == 1 and "FROM account LEFT OUTER JOIN oauth_consent" in selects[0], selects
    params, _ = authorize_params(rp, scope="openid profile phone")
    assert client.get("/oauth/authorize", query_string=params).status_code == 200  # asks for the new scope


def test_token_rows_go_on_a_connection_the_worker_keeps_and_a_broken_one_is_replaced(app, app_config) -> None:
    """Issue 11: a token written on its own goes on one connection the thread keeps for token rows
    (no pool check-out per grant): the same server session grant after grant, outside the pool.
    When that connection breaks (the server ended it), the grant that meets it is a JSON 503 with
    Retry-After, never a 500, and the next grant gets a new connection; disposing the engine closes it."""
    if not app_config.get("redis_url"):
        pytest.skip("the token-alone path is PostgreSQL's")
    import sqlalchemy as sa

    from idp.oidc import registration

    test_session, db.session = db.session, db._make_scoped_session({})  # real commits on the pool
    issuer = create_app(app_config)
    client = issuer.test_client()
    try:
        with issuer.app_context():
            secret = registration.create_client({"name": "CC", "grant_types": ["client_credentials"],
                                                 "scope": "profile"}, "op1", client_id="cc4").secret
            db.session.commit()
            engine = db.engine

        def grant() -> tuple[int, dict, int | None]:
            resp = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=basic("cc4", secret))
            kept = kept_connection(engine)
            return resp.status_code, dict(resp.headers), kept.info.backend_pid if kept else None

        status, _, first = grant()
        assert status == 200 and first is not None
        checked_out = engine.pool.checkedout()
        status, _, again = grant()
        assert (status, again) == (200, first)  # the same session on the server
        assert engine.pool.checkedout() == checked_out  # nothing taken from the pool for it
        with engine.connect() as conn:  # the server ends that session (a restart, a failover)
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            conn.commit()
        time.sleep(0.2)
        status, headers, _ = grant()
        assert status == 503 and headers.get("Retry-After")
        status, _, replaced = grant()
        assert status == 200 and replaced not in (None, first)
        kept = kept_connection(engine)
        with issuer.app_context():
            db.engine.dispose()
        assert kept.closed and kept_connection(engine) is None
    finally:
        _drop_client(issuer, "cc4")
        db.session = test_session


def _drop_client(app, client_id: str) -> None:
    """Remove what a test committed for real for ``client_id`` (its tokens, the client, their audit
    rows) and close the app's connections."""
    from idp.oidc.models import Client, Token
    from idp.security.models import AuditEvent

    with app.app_context():
        db.session.execute(db.delete(Token).where(Token.client_id == client_id))
        db.session.execute(db.delete(Client).where(Client.client_id == client_id))
        db.session.execute(db.delete(AuditEvent).where(AuditEvent.client_id == client_id))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def test_a_sign_in_reads_and_records_on_the_kept_connection_and_goes_on_to_the_app(app, app_config) -> None:
    """Issue 11, R-C5, R-N3: with sessions on the pool, a password sign-in reads its account, records
    ``last_login_at`` with its audit row (committed together, at once) and reads the app's consent on the
    connection the thread keeps, none of it through SQLAlchemy's engine, and answers with the app's code; the
    browser's next authorization reads its account and consent there too.
    When that connection breaks, the sign-in is a 503 page, not a 500, and the next one works."""
    if not app_config.get("redis_url"):
        pytest.skip("statements stand alone on PostgreSQL only")
    import re

    import sqlalchemy as sa
    from helpers import PASSWORD, csrf_from
    from oidc_helpers import REDIRECT, authorize_params

    from idp.accounts import services as accounts
    from idp.accounts.models import Account, UsedUsername
    from idp.oidc import registration
    from idp.oidc.models import Client
    from idp.security.models import AuditEvent

    test_session, db.session = db.session, db._make_scoped_session({})  # real commits on the pool
    issuer = create_app(app_config)
    try:
        with issuer.app_context():
            registration.create_client({"name": "Kept", "redirect_uris": [REDIRECT], "skip_consent": True,
                                        "scope": "openid profile"}, "op1", client_id="kept1")
            accounts.create_account("kept.pupil", PASSWORD, name="王小明", actor="test")
            db.session.commit()
            engine = db.engine
            rp = db.session.get(Client, db.session.execute(sa.select(Client.id).filter_by(client_id="kept1")).scalar())
            params, _ = authorize_params(rp, scope="openid profile")
            db.session.remove()
        seen: list[str] = []
        sa.event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))

        browsers: list = []

        def sign_in() -> object:  # from a new browser
            browser = issuer.test_client()
            browsers.append(browser)
            page = browser.get("/oauth/authorize", query_string=params).get_data(as_text=True)  # the login page
            action = re.search(r'<form method="post" action="([^"]+)"', page).group(1).replace("&amp;", "&")
            seen.clear()
            return browser.post(action, data={"username": "kept.pupil", "password": PASSWORD,
                                              "csrf_token": csrf_from(page)})

        resp = sign_in()
        assert resp.status_code == 302 and resp.headers["Location"].startswith(REDIRECT + "?code="), resp.headers
        assert not [s for s in seen if re.search(r"\b(account|consent)\b", s)], seen  # none through the engine
        seen.clear()  # the same browser, signed in: the next authorization reads account and consent alone too
        again = browsers[-1].get("/oauth/authorize", query_string=dict(params, state="second"))
        assert again.status_code == 302 and again.headers["Location"].startswith(REDIRECT + "?code=")
        assert not [s for s in seen if re.search(r"\b(account|consent)\b", s)], seen
        with engine.connect() as other:  # committed, as another process sees it
            last = other.execute(sa.select(Account.last_login_at).filter_by(username="kept.pupil")).scalar()
            events = other.execute(sa.select(AuditEvent.event).filter_by(actor="kept.pupil")).scalars().all()
        assert last is not None and "login.success" in events
        pid = kept_connection(engine).info.backend_pid
        with engine.connect() as conn:  # the server ends that session (a restart, a failover)
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            conn.commit()
        time.sleep(0.2)
        broken = sign_in()
        assert broken.status_code == 503, broken.get_data(as_text=True)[:3000]
        again = sign_in()
        assert again.status_code == 302 and again.headers["Location"].startswith(REDIRECT + "?code=")
        assert kept_connection(engine).info.backend_pid != pid
    finally:
        with issuer.app_context():
            db.session.execute(db.delete(AuditEvent).where(AuditEvent.actor == "kept.pupil"))
            db.session.execute(db.delete(UsedUsername).where(UsedUsername.username == "kept.pupil"))
            db.session.execute(db.delete(Account).where(Account.username == "kept.pupil"))
            db.session.commit()
        _drop_client(issuer, "kept1")
        db.session = test_session
