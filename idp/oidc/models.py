"""Relying-party clients, issued tokens and remembered consents (R-O1, R-O3, R-L4)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import TimestampMixin, utcnow
from idp.extensions import db


class Client(TimestampMixin, db.Model):
    """A registered relying-party app. The secret is stored only as a hash."""

    __tablename__ = "oauth_client"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    client_secret_hash: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    grant_types: Mapped[list] = mapped_column(JSON, default=lambda: ["authorization_code", "refresh_token"])
    response_types: Mapped[list] = mapped_column(JSON, default=lambda: ["code"])
    # Space-separated scopes the client may ask for.
    scope: Mapped[str] = mapped_column(Text, default="openid profile email")
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32), default="client_secret_basic")
    jwks: Mapped[dict | None] = mapped_column(JSON)
    jwks_uri: Mapped[str | None] = mapped_column(String(500))
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(8), default="RS256")
    # "pairwise" (default, R-O2) or "public".
    subject_type: Mapped[str] = mapped_column(String(16), default="pairwise")
    sector_identifier: Mapped[str | None] = mapped_column(String(255))
    require_real_name: Mapped[bool] = mapped_column(Boolean, default=False)
    # First-party apps an operator trusts may skip the consent page.
    skip_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    # "opaque" (base64url, the default) or "uuid": the same pairwise subject written as a UUID, for apps
    # written for the ministry's service that keep `sub` in UUID columns (R-O4, issue 11 item 4).
    subject_format: Mapped[str] = mapped_column(String(8), default="opaque", server_default="opaque")
    # An app moving over from the ministry's service (R-O4): it may read `eduinfo` without asking for it.
    ministry_compatible: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa.false())

    def set_secret(self, secret: str | None) -> None:
        """Keep only a hash. Secrets are 256-bit random strings we generate, so a fast hash is
        enough (no dictionary to attack) and keeps client authentication off the CPU budget."""
        self.client_secret_hash = None if secret is None else hash_secret(secret)

    def check_client_secret(self, client_secret: str) -> bool:
        """Authlib's ClientMixin hook; constant-time comparison."""
        if not self.client_secret_hash or not client_secret:
            return False
        return hmac.compare_digest(self.client_secret_hash, hash_secret(client_secret))


    # -- Authlib ClientMixin (authlib.oauth2.rfc6749.models) ------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        """None: every authorization request must name its registered redirect URI exactly."""
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string match only (no prefix, no extra path): open redirects start here."""
        return redirect_uri in (self.redirect_uris or [])

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes this client is registered for; others are dropped (RFC 6749 §3.3).

        A ministry-compatible app that signs someone in (``openid``) and is registered for ``eduinfo``
        gets it without asking, as the ministry's service gives it to older apps that read the education
        resource without requesting the scope (issue 11 item 6): the consent page then lists it, and the
        token's ``scope`` says so, so the person still decides and the app can see what it got."""
        if not scope:
            return ""
        allowed = set((self.scope or "").split())
        asked = list(dict.fromkeys(scope.split()))
        if self.ministry_compatible and "openid" in asked and "eduinfo" in allowed and "eduinfo" not in asked:
            asked.append("eduinfo")
        return " ".join(s for s in asked if s in allowed)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """A client holding a secret may present it either way (HTTP Basic or in the body): the
        ministry's PHP sample uses Basic, its Java sample the body, and one library refreshes with the
        body after signing in with Basic (issue 11 item 7). Still one method per request (server.py)."""
        secret_methods = ("client_secret_basic", "client_secret_post")
        if self.token_endpoint_auth_method in secret_methods:
            return method in secret_methods
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type in (self.response_types or [])

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in (self.grant_types or [])

    @property
    def is_public(self) -> bool:
        """A public client (browser or native app) holds no secret and must use PKCE."""
        return self.token_endpoint_auth_method == "none"

    @property
    def client_metadata(self) -> dict[str, Any]:
        """Registration metadata in RFC 7591 / OIDC Registration names, as Authlib reads it."""
        return {
            "redirect_uris": list(self.redirect_uris or []),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris or []),
            "backchannel_logout_uri": self.backchannel_logout_uri,
            "grant_types": list(self.grant_types or []),
            "response_types": list(self.response_types or []),
            "scope": self.scope,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "id_token_signed_response_alg": self.id_token_signed_response_alg,
            "subject_type": self.subject_type,
            "subject_format": self.subject_format,
            "ministry_compatible": bool(self.ministry_compatible),
        }


def hash_secret(secret: str) -> str:
    return "sha256$" + hashlib.sha256(secret.encode()).hexdigest()


class Token(db.Model):
    """An access token, and its refresh token when there is one; stored only as hashes.

    ``family_id`` ties every token issued from one authorization (code and all its refreshes)
    together, so replaying a code or a rotated refresh token revokes the whole family.
    """

    __tablename__ = "oauth_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[int] = mapped_column(Integer)
    expires_in: Mapped[int] = mapped_column(Integer)
    refresh_expires_at: Mapped[int | None] = mapped_column(Integer)
    auth_time: Mapped[int | None] = mapped_column(Integer)
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    access_revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when the refresh token was exchanged (rotation) or revoked; presenting it again is reuse.
    refresh_revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    refresh_used: Mapped[bool] = mapped_column(Boolean, default=False)


    # Which of the two tokens in this row was presented (set by the lookup, not stored):
    # expiry and revocation answer for that one.
    presented = "access_token"

    # -- Authlib TokenMixin (authlib.oauth2.rfc6749.models) -------------------------------------
    def check_client(self, client: Any) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    @property
    def expires_at(self) -> int:
        if self.presented == "refresh_token":
            return self.refresh_expires_at or 0
        return self.issued_at + self.expires_in

    def is_expired(self) -> bool:
        return self.expires_at <= int(time.time())

    def is_revoked(self) -> bool:
        if self.presented == "refresh_token":
            return self.refresh_revoked or self.refresh_used
        return self.access_revoked

    def get_user(self) -> Any:
        if self.account_id is None:
            return None
        from idp.oidc.services import get_account

        return get_account(self.account_id)

    def get_client(self) -> Any:
        from idp.oidc.services import get_client

        return get_client(self.client_id)


class Consent(db.Model):
    """Scopes a person granted a client; asked again only for scopes not yet granted (R-L4)."""

    __tablename__ = "oauth_consent"
    __table_args__ = (UniqueConstraint("account_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text, default="")
    granted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
