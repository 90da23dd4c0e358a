"""Scopes, the claims each one releases, and the authentication context classes (R-O2, R-A3).

OpenID Connect Core §5.4 maps scopes to claims; here that mapping is ONE table,
``SCOPES``, so the identity issue adds the education scope by adding one row. Each row says
what the consent page tells a person (in words, through ``_l``) and which account fields
become which claims. The pairwise/public ``sub`` is not here: it depends on the client and
lives in ``subjects.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class Scope:
    """One row of the scope → claims table."""

    name: str
    description: Any  # lazy string shown on the consent page
    claims: tuple[str, ...]
    resolve: Callable[[Any, Any], dict[str, Any]]  # (account, client) -> claims


def _profile(account: Any, client: Any) -> dict[str, Any]:
    return {"name": account.name or account.username, "preferred_username": account.username}


def _email(account: Any, client: Any) -> dict[str, Any]:
    if not account.email:
        return {}
    return {"email": account.email, "email_verified": bool(account.email_verified)}


def _phone(account: Any, client: Any) -> dict[str, Any]:
    if not account.phone:
        return {}
    return {"phone_number": account.phone, "phone_number_verified": bool(account.phone_verified)}


def _person(account: Any) -> Any:
    """The person behind the account (read once per request), or None for members."""
    from flask import has_request_context, request

    memo: dict[int, Any] = {}
    if has_request_context():  # not flask.g: a test's app context may outlive several requests
        memo = vars(request._get_current_object()).setdefault("_idp_persons", memo)  # type: ignore[attr-defined]
    if account.id not in memo:
        from idp.identity import services as identity

        memo[account.id] = identity.person_for_account(account.id)
    return memo[account.id]


def eduinfo(account: Any) -> dict[str, Any]:
    """The ministry's education claim (school, titles, classes) of a real-name account; {} otherwise."""
    person = _person(account)
    if person is None:
        return {}
    from idp.identity import services as identity

    return identity.eduinfo(person)


def _guid(account: Any, client: Any) -> dict[str, Any]:
    """A stable identifier of the PERSON (it survives a re-created account) that lets an app link its
    own records, pairwise per sector like ``sub``: HMAC keyed with the subject secret over the
    person's blind index, never the bare SHA-256 of the national ID that anyone can brute-force."""
    person = _person(account)
    if person is None or client is None:  # no client, no sector: nothing safe to derive
        return {}
    from idp.oidc import subjects

    return {"guid": subjects.keyed("guid", subjects.sector_of(client), person.blind_index)}


SCOPES: dict[str, Scope] = {
    s.name: s
    for s in (
        Scope("openid", _l("Confirm that it is you (an identifier for this app only)"), ("sub",),
              lambda account, client: {}),
        Scope("profile", _l("Your name and account name"), ("name", "preferred_username"), _profile),
        Scope("email", _l("Your e-mail address"), ("email", "email_verified"), _email),
        Scope("phone", _l("Your mobile phone number"), ("phone_number", "phone_number_verified"), _phone),
        Scope("eduinfo", _l("Your school, your role there and your class"), ("schoolid", "titles", "classinfo"),
              lambda account, client: eduinfo(account)),
        Scope("guid", _l("An identifier that lets this app find its existing records about you"), ("guid",),
              _guid),
        # OIDC Core §11: a refresh token that outlives the sign-in; signing out ends every other token.
        Scope("offline_access", _l("Keep access when you sign out, until you withdraw it on your account page"),
              (), lambda account, client: {}),
    )
}


def scopes_supported() -> list[str]:
    """Every scope this provider knows, in table order (discovery, client validation)."""
    return list(SCOPES)


def claims_supported() -> list[str]:
    """Every claim any scope can release, plus the ID token's protocol claims (discovery)."""
    protocol = ["iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash", "jti"]
    seen: list[str] = []
    for scope in SCOPES.values():
        seen.extend(c for c in scope.claims if c not in seen)
    return seen + protocol


def describe(scope: str) -> list[Scope]:
    """The known rows for a space-separated scope string, in table order (consent page)."""
    asked = set(scope.split())
    return [row for name, row in SCOPES.items() if name in asked]


def claims_for(account: Any, scope: str, sub: str, client: Any = None) -> dict[str, Any]:
    """The userinfo claims released for ``scope``: ``sub`` plus each granted row's claims."""
    out: dict[str, Any] = {"sub": sub}
    for row in describe(scope):
        out.update(row.resolve(account, client))
    return out
