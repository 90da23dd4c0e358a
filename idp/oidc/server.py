"""The per-app Authlib authorization server and resource protector (DESIGN rule 2).

``build(app)`` wires Authlib's grants, extensions and endpoints to our storage hooks and keeps
the result in ``app.extensions["idp.oauth"]`` / ``["idp.resource_protector"]``: nothing global
that tests would have to reset. Endpoint classes here are Authlib's, with only their storage
and policy hooks filled in: RFC 7009 revocation, RFC 7662 introspection, OIDC Core §5.3
userinfo, RFC 9207 ``iss`` in authorization responses.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.authenticate_client import ClientAuthentication as _ClientAuthentication
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc6749.requests import OAuth2Request as _OAuth2Request
from authlib.oauth2.rfc6750 import BearerTokenValidator as _BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter as _IssuerParameter
from authlib.oidc.core import UserInfoEndpoint as _UserInfoEndpoint
from flask import Flask, current_app, g

from idp.errors import RateLimited
from idp.extensions import settings
from idp.oidc import claims, grants, services, subjects
from idp.oidc.logout import EndSessionEndpoint
from idp.security import audit, ratelimit

log = logging.getLogger(__name__)


class OAuth2Request(FlaskOAuth2Request):
    """Authlib's Flask request wrapper, built without Werkzeug's ``request.url``: that property turns
    the whole URL into an IRI on every token request, and Authlib only uses the URI to refuse plain
    http (``InsecureTransportError``), which needs the scheme, not the decoded path and query."""

    def __init__(self, request: Any) -> None:
        environ = request.environ
        uri = f"{environ['wsgi.url_scheme']}://{request.host}{environ.get('SCRIPT_NAME', '')}{environ['PATH_INFO']}"
        _OAuth2Request.__init__(self, method=request.method, uri=uri, headers=request.headers)
        self._request = request
        self.payload = FlaskOAuth2Payload(request)


class AuthorizationServer(_AuthorizationServer):
    """Authlib's Flask server with our token storage and the RFC 9207 issuer helper."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        from flask import request as flask_request

        return OAuth2Request(flask_request._get_current_object())  # type: ignore[attr-defined]

    def add_issuer(self, response: Any) -> Any:
        """Add ``iss`` to an authorization (error) redirect made outside ``create_authorization_response``."""
        IssuerParameter().add_issuer_parameter(self, response)
        return response


class TooManyClientFailures(OAuth2Error):
    """429 for an address that keeps failing one client's authentication."""

    error = "invalid_client"
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(description="Too many failed client authentications; try again later.")
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


