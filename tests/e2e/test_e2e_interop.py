"""Interoperability with an OpenID Connect client library that is not Authlib: pyoidc (``oic``).

The provider runs as a real server process (`flask serve`) on PostgreSQL + Redis; pyoidc does discovery,
the code flow with PKCE, the token request, ID-token verification against the JWKS, userinfo
and refresh exactly as a third-party relying party would (issue 2 item 13).
"""

from __future__ import annotations

import base64
import json
import secrets

import pytest
import requests
from e2e_helpers import Browser, query
from jwkest import BadSignature
from oic.oauth2.message import ErrorResponse
from oic.oic import Client
from oic.oic.message import (
    AccessTokenResponse,
    AuthorizationResponse,
    IdToken,
    OpenIDSchema,
    ProviderConfigurationResponse,
    RegistrationResponse,
)
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

pytestmark = pytest.mark.live


def _pyoidc(server, demo_client) -> Client:
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(server.base)
    client.store_registration_info(RegistrationResponse(
        client_id=demo_client["client_id"], client_secret=demo_client["client_secret"],
        redirect_uris=[demo_client["redirect_uri"]], token_endpoint_auth_method="client_secret_basic"))
    return client


def _code_flow(client: Client, server, demo_client) -> tuple[str, str, AccessTokenResponse]:
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    pkce_args, verifier = client.add_code_challenge()
    assert pkce_args["code_challenge_method"] == "S256"
    request = client.construct_AuthorizationRequest(request_args={
        "response_type": "code", "scope": ["openid", "profile", "email"], "state": state, "nonce": nonce,
        "redirect_uri": demo_client["redirect_uri"], **pkce_args})
    url = request.request(client.authorization_endpoint)
    location = Browser((server.base,)).authorize(url)
    assert location.startswith(demo_client["redirect_uri"])
    auth = client.parse_response(AuthorizationResponse, info=location.split("?", 1)[1], sformat="urlencoded")
    assert auth["state"] == state
    assert query(location)["iss"] == server.base  # RFC 9207
    tokens = client.do_access_token_request(state=state, request_args={"code": auth["code"], "code_verifier": verifier},
                                            authn_method="client_secret_basic")
    assert isinstance(tokens, AccessTokenResponse), tokens
    return state, nonce, tokens


def test_pyoidc_discovery_code_pkce_userinfo_refresh(live_server, demo_client) -> None:
    """R-O1: pyoidc signs the demo teacher in (discovery, code + PKCE), verifies the ID token, reads
    userinfo and refreshes."""
    client = _pyoidc(live_server, demo_client)
    assert client.provider_info["issuer"] == live_server.base
    assert client.provider_info["code_challenge_methods_supported"] == ["S256"]
    state, nonce, tokens = _code_flow(client, live_server, demo_client)

    id_token = tokens["id_token"]  # verified by pyoidc: signature from jwks_uri, iss, aud, exp
    assert isinstance(id_token, IdToken)
    assert id_token["iss"] == live_server.base
    assert demo_client["client_id"] in id_token["aud"]
    assert id_token["nonce"] == nonce
    assert id_token["acr"] == "urn:tw:edu:sso:acr:cloud"
    assert {"sub", "auth_time", "sid", "at_hash"} <= set(id_token.keys())

    info = client.do_user_info_request(state=state, method="GET")
    assert isinstance(info, OpenIDSchema), info
    assert info["sub"] == id_token["sub"]
    assert info["name"] == "陳美玲"
    assert info["preferred_username"] == "teacher"
    assert info["email_verified"] is True

    refreshed = client.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    assert isinstance(refreshed, AccessTokenResponse), refreshed
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert refreshed["expires_in"] == 3600
    info2 = client.do_user_info_request(state=state, method="GET")
    assert info2["sub"] == id_token["sub"]


def test_pyoidc_rejects_tampered_id_token(live_server, demo_client) -> None:
    """R-O1: an ID token whose payload was changed after signing is rejected by the client library."""
    client = _pyoidc(live_server, demo_client)
    _state, _nonce, tokens = _code_flow(client, live_server, demo_client)
    raw = tokens["id_token"].jwt  # the compact JWS pyoidc verified
    header, payload, signature = raw.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    body = json.dumps({"access_token": "x", "token_type": "Bearer", "id_token": f"{header}.{forged}.{signature}"})
    with pytest.raises(BadSignature):
        client.parse_response(AccessTokenResponse, info=body, sformat="json", keyjar=client.keyjar)
    # And the untouched token still verifies.
    body_ok = json.dumps({"access_token": "x", "token_type": "Bearer", "id_token": raw})
    ok = client.parse_response(AccessTokenResponse, info=body_ok, sformat="json", keyjar=client.keyjar)
    assert not isinstance(ok, ErrorResponse)


