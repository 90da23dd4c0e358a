"""Authorization code flow with PKCE, ID token, and the negative cases of issue 2 item 13 (R-O1)."""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import unquote

from helpers import PASSWORD
from joserfc import jwt
from joserfc.jwk import KeySet
from oidc_helpers import (
    REDIRECT,
    SECRET,
    Flow,
    authorize_params,
    basic,
    csrf_token_from,
    get_code,
    query,
    redeem,
    sign_in,
)

from idp.extensions import store
from idp.oidc import services
from idp.oidc.models import Token
from idp.security.models import AuditEvent


def _jwks(client) -> KeySet:
    return KeySet.import_key_set(client.get("/oauth/jwks").get_json())


def _events(name: str) -> list:
    from idp.extensions import db

    return db.session.execute(db.select(AuditEvent).filter_by(event=name)).scalars().all()


def test_full_code_flow_with_pkce(client, rp, account) -> None:
    """R-O1: a signed-in person gets a code (with state and iss) and the client gets tokens for it."""
    sign_in(client, account)
    flow = get_code(client, rp)
    resp = redeem(client, rp, flow)
    assert resp.status_code == 200, resp.get_json()
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token"] and body["access_token"] and body["id_token"]
    assert set(body["scope"].split()) == {"openid", "profile", "email"}
    info = client.get("/oauth/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert info.status_code == 200
    claims = info.get_json()
    assert claims["name"] == "王小明"
    assert claims["preferred_username"] == "student1"
    assert claims["email"] == "student1@example.edu.tw" and claims["email_verified"] is True
    assert "phone_number" not in claims
    post = client.post("/oauth/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert post.get_json() == claims


def test_a_code_is_refused_once_the_sign_in_it_came_from_has_ended(client, rp, account) -> None:
    """R-O1, R-N3: the token endpoint does not read the account again (the code carries its ID token's
    claims), so it checks that the sign-in is still live: signed out (or a password reset, or the
    account disabled, which end every session) between the code and its redemption, the code gets
    invalid_grant and no token."""
    from idp.login import sessions

    sid = sign_in(client, account)
    flow = get_code(client, rp)
    sessions.end_session(sid)
    resp = redeem(client, rp, flow)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    assert "access_token" not in resp.get_json()


def test_the_id_token_says_what_the_account_said_when_the_code_was_issued(client, rp, account) -> None:
    """R-O4: the ID token's profile claims come with the code, from the account as it was then, and
    match userinfo's."""
    sign_in(client, account)
    flow = get_code(client, rp)
    body = redeem(client, rp, flow).get_json()
    claims = jwt.decode(body["id_token"], KeySet.import_key_set(client.get("/oauth/jwks").get_json())).claims
    assert claims["name"] == "王小明" and claims["preferred_username"] == account.username
    info = client.get("/oauth/userinfo", headers={"Authorization": "Bearer " + body["access_token"]}).get_json()
    assert {k: claims[k] for k in ("sub", "name", "preferred_username", "email")} == \
        {k: info[k] for k in ("sub", "name", "preferred_username", "email")}


def test_authorization_response_carries_iss(client, rp, account) -> None:
    """R-O1: RFC 9207 iss is in the authorization response."""
    sign_in(client, account)
    params, _ = authorize_params(rp)
    client.get("/oauth/authorize", query_string=params)  # consent page
    flow = get_code(client, rp)
    assert flow.code
    resp = client.get("/oauth/authorize", query_string=authorize_params(rp)[0])
    assert query(resp.headers["Location"])["iss"] == "http://localhost"


def test_id_token_claims_and_signature(client, rp, account, link_person) -> None:
    """R-O1: the ID token has iss, sub, aud list, integer times, nonce, acr, amr, sid, at_hash, jti and a kid."""
    link_person(account, "A123456789")  # a real-name account: acr cloud
    sid = sign_in(client, account)
    flow = get_code(client, rp)
    body = redeem(client, rp, flow).get_json()
    token = jwt.decode(body["id_token"], _jwks(client), algorithms=["RS256"])
    assert token.header["alg"] == "RS256" and token.header["kid"]
    c = token.claims
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": "http://localhost"},
                          aud={"essential": True, "value": rp.client_id},
                          nonce={"essential": True, "value": flow.nonce}).validate(c)
    assert c["aud"] == [rp.client_id]
    for name in ("exp", "iat", "auth_time"):
        assert isinstance(c[name], int)
    assert c["exp"] > c["iat"]
    assert c["acr"] == "urn:tw:edu:sso:acr:cloud"
    assert c["amr"] == ["pwd"]
    assert c["sid"] and c["sid"] != sid  # a keyed hash of the session, never the cookie's value
    assert c["jti"]
    digest = hashlib.sha256(body["access_token"].encode()).digest()
    import base64

    assert c["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert c["sub"] == client.get("/oauth/userinfo",
                                  headers={"Authorization": "Bearer " + body["access_token"]}).get_json()["sub"]


def test_tokens_are_unique_and_stored_hashed(client, rp, account) -> None:
    """R-O1: two tokens in the same second never collide, and the database holds only hashes."""
    sign_in(client, account)
    tokens = [redeem(client, rp, get_code(client, rp)).get_json() for _ in range(2)]
    assert tokens[0]["access_token"] != tokens[1]["access_token"]
    assert tokens[0]["refresh_token"] != tokens[1]["refresh_token"]
    from idp.extensions import db

    rows = db.session.execute(db.select(Token)).scalars().all()
    stored = {r.access_token_hash for r in rows} | {r.refresh_token_hash for r in rows}
    assert tokens[0]["access_token"] not in stored
    assert services.hash_token(tokens[0]["access_token"]) in stored


def test_unknown_client_gets_error_page_not_redirect(client, account) -> None:
    """R-O1: an unknown client gets an HTML error page before any login, never a redirect."""
    resp = client.get("/oauth/authorize", query_string={"response_type": "code", "client_id": "nope",
                                                        "redirect_uri": REDIRECT, "scope": "openid"})
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert resp.mimetype == "text/html"
    assert 'data-error="invalid_client"' in resp.get_data(as_text=True)


def test_unregistered_or_extra_path_redirect_uri_gets_error_page(client, rp) -> None:
    """R-O1: a redirect_uri that is not registered exactly (other host, extra path) is refused on a page."""
    for uri in ("https://evil.example/cb", REDIRECT + "/extra", REDIRECT + "?x=1"):
        params, _ = authorize_params(rp, redirect_uri=uri)
        resp = client.get("/oauth/authorize", query_string=params)
        assert resp.status_code == 400, uri
        assert "Location" not in resp.headers
        assert 'data-error="invalid_redirect_uri"' in resp.get_data(as_text=True)


def test_no_session_answers_with_the_login_page(client, rp) -> None:
    """R-O1, issue 11: without a session the request answers with the login page itself (no redirect to it), whose
    form posts to /login carrying the request as ``next``; a browser with a captcha due is sent to /login."""
    from urllib.parse import parse_qs, urlsplit

    params, _ = authorize_params(rp)
    resp = client.get("/oauth/authorize", query_string=params)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Location" not in resp.headers and 'type="password"' in html
    action = urlsplit(re.search(r'<form method="post" action="([^"]+)"', html).group(1).replace("&amp;", "&"))
    assert action.path == "/login"
    assert query("?" + urlsplit(parse_qs(action.query)["next"][0]).query)["state"] == params["state"]
    with client.session_transaction() as form_session:
        form_session["login_captcha"] = True
    again = client.get("/oauth/authorize", query_string=params)
    assert again.status_code == 302 and urlsplit(again.headers["Location"]).path == "/login"


def test_prompt_none_without_session_is_login_required(client, rp) -> None:
    """R-O1: prompt=none without a session → login_required at the redirect URI, with state and iss."""
    params, _ = authorize_params(rp, prompt="none")
    resp = client.get("/oauth/authorize", query_string=params)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(REDIRECT + "?")
    got = query(resp.headers["Location"])
    assert got["error"] == "login_required"
    assert got["state"] == params["state"]
    assert got["iss"] == "http://localhost"


def test_prompt_none_needing_consent_is_consent_required(client, rp, account) -> None:
    """R-L4: prompt=none when consent is still needed → consent_required at the redirect URI."""
    sign_in(client, account)
    params, _ = authorize_params(rp, prompt="none")
    got = query(client.get("/oauth/authorize", query_string=params).headers["Location"])
    assert got["error"] == "consent_required"


def test_prompt_login_and_max_age_force_reauthentication(client, rp, account) -> None:
    """R-O1: prompt=login and an exceeded max_age send a signed-in person back to the login page."""
    sign_in(client, account, auth_time=1_000)
    get_code(client, rp, max_age="100000000000")  # consent once; old session still good for a big max_age
    for extra in ({"prompt": "login"}, {"max_age": "60"}):
        params, _ = authorize_params(rp, **extra)
        resp = client.get("/oauth/authorize", query_string=params)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], extra
        assert "force=1" in resp.headers["Location"]
        # After signing in again, the same request goes through.
        sign_in(client, account)
        resp = client.get("/oauth/authorize", query_string=params)
        assert "code" in query(resp.headers["Location"]), extra
        sign_in(client, account, auth_time=1_000)