def _basic_client_id(request: Any) -> str | None:
    """The client id of an ``Authorization: Basic`` header, or None without one. A header that is
    not base64 of UTF-8 ``id:secret`` is a failed client authentication (401), not a crash."""
    auth = request.headers.get("Authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidClientError(status_code=401, description="The Authorization header cannot be read.") from None
    client_id, sep, _secret = text.partition(":")
    if not sep or not client_id:
        raise InvalidClientError(status_code=401, description="The Authorization header cannot be read.")
    return client_id


class ClientAuthentication(_ClientAuthentication):
    """Authlib's client authentication with two rules of ours around it:

    - one method per request (RFC 6749 §2.3): HTTP Basic together with a secret or an assertion in
      the body, or Basic for one client with ``client_id`` of another, is ``invalid_request``;
    - failures are audited (for apps that exist) and limited per (client, address) (``client.auth``):
      past the allowance a wrong secret gets 429 instead of 401 (and no more audit rows), so a client
      id cannot be ground against its secret from one place. Only failures touch the limiter: a
      correct secret costs no store round trip, and keeps working from anywhere.
    """

    def authenticate(self, request: Any, methods: list[str], endpoint: str) -> Any:
        from urllib.parse import unquote

        basic_id = _basic_client_id(request)
        form = request.form
        presented = [m for m, there in (("client_secret_basic", basic_id is not None),
                                        ("client_secret_post", bool(form.get("client_secret"))),
                                        ("private_key_jwt", bool(form.get("client_assertion")))) if there]
        if len(presented) > 1:
            raise InvalidRequestError("Use one client authentication method per request (RFC 6749 section 2.3).")
        body_id = form.get("client_id")
        if basic_id is not None and body_id and unquote(basic_id) != body_id:
            raise InvalidRequestError("'client_id' does not match the client that authenticated.")
        client_id = (unquote(basic_id) if basic_id is not None else body_id) or ""
        try:
            return super().authenticate(request, methods, endpoint)
        except InvalidClientError:
            if not client_id or services.get_client(client_id) is None:
                log.info("client authentication failed at %s for an unknown client", endpoint)
                raise
            limit, key = ratelimit.client_auth(), f"{client_id[:64]}|{_remote_addr()}"
            if ratelimit.count_failure(limit, key):
                try:
                    ratelimit.check(limit, key)
                except RateLimited as exc:
                    log.warning("client %s: too many failed authentications from one address", client_id)
                    raise TooManyClientFailures(exc.retry_after) from None
            audit.record(audit.CLIENT_AUTH_FAILED, client_id=client_id, endpoint=endpoint,
                         method=presented[0] if presented else "none")
            raise


def _remote_addr() -> str:
    from flask import request as flask_request

    return flask_request.remote_addr or "unknown"


class IssuerParameter(_IssuerParameter):
    def get_issuer(self) -> str:
        return settings().issuer


def generate_bearer_token(grant_type: str, client: Any, user: Any = None, scope: str | None = None,
                          expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
    """Opaque random tokens (RFC 6750); lifetimes from settings (access: 3600 s, as the ministry)."""
    token: dict[str, Any] = {
        "token_type": "Bearer",
        "access_token": services.new_token(),
        "expires_in": expires_in or settings().access_token_lifetime,
    }
    if scope:
        token["scope"] = scope
    if include_refresh_token:
        token["refresh_token"] = services.new_token()
    return token


def save_token(token: dict[str, Any], request: Any) -> None:
    """Store the hashes; the family, auth_time and sid follow the code or the refresh token."""
    user = request.user
    account_id = user.id if user is not None else None
    if getattr(request, "authorization_code", None) is not None:
        code = request.authorization_code
        family_id, auth_time, sid = code.family_id, code.auth_time, code.sid
    elif getattr(request, "refresh_token", None) is not None:
        old = request.refresh_token
        family_id, auth_time, sid = old.family_id, old.auth_time, old.sid
    else:
        family_id, auth_time, sid = secrets.token_urlsafe(16), None, None
    # A refresh also marks the old token used: those two writes commit together. A code or
    # client_credentials grant writes nothing else, so its row is written on its own.
    alone = getattr(request, "refresh_token", None) is None
    services.save_token(token, request.client, account_id, family_id, auth_time, sid, alone=alone)


class BearerTokenValidator(_BearerTokenValidator):
    def authenticate_token(self, token_string: str) -> Any:
        token = services.find_token(token_string, "access_token")
        if token is None or token.presented != "access_token":
            return None
        if token.account_id is not None:
            account = token.get_user()
            if account is None or not account.is_active:
                return None
        return token


class RevocationEndpoint(_RevocationEndpoint):
    """RFC 7009. Public clients revoke their own tokens with just their client_id."""

    CLIENT_AUTH_METHODS = grants.TOKEN_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return services.find_token(token_string, token_type_hint)

    def revoke_token(self, token: Any, request: Any) -> None:
        services.revoke_token(token)


class IntrospectionEndpoint(_IntrospectionEndpoint):
    """RFC 7662 for relying parties' resource servers: a client introspects its own tokens."""

    CLIENT_AUTH_METHODS = grants.CONFIDENTIAL_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return services.find_token(token_string, token_type_hint)

    def check_permission(self, token: Any, client: Any, request: Any) -> bool:
        return token.client_id == client.client_id

    def introspect_token(self, token: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "active": True,
            "scope": token.scope,
            "client_id": token.client_id,
            "token_type": "Bearer" if token.presented == "access_token" else "refresh_token",
            "exp": token.expires_at,
            "iat": token.issued_at,
            "iss": settings().issuer,
            "aud": token.client_id,
        }
        if token.account_id is not None:
            account = token.get_user()
            if account is None or not account.is_active:
                return {"active": False}
            payload["sub"] = subjects.subject_for(token.get_client(), account)
        return payload


class UserInfoEndpoint(_UserInfoEndpoint):
    """OIDC Core §5.3: the claims of the token's scopes, from the one table in ``claims.py``."""

    def generate_user_info(self, user: Any, scope: str) -> dict[str, Any]:
        client = g.authlib_server_oauth2_token.get_client()
        return claims.claims_for(user, scope, subjects.subject_for(client, user), client)

    def get_issuer(self) -> str:
        return settings().issuer

    def resolve_private_key(self) -> Any:
        return current_app.extensions["idp.keys"].signing_key("RS256").key


def build(app: Flask) -> AuthorizationServer:
    """Compose the server for one app and keep it (and the resource protector) in app.extensions."""
    server = AuthorizationServer(query_client=services.get_client, save_token=save_token)
    server._client_auth = ClientAuthentication(services.get_client)  # Authlib's hook point for its registry
    server.init_app(app)
    server.register_token_generator("default", generate_bearer_token)
    server.scopes_supported = None  # unknown scopes are dropped per client, not refused
    server.register_client_auth_method("private_key_jwt", grants.PrivateKeyJWT())
    server.register_grant(grants.AuthorizationCodeGrant,
                          [grants.S256CodeChallenge(required=True), grants.OpenIDCode(require_nonce=False)])
    server.register_grant(grants.RefreshTokenGrant)
    server.register_grant(grants.ClientCredentialsGrant)
    server.register_extension(IssuerParameter())

    protector = ResourceProtector()
    protector.register_token_validator(BearerTokenValidator())
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    server.register_endpoint(UserInfoEndpoint(resource_protector=protector))
    server.register_endpoint(EndSessionEndpoint)

    app.extensions["idp.oauth"] = server
    app.extensions["idp.resource_protector"] = protector
    return server


def oauth() -> AuthorizationServer:
    """The running app's authorization server."""
    return current_app.extensions["idp.oauth"]
