"""Refresh rotation, revocation, introspection, client_credentials, private_key_jwt, ES256, subjects (R-O1, R-O2)."""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from oidc_helpers import SECRET, basic, get_code, redeem, sign_in

from idp.extensions import db
from idp.security.models import AuditEvent


def _tokens(client, rp, account) -> dict:
    sign_in(client, account)
    return redeem(client, rp, get_code(client, rp)).get_json()


def _refresh(client, rp, refresh_token: str):
    return client.post("/oauth/token", headers=basic(rp.client_id),
                       data={"grant_type": "refresh_token", "refresh_token": refresh_token})


def _userinfo(client, access_token: str):
    return client.get("/oauth/userinfo", headers={"Authorization": "Bearer " + access_token})


def _introspect(client, rp, token: str, secret: str = SECRET):
    return client.post("/oauth/introspect", headers=basic(rp.client_id, secret), data={"token": token})


def test_refresh_rotates_and_reuse_revokes_family(client, rp, account) -> None:
    """R-O1: a refresh gives a new refresh token; presenting the old one again revokes the whole family."""
    first = _tokens(client, rp, account)
    second = _refresh(client, rp, first["refresh_token"])
    assert second.status_code == 200
    assert second.headers["Cache-Control"] == "no-store"
    second = second.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert _userinfo(client, second["access_token"]).status_code == 200
    reuse = _refresh(client, rp, first["refresh_token"])
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    # The whole family is gone: the newest tokens too.
    assert _userinfo(client, second["access_token"]).status_code == 401
    assert _refresh(client, rp, second["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert db.session.execute(db.select(AuditEvent).filter_by(event="refresh.reused")).scalars().first()


def test_revoked_token_refused_by_userinfo_and_inactive_at_introspection(client, rp, account) -> None:
    """R-O1: after revocation userinfo answers 401 with WWW-Authenticate and introspection says inactive."""
    tokens = _tokens(client, rp, account)
    active = _introspect(client, rp, tokens["access_token"]).get_json()
    assert active["active"] is True
    assert active["client_id"] == rp.client_id and active["token_type"] == "Bearer"
    assert active["iss"] == "http://localhost" and active["sub"] and active["aud"] == rp.client_id
    assert set(active["scope"].split()) == {"openid", "profile", "email"}
    assert active["exp"] - active["iat"] == 3600
    resp = client.post("/oauth/revoke", headers=basic(rp.client_id), data={"token": tokens["access_token"]})
    assert resp.status_code == 200
    info = _userinfo(client, tokens["access_token"])
    assert info.status_code == 401
    assert info.headers["WWW-Authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in info.headers["WWW-Authenticate"]
    assert _introspect(client, rp, tokens["access_token"]).get_json() == {"active": False}


def test_revoking_refresh_token_revokes_access_token(client, rp, account) -> None:
    """R-O1: RFC 7009 — revoking the refresh token also ends its access token."""
    tokens = _tokens(client, rp, account)
    client.post("/oauth/revoke", headers=basic(rp.client_id),
                data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"})
    assert _userinfo(client, tokens["access_token"]).status_code == 401
    assert _refresh(client, rp, tokens["refresh_token"]).status_code == 400


def test_userinfo_without_or_with_unknown_token_is_401(client) -> None:
    """R-O1: userinfo without a valid Bearer token is 401 with WWW-Authenticate."""
    for headers in ({}, {"Authorization": "Bearer nope"}):
        resp = client.get("/oauth/userinfo", headers=headers)
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"].lower().startswith("bearer")


def test_introspection_needs_an_authenticated_client(client, rp, make_client, account) -> None:
    """R-O1: introspection refuses unauthenticated callers and says inactive for other clients' tokens."""
    tokens = _tokens(client, rp, account)
    assert client.post("/oauth/introspect", data={"token": tokens["access_token"]}).status_code == 401
    assert _introspect(client, rp, tokens["access_token"], secret="wrong").status_code == 401
    other = make_client("rp2")
    assert _introspect(client, other, tokens["access_token"]).get_json() == {"active": False}
    assert _introspect(client, rp, "unknown").get_json() == {"active": False}


def test_expired_access_token_is_refused(client, rp, account) -> None:
    """R-O1: an access token past its lifetime is refused and inactive."""
    from idp.oidc import services

    tokens = _tokens(client, rp, account)
    row = services.find_token(tokens["access_token"])
    row.issued_at = int(time.time()) - 4000
    db.session.commit()
    assert _userinfo(client, tokens["access_token"]).status_code == 401
    assert _introspect(client, rp, tokens["access_token"]).get_json() == {"active": False}


def test_client_credentials_token_has_no_user(client, make_client) -> None:
    """R-O1: client_credentials gives an access token without a refresh token or a user."""
    svc = make_client("svc1", grant_types=["client_credentials"], scope="api:read")
    resp = client.post("/oauth/token", headers=basic(svc.client_id),
                       data={"grant_type": "client_credentials", "scope": "api:read"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert "refresh_token" not in body and "id_token" not in body
    info = _introspect(client, svc, body["access_token"]).get_json()
    assert info["active"] is True and "sub" not in info
    assert client.post("/oauth/token", headers=basic(svc.client_id),
                       data={"grant_type": "client_credentials", "scope": "openid"}).status_code == 400
    # A client not registered for the grant is refused.
    other = make_client("rp9")
    resp = client.post("/oauth/token", headers=basic(other.client_id), data={"grant_type": "client_credentials"})
    assert resp.get_json()["error"] == "unauthorized_client"


def test_password_and_implicit_are_not_supported(client, rp) -> None:
    """R-O1: no password grant."""
    resp = client.post("/oauth/token", headers=basic(rp.client_id),
                       data={"grant_type": "password", "username": "a", "password": "b"})
    assert resp.get_json()["error"] == "unsupported_grant_type"


def test_private_key_jwt_client_authentication(client, make_client, account) -> None:
    """R-O1: a client registered for private_key_jwt authenticates with a signed assertion, once."""
    key = RSAKey.generate_key(2048, parameters={"kid": "rp-key"}, private=True)
    rp = make_client("pkjwt", secret=None, token_endpoint_auth_method="private_key_jwt",
                     jwks=KeySet([key]).as_dict(private=False))
    sign_in(client, account)
    flow = get_code(client, rp)
    now = int(time.time())
    assertion = jwt.encode({"alg": "RS256", "kid": "rp-key"},
                           {"iss": rp.client_id, "sub": rp.client_id, "aud": "http://localhost/oauth/token",
                            "iat": now, "exp": now + 60, "jti": "one"}, key)
    data = {"grant_type": "authorization_code", "code": flow.code, "redirect_uri": rp.redirect_uris[0],
            "code_verifier": flow.verifier, "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    resp = client.post("/oauth/token", data=data)
    assert resp.status_code == 200, resp.get_json()
    # The same assertion again (jti replay) is refused.
    data["code"] = get_code(client, rp).code
    assert client.post("/oauth/token", data=data).get_json()["error"] == "invalid_client"
    # A secret does not work for this client.
    assert client.post("/oauth/token", headers=basic(rp.client_id), data={
        "grant_type": "authorization_code", "code": "x"}).status_code == 401


def test_es256_client_gets_es256_id_token(client, make_client, account) -> None:
    """R-O1: a client registered for ES256 gets ES256 ID tokens with the ES256 key's kid."""
    rp = make_client("es1", id_token_signed_response_alg="ES256")
    sign_in(client, account)
    body = redeem(client, rp, get_code(client, rp)).get_json()
    jwks = client.get("/oauth/jwks").get_json()
    token = jwt.decode(body["id_token"], KeySet.import_key_set(jwks), algorithms=["ES256"])
    assert token.header["alg"] == "ES256"
    assert token.header["kid"] in {k["kid"] for k in jwks["keys"] if k["alg"] == "ES256"}
    assert isinstance(KeySet.import_key_set(jwks).get_by_kid(token.header["kid"]), ECKey)
    assert len(token.claims["at_hash"]) == 22


def test_pairwise_and_public_subjects(client, make_client, account, make_account) -> None:
    """R-O2: pairwise subs differ between sectors and hide the account; public subs are shared."""
    a = make_client("pa", redirect_uris=["https://a.example.org/cb"])
    b = make_client("pb", redirect_uris=["https://b.example.org/cb"])
    a2 = make_client("pa2", redirect_uris=["https://a.example.org/other"])
    p1 = make_client("pub1", subject_type="public", redirect_uris=["https://c.example.org/cb"])
    p2 = make_client("pub2", subject_type="public", redirect_uris=["https://d.example.org/cb"])
    sign_in(client, account)

    def sub(rp) -> str:
        tokens = redeem(client, rp, get_code(client, rp)).get_json()
        return _userinfo(client, tokens["access_token"]).get_json()["sub"]

    assert sub(a) != sub(b)
    assert sub(a) == sub(a2)  # same sector (host)
    assert sub(p1) == sub(p2) == account.public_id
    assert str(account.id) != sub(a) and account.public_id != sub(a)
    other = make_account("student2")
    sign_in(client, other)
    assert sub(b) != sub(a)
