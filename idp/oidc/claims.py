"""Scopes, the claims each one releases, and the authentication context classes (R-O2, R-A3).

OpenID Connect Core §5.4 maps scopes to claims; here that mapping is ONE table,
``SCOPES``, so the identity issue adds the education scope by adding one row. Each row says
what the consent page tells a person (in words, through ``_l``) and which account fields
become which claims, and whether they are also copied into the ID token (``in_id_token``: the
ministry's service puts the profile, e-mail and OpenID 2.0 claims there, and apps written for it
read them only there, R-O4). The pairwise/public ``sub`` is not here: it depends on the client and
lives in ``subjects.py``.

The ministry's scopes (``openid2``, ``educloudroles``, ``personid``; see
``docs/ministry-compatibility.md`` for what real apps do with them) are rows like the others. None
of them carries the national ID in any form: ``personid`` and ``open2_id`` are keyed hashes, pairwise
per sector, like ``guid``.
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
    in_id_token: bool = False  # also copied into the ID token when granted


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
    """The ministry's education claim (school, titles, classes) of a real-name account; {} otherwise.
    ``classinfo`` is always a list, empty for people without a class: apps written for the ministry
    index it unconditionally (one calls ``Classinfo.FirstOrDefault()`` on it, which throws on null)."""
    person = _person(account)
    if person is None:
        return {}
    from idp.identity import services as identity

    data = identity.eduinfo(person)
    data.setdefault("classinfo", [])
    return data


ROLES = ("學生", "教師", "職員")


def _educloudroles(account: Any, client: Any) -> dict[str, Any]:
    """The person's roles in the education cloud (學生, 教師, 職員) from their current affiliations;
    nothing for a member. No public app was found reading this claim (they only ask for the scope),
    so it carries what the name says and nothing more."""
    data = eduinfo(account)
    if not data:
        return {}
    words = [w for entry in data.get("titles", []) for w in entry.get("titles", [])]
    return {"educloudroles": [r for r in ROLES if r in words]}


def _personid(account: Any, client: Any) -> dict[str, Any]:
    """The ministry's ``personid``: a stable key of the PERSON that an organisation's apps share to
    find their records (a county's apps store it as ``edu_key``). The ministry derives its person keys
    from the national ID (its GUID is the bare SHA-256 of it, i.e. the ID itself to anyone who tries
    the few hundred million valid numbers); here it is a keyed hash of the person, pairwise per sector,
    in a domain of its own: the same for every app of one sector, useless to anyone else."""
    person = _person(account)
    if person is None or client is None:
        return {}
    from idp.oidc import subjects

    return {"personid": subjects.keyed("personid", subjects.sector_of(client), person.blind_index)}


def _open2_id(account: Any, client: Any) -> dict[str, Any]:
    """``open2_id``: the ministry lists the person's old OpenID 2.0 identifier URLs of the county services
    (apps take element 0 and crash on an empty list). Those county accounts are not held here in clear,
    so the list holds one identifier URL of this provider instead, pairwise per sector: stable, usable
    as a key, and never equal to a URL the app stored before (such links are made again by signing in)."""
    if client is None:
        return {}
    from idp.extensions import settings
    from idp.oidc import subjects

    value = subjects.keyed("openid2", subjects.sector_of(client), account.public_id)
    return {"open2_id": [f"{settings().issuer}/openid2/{value}"]}


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
        Scope("profile", _l("Your name and account name"), ("name", "preferred_username"), _profile,
              in_id_token=True),
        Scope("email", _l("Your e-mail address"), ("email", "email_verified"), _email, in_id_token=True),
        Scope("phone", _l("Your mobile phone number"), ("phone_number", "phone_number_verified"), _phone),
        Scope("eduinfo", _l("Your school, your role there and your class"), ("schoolid", "titles", "classinfo"),
              lambda account, client: eduinfo(account)),
        Scope("guid", _l("An identifier that lets this app find its existing records about you"), ("guid",),
              _guid),
        # The ministry's scopes (R-O4): what each carries is in docs/ministry-compatibility.md.
        Scope("openid2", _l("An identifier for this app in the format of the former OpenID service"),
              ("open2_id",), _open2_id, in_id_token=True),
        Scope("educloudroles", _l("Your roles in the education cloud (pupil, teacher, staff)"),
              ("educloudroles",), _educloudroles),
        Scope("personid", _l("A personal key that lets this app's organisation find its existing records "
                             "about you"), ("personid",), _personid),
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


def id_token_claims(account: Any, scope: str, client: Any = None) -> dict[str, Any]:
    """The granted rows' claims that the ID token carries too (``in_id_token``), as the ministry's
    service does: apps written for it read ``preferred_username`` and ``email`` from the ID token only
    (one names every local user after ``preferred_username`` and, without it, makes them all one)."""
    out: dict[str, Any] = {}
    for row in describe(scope):
        if row.in_id_token:
            out.update(row.resolve(account, client))
    return out


def ministry_profile(account: Any, scope: str, client: Any = None) -> dict[str, Any]:
    """The ministry's profile resource: ``{"fullname", "guid", "titles": [{"schoolid", "title": [...]}]}``
    (``title`` singular, unlike eduinfo's ``titles``). Every key is always there (apps index them);
    a value whose scope was not granted, or that the account has none of, is empty."""
    granted = set(scope.split())
    out: dict[str, Any] = {"fullname": "", "guid": "", "titles": []}
    if "profile" in granted:
        out["fullname"] = account.name or account.username
    if "guid" in granted:
        out["guid"] = _guid(account, client).get("guid", "")
    if "eduinfo" in granted:
        out["titles"] = [{"schoolid": t["schoolid"], "title": list(t["titles"])}
                         for t in eduinfo(account).get("titles", [])]
    return out
