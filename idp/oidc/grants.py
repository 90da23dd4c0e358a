"""Grants and extensions on Authlib's pieces (RFC 6749 §4.1/§4.4/§6, RFC 7636, RFC 7523, OIDC Core §3.1).

Only the storage hooks are ours: codes in the store, tokens as hashes in the database, keys
from ``keys.py``. Validation (redirect URI, scopes, PKCE, prompt, nonce, client
authentication) is Authlib's.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin
from authlib.oidc.core.grants import OpenIDCode as _OpenIDCode
from flask import current_app, g
from joserfc.jwk import KeySet

from idp.extensions import settings, store
from idp.oidc import claims, services
from idp.security import audit

TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


@dataclass(frozen=True)
class IssuedTo:
    """The person a code was issued to, as the token endpoint needs them: no database row."""

    id: int
    claims: dict[str, Any]


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    """A redeemed code's data, as saved in the store when it was issued."""

    client_id: str
    redirect_uri: str
    scope: str
    account_id: int
    sub: str
    family_id: str
    auth_time: int
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    acr: str | None = None
    amr: list[str] = field(default_factory=list)
    sid: str | None = None
    exp: int = 0
    # What the ID token says about the person, computed when the code was issued (the account was
    # loaded then), and the SSO session it was issued in (a store key: never leaves the store).
    claims: dict[str, Any] | None = None
    session: str | None = None
    # Whether that sign-in still held when the code was taken (read in the same round trip); not stored.
    live: bool | None = None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return self.acr

    def get_amr(self) -> list[str] | None:
        return self.amr or None


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """``response_type=code``; the code lives in the store and is redeemed once."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

    _validated: str | None = None

    def validate_authorization_request(self) -> str:
        """Once per request: the view validates it (``get_consent_grant``) before deciding on login
        and consent, then Authlib's ``create_authorization_response`` validates the same request
        again (client, redirect URI, scope, nonce, PKCE challenge: a tenth of an authorization)."""
        if self._validated is None:
            self._validated = super().validate_authorization_request()
        return self._validated

    def generate_authorization_code(self) -> str:
        """256 random bits, like our tokens (Authlib's default picks 48 characters one by one)."""
        return services.new_token()

    def save_authorization_code(self, code: str, request: Any) -> None:
        # The view puts the SSO session and the subject on the request before issuing.
        sso = request.sso
        payload = request.payload.data
        data = {
            "client_id": request.client.client_id,
            "redirect_uri": request.payload.redirect_uri,
            "scope": request.scope,
            "account_id": request.user.id,
            "sub": request.sub,
            "family_id": secrets.token_urlsafe(16),
            "auth_time": int(sso.auth_time),
            "nonce": payload.get("nonce"),
            "code_challenge": payload.get("code_challenge"),
            "code_challenge_method": payload.get("code_challenge_method") or None,
            "acr": request.acr,
            "amr": list(sso.amr or []),
            "sid": sso.public_sid,  # never the cookie's session id: relying parties see this one
            "session": sso.sid,  # in the store only, to check at redemption that the sign-in still holds
            "claims": claims.id_token_claims(request.user, request.scope, request.client),
        }
        # The code and the session's list of apps that got one (for logout): one round trip.
        from idp.login import sessions

        unsent = sessions.unsent_writes()  # a sign-in of this request: its session's writes, sent by the login
        batch = unsent if unsent is not None else store().batch()
        sessions.add_client(sso.sid, request.client.client_id, batch)
        services.save_code(code, data, batch, send=unsent is None)

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode | None:
        """Read, not take: a code presented by another client, or with a wrong redirect URI or
        PKCE verifier, stays valid for its owner (it is taken in ``validate_token_request`` only
        once every check passed)."""
        data = services.peek_code(code)
        if data is None or data["client_id"] != client.client_id:
            return None
        return AuthorizationCode(**data)

    def validate_token_request(self) -> None:
        super().validate_token_request()  # client, code, redirect URI, then PKCE (a hook of the base)
        code = self.request.authorization_code
        taken, live = services.claim_code(self.request.form["code"], code.session if code.claims is not None else None)
        if not taken:
            # Another request redeemed it between our read and now: a replay, handled like one.
            raise InvalidGrantError("Invalid 'code' in request.")
        code.live = live  # read with the claim, for ``authenticate_user``

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing to do: ``validate_token_request`` already took the code out of the store."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Any:
        """Who the tokens are for. A code carries its ID token's claims from when it was issued, so
        the account is not read again: the sign-in it was issued in must still hold (a logout, a
        password reset or disabling the account ends it, and then the code is refused), which
        ``validate_token_request`` read in the same store trip as it took the code (issue 11)."""
        code = authorization_code
        if code.claims is not None and code.session:
            return IssuedTo(code.account_id, code.claims) if code.live else None
        account = services.get_account(code.account_id)  # a code issued before codes carried claims
        return account if account is not None and account.is_active else None


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Refresh with rotation: each refresh token works once; reuse revokes its family."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Any:
        token = services.find_token(refresh_token, "refresh_token")
        if token is None or token.presented != "refresh_token":
            return None
        if token.client_id != self.request.client.client_id or token.is_expired():
            return None
        if token.refresh_used or token.refresh_revoked or not services.claim_refresh_token(token):
            services.revoke_family(token.family_id)
            audit.record(audit.REFRESH_REUSED, client_id=token.client_id, family_id=token.family_id)
            raise InvalidGrantError("The refresh token was already used or revoked.")
        return token

    def authenticate_user(self, refresh_token: Any) -> Any:
        account = refresh_token.get_user()
        return account if account is not None and account.is_active else None

    def revoke_old_credential(self, refresh_token: Any) -> None:
        """Already marked used, atomically, in ``authenticate_refresh_token``."""


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """Machine-to-machine tokens: confidential clients only, no user."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_token_request(self) -> None:
        super().validate_token_request()
        # Only scopes the client is registered for (and never identity scopes: no user here).
        asked = self.request.payload.scope
        if asked:
            allowed = set(self.client.get_allowed_scope(asked).split()) - {"openid"}
            if allowed != set(asked.split()):
                from authlib.oauth2.rfc6749.errors import InvalidScopeError

                raise InvalidScopeError()


class S256CodeChallenge(CodeChallenge):
    """PKCE (RFC 7636) with S256 only; required of public clients at the authorization endpoint."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ("S256",)
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if grant.request.client.is_public and not data.get("code_challenge"):
            raise InvalidRequestError("Public clients must send a PKCE 'code_challenge' (S256).")
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)


