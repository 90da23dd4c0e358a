"""The person's own account (R-C7, R-L1): what the home page shows, proving a new backup contact with a
one-time code, changing the password.

A new e-mail address or mobile number is not stored until its code is typed back: the code goes to
the new address (``otp.send_code``), the challenge id waits in the flow's server-side state, and
``verify`` returns the address the code was sent to, which is what gets stored, as verified. Nothing
typed on the second page can change which address that is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from idp.accounts import services as accounts
from idp.accounts.models import Account
from idp.errors import InvalidField
from idp.extensions import db
from idp.security import audit, otp

CHANNELS = {"email": ("contact.email", "email"), "mobile": ("contact.mobile", "sms")}


@dataclass(frozen=True)
class Home:
    """What the person's home page shows."""

    account: Account
    real_name: bool
    schools: list[dict[str, Any]]  # [{code, name, roles, classes: [text]}]
    current_school: str | None


def home(account: Account) -> Home:
    from idp.identity import services as identity
    from idp.schools import services as schools

    person = identity.person_for_account(account.id)
    if person is None:
        return Home(account, False, [], None)
    info = identity.eduinfo(person)
    names = schools.names({t["schoolid"] for t in info.get("titles", [])})
    by_school: dict[str, dict[str, Any]] = {}
    for t in info.get("titles", []):
        by_school[t["schoolid"]] = {"code": t["schoolid"], "name": names.get(t["schoolid"], t["schoolid"]),
                                    "roles": t["titles"], "classes": []}
    for c in info.get("classinfo", []):
        entry = by_school.setdefault(c["schoolid"], {"code": c["schoolid"], "name": names.get(c["schoolid"], ""),
                                                     "roles": [], "classes": []})
        entry["classes"].append(c)
    return Home(account, account.kind == "cloud", list(by_school.values()), info.get("schoolid") or None)


def start_contact_change(account: Account, channel: str, value: str) -> otp.Challenge:
    """Send a code to the new address or number; nothing changes on the account yet."""
    purpose, via = CHANNELS[channel]
    try:
        target = otp.normalise_target(value, via)
    except InvalidField as exc:  # shown beside this page's one field
        raise InvalidField("value", exc.message) from None
    return otp.send_code(purpose, target, via)


def finish_contact_change(account: Account, channel: str, challenge_id: str, code: str) -> str:
    """Store the address the code was sent to, as verified; return it. Raises otp's refusals."""
    purpose, _ = CHANNELS[channel]
    target = otp.verify(challenge_id, code, purpose=purpose)
    if channel == "email":
        was = bool(account.email)
        account.email, account.email_verified = target, True
    else:
        was = bool(account.phone)
        account.phone, account.phone_verified = target, True
    audit.record(audit.CONTACT_VERIFIED, actor=account.username, account_id=account.id, channel=channel,
                 replaced=was)
    db.session.flush()
    return target


def change_password(account: Account, current: str, new: str, ip: str | None) -> None:
    """A new password after the current one was typed right (throttled like a sign-in); the rules see
    the person's own data when the account is a real-name one. An account that has no password yet
    (made by a county-account sign-in, whose owner proved who they are at the county) sets its first
    one without a current one."""
    from idp.identity import services as identity

    if account.password_hash:
        accounts.verify_password(account, current, ip, field="current")
    person = identity.person_for_account(account.id)
    own = identity.own_data(person) if person is not None else {}
    accounts.set_password(account, new, actor=account.username, reason="changed", field="new", **own)


def password_age(account: Account) -> dt.datetime | None:
    return account.password_changed_at