def test_other_errors_go_to_redirect_uri(client, rp, account) -> None:
    """R-O1: a bad request from a known client with a registered redirect URI is answered at that URI."""
    sign_in(client, account)
    params, _ = authorize_params(rp, response_type="token")
    got = query(client.get("/oauth/authorize", query_string=params).headers["Location"])
    assert got["error"] == "unsupported_response_type" and got["iss"] == "http://localhost"
    params, _ = authorize_params(rp, code_challenge_method="plain")
    got = query(client.get("/oauth/authorize", query_string=params).headers["Location"])
    assert got["error"] == "invalid_request"


def test_public_client_must_use_pkce(client, public_rp, account) -> None:
    """R-O1: a public client without a code_challenge is refused at its redirect URI."""
    sign_in(client, account)
    params, _ = authorize_params(public_rp, code_challenge=None, code_challenge_method=None)
    got = query(client.get("/oauth/authorize", query_string=params).headers["Location"])
    assert got["error"] == "invalid_request"


def test_public_client_flow_with_pkce(client, public_rp, account) -> None:
    """R-O1: a public client (auth method none) redeems its code with the PKCE verifier."""
    sign_in(client, account)
    flow = get_code(client, public_rp)
    resp = redeem(client, public_rp, flow, secret=None)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["id_token"]