def _signing_key(alg: str) -> Any:
    return current_app.extensions["idp.keys"].signing_key(alg)


class OpenIDCode(_OpenIDCode):
    """ID tokens (OIDC Core §2, §3.1.3.6) signed with the active key for the client's algorithm.

    The ID token carries the subject, the protocol claims and, as the ministry's service does, the
    granted profile, e-mail and ``open2_id`` claims (``claims.id_token_claims``; phone and education
    claims stay in userinfo). The ``nonce`` is bound into the ID token and never refused when it comes
    again: detecting a replayed nonce is the relying party's job (OIDC Core §3.1.3.7, 11.), and real
    apps send a fixed one (``nonce=1``) or keep one per browser session, so refusing repeats failed
    every pupil of a classroom but the first (R-O4).
    """

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        """Never a replay here: see the class docstring."""
        return False

    def get_client_algorithm(self, client: Any) -> str:
        return client.id_token_signed_response_alg or "RS256"

    def get_encode_header(self, client: Any) -> dict[str, Any]:
        key = _signing_key(self.get_client_algorithm(client))
        g.oidc_signing_key = key  # the same key signs, even if a rotation lands in between
        g.oidc_id_token_client = client  # generate_user_info is not given the client
        return {"typ": "JWT", "alg": key.alg, "kid": key.kid}

    def resolve_client_private_key(self, client: Any) -> Any:
        key = g.pop("oidc_signing_key", None) or _signing_key(self.get_client_algorithm(client))
        return key.key

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": settings().issuer,
            "aud": [client.get_client_id()],
            "iat": now,
            "exp": now + settings().id_token_lifetime,
            "jti": secrets.token_urlsafe(16),
        }

    def get_authorization_code_claims(self, authorization_code: Any) -> dict[str, Any]:
        out = super().get_authorization_code_claims(authorization_code)
        out["sub"] = authorization_code.sub
        out["auth_time"] = int(authorization_code.auth_time)
        if authorization_code.sid:
            out["sid"] = authorization_code.sid
        return out

    def generate_user_info(self, user: Any, scope: str) -> dict[str, Any]:
        client = g.pop("oidc_id_token_client", None)
        if isinstance(user, IssuedTo):  # a code: the claims it was issued with, for the same scope
            return dict(user.claims)
        return claims.id_token_claims(user, scope, client)


class PrivateKeyJWT(JWTBearerClientAssertion):
    """``private_key_jwt`` client authentication (RFC 7523 §2.2, OIDC Core §9)."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self) -> list[str]:
        issuer = settings().issuer
        return [issuer, issuer + "/oauth/token", issuer + "/oidc/v1/token"]

    def validate_jti(self, claims: Any, jti: str) -> bool:
        ttl = max(60, int(claims.get("exp", 0)) - int(time.time()) + self.leeway)
        return store().add(f"oidc:jti:{claims['sub']}:{services.hash_token(str(jti))}", "1", ttl)

    def resolve_client_public_key(self, client: Any) -> KeySet:
        if not client.jwks:
            from authlib.oauth2.rfc6749.errors import InvalidClientError

            raise InvalidClientError(description="The client has no registered keys.")
        return KeySet.import_key_set(client.jwks)
