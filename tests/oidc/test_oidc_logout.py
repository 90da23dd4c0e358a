"""RP-initiated logout and back-channel logout (R-O1, R-L4)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from flask import current_app
from joserfc import jwt
from joserfc.jwk import KeySet
from oidc_helpers import authorize_params, csrf_token_from, get_code, query, redeem, sign_in
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from idp.extensions import db


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    """A tiny relying-party back-channel endpoint on a loopback port."""
    received: list[dict] = []

    @Request.application
    def app(request: Request) -> Response:
        received.append(request.form.to_dict())
        return Response("", status=200)

    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/backchannel", received
    finally:
        server.shutdown()
        thread.join()


def _id_token(client, rp, account) -> str:
    sign_in(client, account)
    return redeem(client, rp, get_code(client, rp)).get_json()["id_token"]


def _signed_in(client, rp) -> bool:
    resp = client.get("/oauth/authorize", query_string=authorize_params(rp)[0])
    return resp.status_code == 302 and "/login" not in resp.headers["Location"]  # not the login page, nor sent to it


def test_logout_with_registered_post_logout_redirect_uri(client, rp, account) -> None:
    """R-L4: logout with id_token_hint ends the session and returns to the registered URI with state."""
    hint = _id_token(client, rp, account)
    assert _signed_in(client, rp)
    resp = client.get("/oauth/logout", query_string={"id_token_hint": hint, "state": "s1",
                                                     "post_logout_redirect_uri": "https://rp.example.org/bye"})
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("https://rp.example.org/bye?")
    assert query(resp.headers["Location"])["state"] == "s1"
    assert not _signed_in(client, rp)


def test_logout_never_redirects_to_unregistered_uri(client, rp, account) -> None:
    """R-L4: an unregistered post_logout_redirect_uri is not followed; the person sees a signed-out page."""
    hint = _id_token(client, rp, account)
    resp = client.get("/oauth/logout", query_string={"id_token_hint": hint,
                                                     "post_logout_redirect_uri": "https://evil.example/bye"})
    assert resp.status_code == 200 and "Location" not in resp.headers
    assert not _signed_in(client, rp)


def test_logout_rejects_forged_id_token_hint(client, rp, account) -> None:
    """R-L4: an id_token_hint we did not sign is refused with a page and the session stays."""
    hint = _id_token(client, rp, account)
    head, body, sig = hint.split(".")
    forged = ".".join([head, body, sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB")])
    resp = client.get("/oauth/logout", query_string={"id_token_hint": forged,
                                                     "post_logout_redirect_uri": "https://rp.example.org/bye"})
    assert resp.status_code == 400 and "Location" not in resp.headers
    assert _signed_in(client, rp)


def _wait_for(received: list, n: int = 1, seconds: float = 5.0) -> list:
    """Back-channel calls are made off the request: wait for them (bounded)."""
    deadline = time.monotonic() + seconds
    while len(received) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return received


def test_logout_accepts_expired_id_token_hint(client, rp, account) -> None:
    """R-L4: an expired ID token of this session is still a valid hint (RP-Initiated Logout §2)."""
    from idp.login.sessions import public_sid

    sid = sign_in(client, account)
    get_code(client, rp)
    key = current_app.extensions["idp.keys"].signing_key("RS256")
    old = jwt.encode({"alg": "RS256", "kid": key.kid},
                     {"iss": "http://localhost", "aud": [rp.client_id], "sub": "x", "iat": 1000, "exp": 2000,
                      "sid": public_sid(sid)}, key.key)
    resp = client.get("/oauth/logout", query_string={"id_token_hint": old,
                                                     "post_logout_redirect_uri": "https://rp.example.org/bye"})
    assert resp.status_code == 302 and resp.headers["Location"] == "https://rp.example.org/bye"


def test_logout_without_hint_asks_for_confirmation(client, rp, account) -> None:
    """R-L4: without id_token_hint the person confirms (CSRF-protected) before being signed out."""
    sign_in(client, account)
    get_code(client, rp)
    page = client.get("/oauth/logout")
    assert page.status_code == 200 and _signed_in(client, rp)
    html = page.get_data(as_text=True)
    assert client.post("/oauth/logout", data={}).status_code == 400
    assert _signed_in(client, rp)
    resp = client.post("/oauth/logout", data={"csrf_token": csrf_token_from(html)})
    assert resp.status_code == 200
    assert not _signed_in(client, rp)


def test_backchannel_logout_token_delivered(client, make_client, account, receiver) -> None:
    """R-O1: each client of the session with a back-channel URI receives a signed logout token."""
    url, received = receiver
    rp = make_client("bc1", backchannel_logout_uri=url)
    quiet = make_client("bc2", redirect_uris=["https://quiet.example.org/cb"])
    sid = sign_in(client, account)
    hint = redeem(client, rp, get_code(client, rp)).get_json()["id_token"]
    redeem(client, quiet, get_code(client, quiet))
    sub = jwt.decode(hint, KeySet.import_key_set(client.get("/oauth/jwks").get_json())).claims["sub"]
    started = time.monotonic()
    client.get("/oauth/logout", query_string={"id_token_hint": hint})
    assert time.monotonic() - started < 5
    assert len(_wait_for(received)) == 1
    token = jwt.decode(received[0]["logout_token"], KeySet.import_key_set(client.get("/oauth/jwks").get_json()))
    assert token.header["kid"] and token.header["typ"] == "logout+jwt"
    c = token.claims
    assert c["iss"] == "http://localhost" and c["aud"] == [rp.client_id]
    from idp.login.sessions import public_sid

    assert c["sid"] == public_sid(sid) != sid and c["sub"] == sub
    assert c["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert "nonce" not in c and c["jti"] and isinstance(c["iat"], int)


def test_backchannel_failure_does_not_block_logout(client, make_client, account) -> None:
    """R-O1: a relying party that cannot be reached does not stop the logout."""
    rp = make_client("bc3", backchannel_logout_uri="http://127.0.0.1:9/unreachable")
    hint = _id_token(client, rp, account)
    resp = client.get("/oauth/logout", query_string={"id_token_hint": hint,
                                                     "post_logout_redirect_uri": "https://rp.example.org/bye"})
    assert resp.status_code == 302
    assert not _signed_in(client, rp)


def test_logout_from_the_idp_itself_notifies_relying_parties(app, client, make_client, account, receiver) -> None:
    """R-L4: ending the SSO session anywhere (the IdP's own logout) sends the back-channel logout token."""
    import importlib

    url, received = receiver
    rp = make_client("bc4", backchannel_logout_uri=url)
    sid = sign_in(client, account)
    get_code(client, rp)
    sessions = importlib.import_module("idp.login.sessions")
    with app.test_request_context("/logout"):
        assert rp.client_id in sessions.end_session(sid)
        db.session.commit()
    assert len(_wait_for(received)) == 1
    assert jwt.decode(received[0]["logout_token"],
                      KeySet.import_key_set(client.get("/oauth/jwks").get_json())).claims["sid"] == \
        sessions.public_sid(sid)


# -- issue 9: what a probe found ---------------------------------------------------------------
def test_the_sid_relying_parties_see_cannot_be_used_as_the_cookie(app, client, rp, account) -> None:
    """R-N3: the ID token's sid, sent back as the SSO cookie, signs nobody in (it is not the session id)."""
    hint = _id_token(client, rp, account)
    sid_claim = jwt.decode(hint, KeySet.import_key_set(client.get("/oauth/jwks").get_json())).claims["sid"]
    thief = app.test_client()
    thief.set_cookie(current_app.extensions["idp.settings"].sso_cookie, sid_claim, domain="localhost")
    assert not _signed_in(thief, rp)  # the login page
    from idp.oidc.models import Token

    stored = {t.sid for t in current_app.extensions["sqlalchemy"].session.query(Token).all()}
    assert stored == {sid_claim}  # the token table holds the public sid only


def test_someone_elses_id_token_hint_does_not_sign_a_person_out_unasked(app, client, rp, account, make_account) -> None:
    """R-L4: a hint from another session (anyone may hold an old ID token) gets the confirmation page."""
    other = app.test_client()
    hint = _id_token(other, rp, make_account("teacher1"))
    sign_in(client, account)
    get_code(client, rp)
    resp = client.get("/oauth/logout", query_string={"id_token_hint": hint,
                                                     "post_logout_redirect_uri": "https://rp.example.org/bye"})
    assert resp.status_code == 200 and 'name="csrf_token"' in resp.get_data(as_text=True)
    assert _signed_in(client, rp)
    # Its form may lead to the registered post-logout page, and nowhere else.
    assert "form-action 'self' https://rp.example.org;" in resp.headers["Content-Security-Policy"]


def test_logout_revokes_the_sessions_tokens_but_not_offline_ones(client, make_client, account) -> None:
    """R-L4: signing out ends the session's access and refresh tokens; an offline_access refresh token lives on."""
    rp = make_client("off1", scope="openid profile offline_access")
    sign_in(client, account)
    online = redeem(client, rp, get_code(client, rp, scope="openid profile")).get_json()
    offline = redeem(client, rp, get_code(client, rp, scope="openid offline_access")).get_json()
    client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/logout").get_data(as_text=True))})
    introspect = {t: client.post("/oauth/introspect", data={"token": t}, headers=_basic(rp)).get_json()["active"]
                  for t in (online["access_token"], online["refresh_token"], offline["access_token"],
                            offline["refresh_token"])}
    assert introspect == {online["access_token"]: False, online["refresh_token"]: False,
                          offline["access_token"]: False, offline["refresh_token"]: True}


def test_a_slow_backchannel_endpoint_does_not_delay_the_logout(client, make_client, account) -> None:
    """R-L4: relying parties are told off the request path: a receiver that takes 3 s does not hold the logout."""
    received: list[dict] = []

    @Request.application
    def slow(request: Request) -> Response:
        time.sleep(3)
        received.append(request.form.to_dict())
        return Response("", status=200)

    server = make_server("127.0.0.1", 0, slow, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rp = make_client("bc5", backchannel_logout_uri=f"http://127.0.0.1:{server.server_port}/bc")
        hint = _id_token(client, rp, account)
        started = time.monotonic()
        client.get("/oauth/logout", query_string={"id_token_hint": hint})
        assert time.monotonic() - started < 1.5
        assert len(_wait_for(received, seconds=6)) == 1
    finally:
        server.shutdown()


def _basic(rp) -> dict[str, str]:
    from oidc_helpers import basic

    return basic(rp.client_id)