def test_pyoidc_with_ministry_paths_only(live_server, demo_client) -> None:
    """R-O1: an app configured with the ministry's hard-coded paths (no discovery) signs in by changing only the
    host: /oidc/v1/azp, /oidc/v1/token, /oidc/v1/userinfo, /oidc/v1/jwksets, /moeresource/api/v1/oidc/profile."""
    base = live_server.base
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.handle_provider_config(ProviderConfigurationResponse(
        issuer=base, authorization_endpoint=base + "/oidc/v1/azp", token_endpoint=base + "/oidc/v1/token",
        userinfo_endpoint=base + "/oidc/v1/userinfo", jwks_uri=base + "/oidc/v1/jwksets",
        response_types_supported=["code"], subject_types_supported=["pairwise"],
        id_token_signing_alg_values_supported=["RS256"]), base)
    client.store_registration_info(RegistrationResponse(
        client_id=demo_client["client_id"], client_secret=demo_client["client_secret"],
        redirect_uris=[demo_client["redirect_uri"]], token_endpoint_auth_method="client_secret_basic"))
    state, _nonce, tokens = _code_flow(client, live_server, demo_client)
    assert tokens["id_token"]["iss"] == base  # verified against /oidc/v1/jwksets
    info = client.do_user_info_request(state=state, method="GET")
    profile = requests.get(base + "/moeresource/api/v1/oidc/profile",
                           headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10)
    assert profile.status_code == 200 and profile.json()["fullname"] == info["name"]  # the ministry's profile shape
    assert set(profile.json()) == {"fullname", "guid", "titles"}


def test_pyoidc_as_an_app_moving_over_from_the_ministry(live_server, live_env) -> None:
    """R-O4: registered with `clients create --ministry-compatible`, an app using only the ministry's paths, its
    secret in the body (the Java sample) and a fixed nonce signs the teacher in twice; the ID token (verified
    against /oidc/v1/jwksets) carries preferred_username, open2_id and a UUID sub; eduinfo comes gzip-compressed
    to a request that does not mention encodings; /oidc/v1/userlogout with the ministry's spellings signs out."""
    import gzip
    import http.client
    import uuid
    from urllib.parse import urlsplit

    from e2e_helpers import flask_cli

    base, redirect_uri, bye = live_server.base, "http://127.0.0.1:9/moe/cb", "http://127.0.0.1:9/moe/bye"
    reg = json.loads(flask_cli(live_env, "clients", "create", "--name", "博物館會員系統",
                               "--redirect-uri", redirect_uri, "--post-logout-redirect-uri", bye,
                               "--auth-method", "client_secret_post", "--ministry-compatible", "--json"))
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.handle_provider_config(ProviderConfigurationResponse(
        issuer=base, authorization_endpoint=base + "/oidc/v1/azp", token_endpoint=base + "/oidc/v1/token",
        userinfo_endpoint=base + "/moeresource/api/v1/oidc/userinfo", jwks_uri=base + "/oidc/v1/jwksets",
        response_types_supported=["code"], subject_types_supported=["pairwise"],
        id_token_signing_alg_values_supported=["RS256"]), base)
    client.store_registration_info(RegistrationResponse(
        client_id=reg["client_id"], client_secret=reg["client_secret"], redirect_uris=[redirect_uri],
        token_endpoint_auth_method="client_secret_post"))
    browser = Browser((base,))
    subs = []
    for _ in range(2):  # nonce=1 every time, as a museum's member system sends it
        state = secrets.token_urlsafe(12)
        url = client.construct_AuthorizationRequest(request_args={
            "response_type": "code", "scope": ["educloudroles", "openid2", "eduinfo", "email", "profile", "openid"],
            "state": state, "nonce": "1", "redirect_uri": redirect_uri}).request(client.authorization_endpoint)
        location = browser.authorize(url)
        auth = client.parse_response(AuthorizationResponse, info=location.split("?", 1)[1], sformat="urlencoded")
        tokens = client.do_access_token_request(state=state, request_args={"code": auth["code"]},
                                                authn_method="client_secret_post")
        assert isinstance(tokens, AccessTokenResponse), tokens
        id_token = tokens["id_token"]
        assert id_token["nonce"] == "1" and id_token["preferred_username"] == "teacher"
        assert len(id_token["open2_id"]) == 1
        subs.append(str(uuid.UUID(id_token["sub"])))
    assert subs[0] == subs[1] == id_token["sub"]
    # As PHP's file_get_contents() asks: no Accept-Encoding header at all (http.client would add "identity").
    conn = http.client.HTTPConnection(urlsplit(base).netloc, timeout=10)
    conn.putrequest("GET", "/moeresource/api/v1/oidc/eduinfo", skip_accept_encoding=True)
    conn.putheader("Authorization", f"Bearer {tokens['access_token']}")
    conn.endheaders()
    raw = conn.getresponse()
    assert raw.status == 200 and raw.getheader("Content-Encoding") == "gzip"
    edu = json.loads(gzip.decompress(raw.read()))
    conn.close()
    assert edu["sub"] == subs[0] and edu["classinfo"] == [] and edu["titles"][0]["titles"][0] == "教師"
    out = browser.get(f"{base}/oidc/v1/userlogout?Id_token_hint={id_token.jwt}&post_logout_redirect_url={bye}")
    assert out.status_code == 302 and out.headers["Location"].startswith(bye)
    gone = requests.get(base + "/moeresource/api/v1/oidc/userinfo", timeout=10,
                        headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert gone.status_code == 401
