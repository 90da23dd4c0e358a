"""Device cookies (OWASP "Slow down online guessing attacks with device cookies", R-N3).

A browser in which someone signed in to an account successfully receives a signed cookie naming
that account (by a keyed tag, not its name) and a random nonce. The next time that browser signs
in to that account, its failures are counted against the nonce only (``login.device``), not
against the account or the address: a classmate guessing a pupil's password slows down the
classmate, while the pupil's own browser keeps working with the right password.

The cookie is signed and dated with the service's secret key (itsdangerous), holds at most
``MAX_ENTRIES`` accounts (a family computer), never a name, and is refreshed with a new nonce at
every successful sign-in.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

from idp.extensions import settings

COOKIE = "idp_device"
MAX_ENTRIES = 10


def _serializer() -> URLSafeTimedSerializer:
    return _serializer_for(settings().secret_key)


@functools.lru_cache(maxsize=4)
def _serializer_for(secret_key: str) -> URLSafeTimedSerializer:
    """One per secret (each sign-in used to build its own: key derivation included)."""
    from idp.cookies import KeyKeepingSigner

    return URLSafeTimedSerializer(secret_key, salt="idp-device-cookie", signer=KeyKeepingSigner)


def _tag(account_name: str) -> str:
    digest = hmac.new(settings().secret_key.encode(), b"device|" + account_name.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


def _entries(cookie: str | None) -> list[list[str]]:
    if not cookie or len(cookie) > 4096:
        return []
    try:
        data = _serializer().loads(cookie, max_age=settings().device_cookie_lifetime)
    except BadSignature:
        return []
    if not isinstance(data, list):
        return []
    return [e for e in data if isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e)]


def trusted_nonce(cookie: str | None, account_name: str) -> str | None:
    """The nonce this browser holds for ``account_name`` (normalised), or None."""
    tag = _tag(account_name)
    for entry_tag, nonce in _entries(cookie):
        if hmac.compare_digest(entry_tag, tag):
            return nonce
    return None


def remember(cookie: str | None, account_name: str) -> str:
    """The cookie value after a successful sign-in to ``account_name``: its entry first, with a new nonce."""
    tag = _tag(account_name)
    kept = [e for e in _entries(cookie) if not hmac.compare_digest(e[0], tag)]
    return _serializer().dumps([[tag, secrets.token_urlsafe(12)], *kept][:MAX_ENTRIES])
