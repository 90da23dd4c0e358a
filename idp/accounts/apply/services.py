"""Applying for an education cloud account (R-C2, R-C6): identify, answer on the spot, create.

The seed's steps, as rules:

- **Identify** with the shared step (``identify.identify``: school, role, name, ID, birthday, rate
  limits). Three answers stop the application where the seed's FAQ has one (R-C6), each audited:
  no personal data (ask the school's IT lead, 資訊組長), the person already has an account (→ 忘記密碼;
  the account name is shown masked, ``st****01``), and it is disabled (→ 啟用帳號).
- **Choose** an account name and password: the name rule and "never reissued" come from
  ``accounts.services``; the password rules are checked with the person's own ID and birthday
  (``identity.services.own_data``: the number reaches the rules as a ``NationalId`` only).
- **Create** in one transaction: the cloud account, its link to the person (``identity.link_account``:
  one account per person for life), the person's current school (``identity.set_current_school``)
  and the audit event ``account.applied``. Backup e-mail and mobile are stored unverified; the profile
  pages verify them with one-time codes (R-C7).

Between "choose" and "create" the seed shows a confirmation page, so the password must survive one
request. It is kept sealed (Fernet: AES-128-CBC + HMAC) in the server-side wizard state under a key
that lives only in the person's signed session cookie, and only for the wizard's lifetime: neither
the store alone nor the cookie alone reveals it, and it is gone when the flow ends.

Services add and flush; the view commits once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask_babel import lazy_gettext as _l

from idp.accounts import identify, passwords
from idp.accounts import services as accounts
from idp.accounts.models import Account
from idp.errors import IdpError
from idp.identity import services as identity
from idp.identity.nationalid import NationalId
from idp.security import audit
from idp.wizard import WIZARD_LIFETIME


class AlreadyHasAccount(IdpError):
    """The person has an active cloud account: 忘記密碼 is the way (R-C6)."""

    status = 409
    code = "account_exists"
    message = _l("You already have an education cloud account.")


class AccountIsDisabled(IdpError):
    """The person's cloud account is disabled: 啟用帳號 is the way for students (R-C6, R-C5)."""

    status = 409
    code = "account_disabled"
    message = _l("Your education cloud account has been disabled.")


class PersonGone(IdpError):
    """The identified person is no longer known (a source removed them while the flow waited)."""

    status = 409
    code = "person_gone"
    message = _l("Your personal data could not be found any more. Please start again.")


def _refuse(account: Account | None, *, person_id: int, school_code: str, role: str) -> None:
    """Raise the answer for a person who already has an account (and audit it); nothing otherwise."""
    if account is None:
        return
    reason = "exists" if account.is_active else "disabled"
    audit.record(audit.APPLY_REFUSED, actor=None, reason=reason, person_id=person_id, school_code=school_code,
                 role=role)
    if account.is_active:
        raise AlreadyHasAccount(username=accounts.mask_username(account.username))
    raise AccountIsDisabled(username=accounts.mask_username(account.username), reason=account.disabled_reason)


def identify_applicant(*, school_code: str, role: str, name: str, national_id: NationalId, birthday: dt.date,
                       ip: str | None) -> identify.Identified:
    """The applicant, identified at the chosen school in the chosen role; or ``NoPersonalData``,
    ``AlreadyHasAccount``, ``AccountIsDisabled`` (each audited: the caller commits the audit row
    and shows the answer), or ``RateLimited``."""
    try:
        found = identify.identify(school_code=school_code, role=role, name=name, national_id=national_id,
                                  birthday=birthday, ip=ip)
    except identify.NoPersonalData:
        audit.record(audit.APPLY_REFUSED, actor=None, reason="no_data", school_code=school_code, role=role)
        raise
    audit.record(audit.APPLY_IDENTIFIED, actor=None, person_id=found.person_id, school_code=school_code, role=role)
    _refuse(accounts.get_account(found.account_id), person_id=found.person_id, school_code=school_code, role=role)
    return found


def _own_data(person: Any, birthday: dt.date | None) -> dict[str, Any]:
    """The person's ID and birthday for the password rules. A month-day-only source (the proxy
    platform) knows no year: the birthday the person typed (which matched it) stands in."""
    own = identity.own_data(person)
    if own["birthday"] is None and birthday is not None:
        own["birthday"] = birthday
    return own


def _person(person_id: int) -> Any:
    person = identity.get_person(person_id)
    if person is None:
        raise PersonGone()
    return person


def check_choice(*, person_id: int, username: str, password: str, birthday: dt.date | None = None) -> str:
    """The normalised account name if the name and the password follow the rules (with the person's
    own data); ``InvalidField`` naming the field otherwise. Nothing is stored."""
    name = accounts.check_username(username)
    passwords.check(password, username=name, **_own_data(_person(person_id), birthday))
    return name


def create(*, person_id: int, school_code: str, role: str, username: str, password: str, email: str | None,
           mobile: str | None, birthday: dt.date | None = None) -> Account:
    """Create the person's cloud account, link it, make the chosen school their current one; audited
    ``account.applied``. All or nothing: the caller commits once."""
    person = _person(person_id)
    _refuse(accounts.get_account(person.account_id), person_id=person.id, school_code=school_code, role=role)
    account = accounts.create_account(username, password, name=person.name, email=email or None,
                                      phone=mobile or None, kind="cloud", own_data=_own_data(person, birthday))
    identity.link_account(person, account, actor=account.username)
    identity.set_current_school(person, school_code, actor=account.username)
    audit.record(audit.ACCOUNT_APPLIED, actor=account.username, account_id=account.id, person_id=person.id,
                 school_code=school_code, role=role, email=bool(email), mobile=bool(mobile))
    return account


# -- the password between "choose" and "create" ------------------------------------------------
def seal(password: str) -> tuple[str, str]:
    """(sealed password for the wizard state, key for the session cookie)."""
    key = Fernet.generate_key()
    return Fernet(key).encrypt(password.encode()).decode("ascii"), key.decode("ascii")


def unseal(sealed: str | None, key: str | None) -> str | None:
    """The password, or None when either half is missing, altered or older than the wizard's lifetime."""
    if not sealed or not key:
        return None
    try:
        return Fernet(key.encode("ascii")).decrypt(sealed.encode("ascii"), ttl=WIZARD_LIFETIME).decode()
    except (InvalidToken, ValueError, UnicodeError):
        return None
