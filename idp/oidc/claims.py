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

# Authentication context classes (OIDC Core §2 ``acr``). A relying party that needs a
# real-name education cloud account (R-A2) asks for ACR_CLOUD in ``acr_values`` or is
# registered with ``require_real_name``; members (R-A1) sign in with ACR_MEMBER.
ACR_CLOUD = "urn:tw:edu:sso:acr:cloud"
ACR_MEMBER = "urn:tw:edu:sso:acr:member"
ACR_VALUES_SUPPORTED = (ACR_CLOUD, ACR_MEMBER)


@dataclass(frozen=True)
class Scope:
    """One row of the scope → claims table."""

    name: str
    description: Any  # lazy string shown on the consent page
    claims: tuple[str, ...]
    resolve: Callable[[Any], dict[str, Any]]


def _profile(account: Any) -> dict[str, Any]:
    return {"name": account.name or account.username, "preferred_username": account.username}


def _email(account: Any) -> dict[str, Any]:
    if not account.email:
        return {}
    return {"email": account.email, "email_verified": bool(account.email_verified)}


def _phone(account: Any) -> dict[str, Any]:
    if not account.phone:
        return {}
    return {"phone_number": account.phone, "phone_number_verified": bool(account.phone_verified)}


SCOPES: dict[str, Scope] = {
    s.name: s
    for s in (
        Scope("openid", _l("Confirm that it is you (an identifier for this app only)"), ("sub",),
              lambda account: {}),
        Scope("profile", _l("Your name and account name"), ("name", "preferred_username"), _profile),
        Scope("email", _l("Your e-mail address"), ("email", "email_verified"), _email),
        Scope("phone", _l("Your mobile phone number"), ("phone_number", "phone_number_verified"), _phone),
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


def claims_for(account: Any, scope: str, sub: str) -> dict[str, Any]:
    """The userinfo claims released for ``scope``: ``sub`` plus each granted row's claims."""
    out: dict[str, Any] = {"sub": sub}
    for row in describe(scope):
        out.update(row.resolve(account))
    return out


def acr_for(account: Any) -> str:
    """The context class an account's sign-in reaches: real-name cloud account or member."""
    return ACR_CLOUD if getattr(account, "kind", None) == "cloud" else ACR_MEMBER
