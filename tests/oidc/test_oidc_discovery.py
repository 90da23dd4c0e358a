"""Discovery and JWKS (R-O1)."""

from __future__ import annotations

from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc.jwk import KeySet

from idp.oidc.discovery import METADATA_CLASSES


def test_discovery_advertises_only_what_is_supported(client) -> None:
    """R-O1: discovery lists the standard endpoints and only supported flows, methods and algorithms."""
    resp = client.get("/.well-known/openid-configuration")
    assert resp.status_code == 200
    doc = resp.get_json()
    issuer = doc["issuer"]
    assert issuer == "http://localhost"
    assert doc["authorization_endpoint"] == issuer + "/oauth/authorize"
    assert doc["token_endpoint"] == issuer + "/oauth/token"
    assert doc["userinfo_endpoint"] == issuer + "/oauth/userinfo"
    assert doc["jwks_uri"] == issuer + "/oauth/jwks"
    assert doc["revocation_endpoint"] == issuer + "/oauth/revoke"
    assert doc["introspection_endpoint"] == issuer + "/oauth/introspect"
    assert doc["end_session_endpoint"] == issuer + "/oauth/logout"
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "implicit" not in doc["grant_types_supported"]
    assert "password" not in doc["grant_types_supported"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
    assert set(doc["subject_types_supported"]) == {"pairwise", "public"}
    assert doc["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert doc["backchannel_logout_supported"] is True
    assert doc["backchannel_logout_session_supported"] is True
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert {"sub", "name", "preferred_username", "email", "email_verified", "phone_number"} <= set(
        doc["claims_supported"])
    assert "urn:tw:edu:sso:acr:cloud" in doc["acr_values_supported"]
    assert not any("/oidc/v1/" in str(v) or "moeresource" in str(v) for v in doc.values())
    # Authlib's own metadata validation accepts the document (loopback issuer counts as secure).
    OpenIDProviderMetadata(doc).validate(metadata_classes=METADATA_CLASSES)


def test_jwks_has_rs256_and_es256_with_kid(client) -> None:
    """R-O1: the JWKS publishes public keys only, each with kid, alg and use."""
    resp = client.get("/oauth/jwks")
    assert resp.status_code == 200
    keys = resp.get_json()["keys"]
    assert {k["alg"] for k in keys} >= {"RS256", "ES256"}
    for key in keys:
        assert key["kid"] and key["use"] == "sig"
        assert "d" not in key and "p" not in key
    KeySet.import_key_set(resp.get_json())
    assert client.get("/oidc/v1/jwksets").get_json() == resp.get_json()


def test_public_documents_revalidate_and_follow_rotation(app, client) -> None:
    """R-O1: discovery and JWKS carry an ETag a cache can revalidate (304), HEAD has no body,
    other methods are refused, and a key rotation changes the JWKS (and its ETag) at once."""
    for path in ("/.well-known/openid-configuration", "/oauth/jwks", "/oidc/v1/jwksets"):
        first = client.get(path)
        assert first.status_code == 200 and first.headers["Access-Control-Allow-Origin"] == "*"
        assert first.headers["Cache-Control"].startswith("public, max-age=")
        again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304 and again.data == b""
        head = client.head(path)
        assert head.status_code == 200 and head.data == b""
        assert client.post(path).status_code == 405
    before = client.get("/oauth/jwks")
    app.extensions["idp.keys"].rotate()
    after = client.get("/oauth/jwks", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert len(after.get_json()["keys"]) > len(before.get_json()["keys"])
