"""OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414, RFC 9207, RP-Initiated and Back-Channel Logout).

Advertises only what is really supported: the code flow with PKCE S256, no implicit or
password grant, ``none`` client authentication only for public clients. The standard paths
are advertised; the ministry-compatible aliases are served but never advertised.
"""

from __future__ import annotations

import json
from typing import Any

from authlib.oauth2.rfc9207 import AuthorizationServerMetadata as IssuerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata
from authlib.oidc.rpinitiated import OpenIDProviderMetadata as EndSessionMetadata
from flask import current_app

from idp.extensions import settings
from idp.identity import assurance
from idp.oidc import claims, grants, subjects

# OIDC Core §3.1.2.1 prompt values honoured; any other is answered with an error, never ignored.
PROMPTS_SUPPORTED = ("none", "login", "consent", "select_account")


def document() -> OpenIDProviderMetadata:
    issuer = settings().issuer
    return OpenIDProviderMetadata({
        "issuer": issuer,
        "authorization_endpoint": issuer + "/oauth/authorize",
        "token_endpoint": issuer + "/oauth/token",
        "userinfo_endpoint": issuer + "/oauth/userinfo",
        "jwks_uri": issuer + "/oauth/jwks",
        "revocation_endpoint": issuer + "/oauth/revoke",
        "introspection_endpoint": issuer + "/oauth/introspect",
        "end_session_endpoint": issuer + "/oauth/logout",
        "scopes_supported": claims.scopes_supported(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": list(subjects.SUBJECT_TYPES_SUPPORTED),
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": grants.TOKEN_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
        "revocation_endpoint_auth_methods_supported": grants.TOKEN_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": grants.CONFIDENTIAL_AUTH_METHODS,
        "claims_supported": claims.claims_supported(),
        "claim_types_supported": ["normal"],
        "acr_values_supported": list(assurance.ACR_VALUES_SUPPORTED),
        "prompt_values_supported": list(PROMPTS_SUPPORTED),
        "ui_locales_supported": ["zh-TW", "en"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
    })


METADATA_CLASSES = [IssuerMetadata, EndSessionMetadata]


def document_json() -> bytes:
    """The metadata as JSON, built once per app (settings never change in a running process)."""
    cached = current_app.extensions.get("idp.oidc.discovery")
    if cached is None:
        cached = json.dumps(dict(document()), separators=(",", ":")).encode()
        current_app.extensions["idp.oidc.discovery"] = cached
    return cached


def as_dict() -> dict[str, Any]:
    return json.loads(document_json())