def test_wrong_secret_is_refused(client, rp, account) -> None:
    """R-O1: a wrong client secret gets invalid_client."""
    sign_in(client, account)
    resp = redeem(client, rp, get_code(client, rp), secret="wrong")
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"


def test_pkce_verifier_mismatch_or_missing_is_refused(client, rp, account) -> None:
    """R-O1: a wrong or missing code_verifier gets invalid_grant / invalid_request."""
    sign_in(client, account)
    flow = get_code(client, rp)
    flow.verifier = "x" * 50
    resp = redeem(client, rp, flow)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    flow = get_code(client, rp)
    flow.verifier = None
    resp = redeem(client, rp, flow)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"


def test_code_reuse_is_refused_and_revokes_its_tokens(client, rp, account) -> None:
    """R-O1: a replayed code gets invalid_grant and the tokens issued from it stop working."""
    sign_in(client, account)
    flow = get_code(client, rp)
    first = redeem(client, rp, flow).get_json()
    again = redeem(client, rp, flow)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    info = client.get("/oauth/userinfo", headers={"Authorization": "Bearer " + first["access_token"]})
    assert info.status_code == 401
    refreshed = client.post("/oauth/token", headers=basic(rp.client_id),
                            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 400
    assert _events("code.replayed")


def test_expired_code_is_refused(client, rp, account) -> None:
    """R-O1: a code past its lifetime gets invalid_grant."""
    sign_in(client, account)
    flow = get_code(client, rp)
    key = services.CODE_KEY + services.hash_token(flow.code)
    data = store().get_json(key)
    data["exp"] = data["exp"] - 3600  # as if the code lifetime had passed
    store().set(key, json.dumps(data), 60)
    resp = redeem(client, rp, flow)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"


def test_code_bound_to_client_and_redirect_uri(client, rp, make_client, account) -> None:
    """R-O1: another client cannot redeem the code, nor can a different redirect_uri."""
    other = make_client("rp2", secret=SECRET)
    sign_in(client, account)
    flow = get_code(client, rp)
    resp = redeem(client, other, flow)
    assert resp.get_json()["error"] == "invalid_grant"
    flow = get_code(client, rp)
    resp = redeem(client, rp, flow, redirect_uri=REDIRECT + "/other")
    assert resp.get_json()["error"] == "invalid_grant"


def test_bad_max_age_goes_to_redirect_uri(client, rp, account) -> None:
    """R-O1: a malformed max_age is answered with invalid_request at the redirect URI."""
    sign_in(client, account)
    params, _ = authorize_params(rp, max_age="soon")
    got = query(client.get("/oauth/authorize", query_string=params).headers["Location"])
    assert got["error"] == "invalid_request" and got["iss"] == "http://localhost"


def test_login_hint_and_ui_locales_reach_the_login_page(client, rp) -> None:
    """R-O1: login_hint is handed to the login page and the request comes back intact after login."""
    params, _ = authorize_params(rp, login_hint="student1", ui_locales="en")
    location = unquote(unquote(client.get("/oauth/authorize", query_string=params).headers["Location"]))
    assert "student1" in location
    assert "ui_locales=en" in location and "client_id=rp1" in location


def test_confidential_client_cannot_skip_authentication(client, rp, account) -> None:
    """R-O1: a confidential client sending only its client_id (auth method none) is refused."""
    sign_in(client, account)
    resp = redeem(client, rp, get_code(client, rp), secret=None)
    assert resp.status_code in (400, 401) and resp.get_json()["error"] == "invalid_client"


def test_unknown_client_with_prompt_none_still_gets_a_page(client) -> None:
    """R-O1: even prompt=none never redirects for an unknown client."""
    resp = client.get("/oauth/authorize", query_string={"response_type": "code", "client_id": "ghost",
                                                        "redirect_uri": REDIRECT, "prompt": "none"})
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_whole_sign_in_through_the_hosted_login_page(client, rp, account) -> None:
    """R-O1, R-L1: authorize (the login page) → back to authorize → consent → code → tokens, as a browser does."""
    params, verifier = authorize_params(rp)
    login_page = client.get("/oauth/authorize", query_string=params)
    assert login_page.status_code == 200
    html = login_page.get_data(as_text=True)
    action = re.search(r'<form method="post" action="([^"]+)"', html).group(1).replace("&amp;", "&")
    resp = client.post(action, data={"csrf_token": csrf_token_from(html), "username": "student1",
                                     "password": PASSWORD, "force": ""})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    consent = client.get(resp.headers["Location"])
    assert consent.status_code == 200 and rp.name in consent.get_data(as_text=True)
    resp = client.post("/oauth/authorize", query_string=params,
                       data={"csrf_token": csrf_token_from(consent.get_data(as_text=True)), "allow": "y"})
    got = query(resp.headers["Location"])
    assert got["state"] == params["state"] and got["iss"] == "http://localhost"
    tokens = redeem(client, rp, Flow(got["code"], verifier, params["nonce"], params)).get_json()
    assert tokens["id_token"]
