"""What an outside probe of the provider found (issue 9), each held by a test that failed before the fix."""

from __future__ import annotations

import base64
import os
import secrets

import pytest
import sqlalchemy as sa
from flask import current_app
from oidc_helpers import SECRET, authorize_params, basic, get_code, query, redeem, sign_in

from idp import create_app
from idp.extensions import db
from idp.security.models import AuditEvent

TOKEN_PATHS = ("/oauth/token", "/oidc/v1/token", "/oauth/introspect", "/oauth/revoke")


def _events(name: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == name)))


# -- client authentication ----------------------------------------------------------------------
@pytest.mark.parametrize("path", TOKEN_PATHS)
def test_basic_header_that_is_not_utf8_is_a_401(client, rp, path) -> None:
    """R-N4: an Authorization: Basic header decoding to non-UTF-8 bytes is invalid_client (401), not a 500."""
    header = "Basic " + base64.b64encode(b"rp1:\xff\xfe\xfa").decode()
    resp = client.post(path, data={"grant_type": "client_credentials", "token": "x"},
                       headers={"Authorization": header})
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_client"


def test_two_client_authentications_in_one_request_are_refused(client, rp, make_client) -> None:
    """R-N3: Basic plus a body secret, or Basic for one client and client_id of another, is invalid_request."""
    make_client("rp2", grant_types=["client_credentials"], scope="profile")
    rp_cc = make_client("rp3", grant_types=["client_credentials"], scope="profile")
    both = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": rp_cc.client_id,
                                             "client_secret": SECRET}, headers=basic(rp_cc.client_id))
    assert both.status_code == 400 and both.get_json()["error"] == "invalid_request"
    other = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "rp2"},
                        headers=basic(rp_cc.client_id))
    assert other.status_code == 400 and other.get_json()["error"] == "invalid_request"
    alone = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(rp_cc.client_id))
    assert alone.status_code == 200


def test_wrong_client_secrets_are_limited_per_address_and_audited(app, client, make_client) -> None:
    """R-N3: guessing a client's secret is stopped after the allowance; the app's own server elsewhere goes on."""
    rp_cc = make_client("rp4", grant_types=["client_credentials"], scope="profile")
    allowance = app.extensions["idp.settings"].client_auth_failures_per_address
    guesser = app.test_client()
    guesser.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    for _ in range(allowance - 1):
        resp = guesser.post("/oauth/token", data={"grant_type": "client_credentials"},
                            headers=basic(rp_cc.client_id, secrets.token_urlsafe(12)))
        assert resp.status_code == 401
    for _ in range(3):
        stopped = guesser.post("/oauth/token", data={"grant_type": "client_credentials"},
                               headers=basic(rp_cc.client_id, secrets.token_urlsafe(12)))
        assert stopped.status_code == 429 and int(stopped.headers["Retry-After"]) > 0
        assert stopped.get_json()["error"] == "invalid_client"
    assert len(_events("client.auth_failure")) == allowance - 1  # past the allowance: no more rows
    assert all(e.client_id == "rp4" and SECRET not in str(e.data) for e in _events("client.auth_failure"))
    own = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(rp_cc.client_id))
    assert own.status_code == 200


# -- authorization requests -------------------------------------------------------------------
@pytest.mark.parametrize(("param", "error"), [("request", "request_not_supported"),
                                              ("request_uri", "request_uri_not_supported")])
def test_request_objects_are_refused_not_ignored(client, rp, account, param, error) -> None:
    """R-O1: request and request_uri get the errors OIDC Core §6 names, at the redirect URI."""
    sign_in(client, account)
    params, _ = authorize_params(rp, **{param: "eyJhbGciOiJub25lIn0.e30."})
    got = query(client.get("/oauth/authorize", query_string=params).headers["Location"])
    assert got["error"] == error and got["state"] == params["state"]


@pytest.mark.parametrize("prompt", ["create", "none login", "bogus consent"])
def test_unsupported_prompt_values_are_an_error(client, rp, account, prompt) -> None:
    """R-O1: a prompt value this provider does not honour is invalid_request, not silently ignored."""
    sign_in(client, account)
    params, _ = authorize_params(rp, prompt=prompt)
    got = query(client.get("/oauth/authorize", query_string=params).headers["Location"])
    assert got["error"] == "invalid_request"


