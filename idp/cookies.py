"""The form session's cookie (``idp_session``: locale, CSRF secret, wizard ids) is for people's pages only.

The JSON APIs (token, introspection, revocation, userinfo, the ministry's resources, the school
pickers' data) are called by relying parties' servers and by scripts, never with a form: reading,
verifying and re-signing a session cookie there is work for nothing on the hottest paths, and a
``Set-Cookie`` on an API answer is noise. They get an empty, throw-away session instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from idp.errors import API_PREFIXES


class KeyKeepingSigner(TimestampSigner):
    """itsdangerous derives the HMAC key from the secret and the salt again for every signature it
    makes or checks; the result depends on nothing else, so it is derived once per secret and salt."""

    _derived: ClassVar[dict[tuple[Any, ...], bytes]] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        known = (secret_key if secret_key is not None else self.secret_keys[-1], self.salt, self.key_derivation,
                 self.digest_method)
        key = self._derived.get(known)
        if key is None:
            if len(self._derived) > 64:  # secrets rotated (tests make an app per secret): stays small
                self._derived.clear()
            key = self._derived[known] = super().derive_key(secret_key)
        return key


class PagesOnlySessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, skipped (not read, never saved) on the API paths. Its
    serializer is made once per secret (Flask makes one, and derives its key, twice per page)."""

    _serializers: ClassVar[dict[tuple[Any, ...], URLSafeTimedSerializer]] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)  # newest last, as Flask has it
        serializer = self._serializers.get(keys)
        if serializer is None:
            if len(self._serializers) > 8:  # secrets rotated in tests: never an unbounded cache
                self._serializers.clear()
            serializer = self._serializers[keys] = URLSafeTimedSerializer(
                list(keys), salt=self.salt, serializer=self.serializer, signer=KeyKeepingSigner,
                signer_kwargs={"key_derivation": self.key_derivation, "digest_method": self.digest_method})
        return serializer

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(API_PREFIXES):
            return SecureCookieSession()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        from flask import request

        if request.path.startswith(API_PREFIXES):
            return
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    app.session_interface = PagesOnlySessionInterface()