def test_select_account_offers_the_login_page_empty(client, rp, account) -> None:
    """R-L1: prompt=select_account lets a signed-in person sign in as someone else (empty account field)."""
    sign_in(client, account)
    get_code(client, rp)
    params, _ = authorize_params(rp, prompt="select_account")
    resp = client.get("/oauth/authorize", query_string=params)
    assert "/login" in resp.headers["Location"] and "switch=1" in resp.headers["Location"]
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert f'value="{account.username}"' not in page and 'type="password"' in page


def test_max_age_zero_forces_a_fresh_login(client, rp, account) -> None:
    """R-O1: max_age=0 asks for the password even right after signing in (OIDC Core §3.1.2.1)."""
    sign_in(client, account)
    get_code(client, rp)
    params, _ = authorize_params(rp, max_age="0")
    resp = client.get("/oauth/authorize", query_string=params)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_a_code_presented_by_another_client_stays_good_for_its_owner(client, rp, make_client, account) -> None:
    """R-O1: a failed redemption (other client, wrong PKCE verifier) does not burn the owner's code."""
    thief = make_client("thief", redirect_uris=["https://thief.example.org/cb"])
    sign_in(client, account)
    flow = get_code(client, rp)
    stolen = client.post("/oauth/token", data={"grant_type": "authorization_code", "code": flow.code,
                                               "redirect_uri": rp.redirect_uris[0], "code_verifier": flow.verifier},
                         headers=basic(thief.client_id))
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"
    wrong = redeem(client, rp, flow, code_verifier=secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant"
    good = redeem(client, rp, flow)
    assert good.status_code == 200 and "id_token" in good.get_json()
    assert redeem(client, rp, flow).status_code == 400  # and still exactly once


# -- headers ------------------------------------------------------------------------------------
def _form_action(resp) -> str:
    policy = resp.headers["Content-Security-Policy"]
    return next(p.strip() for p in policy.split(";") if p.strip().startswith("form-action"))


def test_forms_may_only_lead_here_or_to_the_app_being_signed_in_to(client, rp, account) -> None:
    """R-N3: CSP form-action is this origin plus the registered redirect origin of the app signing in, no wildcard."""
    assert _form_action(client.get("/login")) == "form-action 'self'"
    params, _ = authorize_params(rp)
    login_page = client.get("/oauth/authorize", query_string=params)  # the login page, answered there
    assert login_page.status_code == 200 and _form_action(login_page) == "form-action 'self' https://rp.example.org"
    from urllib.parse import urlencode

    page = client.get("/login", query_string={"next": "/oauth/authorize?" + urlencode(params)})
    assert _form_action(page) == "form-action 'self' https://rp.example.org"
    unregistered = dict(params, redirect_uri="https://evil.example/cb")
    page = client.get("/login", query_string={"next": "/oauth/authorize?" + urlencode(unregistered)})
    assert _form_action(page) == "form-action 'self'"
    sign_in(client, account)
    consent = client.get("/oauth/authorize", query_string=params)
    assert consent.status_code == 200 and _form_action(consent) == "form-action 'self' https://rp.example.org"


NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


def test_a_browsers_sign_in_continues_to_the_app_without_a_form_redirect(client, rp, account) -> None:
    """R-N3, R-L4: Chromium checks form-action on every redirect after a form post, so an app whose
    callback sends the browser on to another of its hosts (or a county's sign-in whose relying party
    sends it on to the app) would be blocked. A browser's sign-in post that leads to /oauth/ gets a
    page continuing there by itself, with the new session's cookie; scripts still get the redirect."""
    from urllib.parse import urlencode

    from helpers import csrf_token

    params, _ = authorize_params(rp)
    next_url = "/oauth/authorize?" + urlencode(params)
    form = {"username": account.username, "password": "Correct-Horse-9", "next": next_url,
            "csrf_token": csrf_token(client, "/login?" + urlencode({"next": next_url}))}
    resp = client.post("/login", data=form, headers=NAVIGATE)
    assert resp.status_code == 200 and "Location" not in resp.headers
    html = resp.get_data(as_text=True)
    assert f'http-equiv="refresh" content="0;url={next_url.replace("&", "&amp;")}"' in html
    assert 'id="continue"' in html
    assert any(c.startswith("idp_sso=") for c in resp.headers.getlist("Set-Cookie"))
    assert resp.headers["Cache-Control"] == "no-store"
    # The continued request is signed in: it reaches the consent page.
    assert client.get(next_url).status_code == 200


def test_scripts_and_same_origin_posts_keep_their_redirects(client, rp, account) -> None:
    """R-N4: without Sec-Fetch-Mode: navigate (a script, a relying party's server) the answer stays a
    redirect, and a browser's post that stays on this origin (the account page) is redirected as before."""
    from helpers import login

    assert login(client, account.username, next_url="/oauth/authorize?x=1").status_code == 302
    client.post("/logout", data={})
    from helpers import csrf_token

    resp = client.post("/login", headers=NAVIGATE, data={
        "username": account.username, "password": "Correct-Horse-9", "next": "/account/",
        "csrf_token": csrf_token(client, "/login?force=1")})
    assert resp.status_code == 302 and resp.headers["Location"] == "/account/"


def test_hsts_only_with_an_https_issuer(app_config, client) -> None:
    """R-N3: Strict-Transport-Security is sent when the issuer is https (pages and published documents)."""
    assert "Strict-Transport-Security" not in client.get("/login").headers
    app = create_app({**app_config, "issuer": "https://sso.example.edu.tw"})
    https = app.test_client()
    for path in ("/login", "/.well-known/openid-configuration"):
        assert https.get(path, base_url="https://sso.example.edu.tw").headers["Strict-Transport-Security"] == \
            "max-age=31536000"


# -- back-channel logout in production ----------------------------------------------------------
@pytest.fixture
def production(app_config):
    """An app configured as production (PostgreSQL + Redis of the test run, real-looking secrets)."""
    if not app_config.get("redis_url"):
        pytest.skip("production settings need PostgreSQL and Redis")
    b64 = base64.b64encode(os.urandom(32)).decode()
    app = create_app({**app_config, "env": "production", "issuer": "https://sso.example.edu.tw",
                      "secret_key": secrets.token_urlsafe(48), "subject_secret": secrets.token_urlsafe(48),
                      "identity_index_key": b64, "identity_encryption_keys": f"k1:{b64}",
                      "identity_current_key_id": "k1"})
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("uri", ["https://127.0.0.1/bc", "https://10.1.2.3/bc", "https://192.168.0.9/bc",
                                 "http://localhost:8080/bc", "https://[::1]/bc"])
def test_production_refuses_backchannel_uris_on_internal_addresses(production, uri) -> None:
    """R-N3: in production a back-channel logout URI on loopback or a private network is refused at registration."""
    from idp.oidc import registration as services

    with production.test_request_context():
        with pytest.raises(services.InvalidRegistration) as refused:
            services.validate({"name": "App", "redirect_uris": ["https://app.example.edu.tw/cb"],
                               "backchannel_logout_uri": uri})
        assert refused.value.field == "backchannel_logout_uri"
        ok = services.validate({"name": "App", "redirect_uris": ["https://app.example.edu.tw/cb"],
                                "backchannel_logout_uri": "https://140.111.1.10/bc"})
        assert ok["backchannel_logout_uri"] == "https://140.111.1.10/bc"


def test_production_does_not_call_a_backchannel_uri_that_resolves_inside(production, caplog) -> None:
    """R-N3: a registered back-channel host resolving to loopback is not called in production (logged instead)."""
    import logging
    import threading

    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    from idp.oidc import logout
    from idp.oidc.models import Client

    received: list[str] = []
    server = make_server("127.0.0.1", 0, Request.application(lambda r: received.append("x") or Response("")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    caplog.set_level(logging.WARNING, logger="idp.oidc.logout")
    try:
        with production.app_context():
            client = Client(client_id="legacy-bc", name="Legacy", redirect_uris=["https://app.example.edu.tw/cb"],
                            backchannel_logout_uri=f"http://localhost:{server.server_port}/bc")
            db.session.add(client)
            db.session.flush()
            with production.test_request_context():
                assert logout.send_backchannel_logout("public-sid", None, ["legacy-bc"]) == 1
            current_app.extensions["idp.backchannel_pool"].shutdown(wait=True)
            db.session.rollback()
    finally:
        server.shutdown()
    assert received == []
    assert "private address" in caplog.text
