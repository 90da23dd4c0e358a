"""What operators do to one account from the console (issue 10 items 7 and 14, R-C5, R-N3).

Find an account by its exact name and see what matters when a person calls customer service: its
kind and status, who disabled it, why and when (the inactivity rule or an operator, with the
operator's note), the last sign-in, the person it belongs to, and whether sign-in is being slowed
after failures. Then disable it (an operator's reason, with a note), enable it, or "unlock" it:
forget its sign-in failures, so the owner gets the free tries again at once (guessing only ever
slows sign-in down, but a pupil should not have to wait out a classmate's guesses).

Every look-up and every change is audited under the operator's name. Disabling signs the account
out everywhere (``signals.account_disabled``), so that enabling it later does not bring its old
sessions back. Services add and flush; the console view commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l

from idp import notify
from idp.accounts import services as accounts
from idp.accounts import signals
from idp.accounts.models import DISABLED_BY_OPERATOR, Account
from idp.errors import InvalidField, NotFound
from idp.extensions import db, settings
from idp.security import audit, ratelimit

# What the account page lists of its history.
HISTORY = (audit.ACCOUNT_CREATED, audit.ACCOUNT_DISABLED, audit.ACCOUNT_ENABLED, audit.ACCOUNT_ACTIVATED,
           audit.PASSWORD_CHANGED, audit.PASSWORD_RESET, audit.ACCOUNT_UNLOCKED, audit.IDENTITY_LINKED)


@dataclass(frozen=True)
class AccountView:
    """One account as the console shows it; ``person`` is None for members and unlinked accounts."""

    account: Account
    person: Any
    current_school: str | None
    disable_note: str | None
    failures: int
    wait: int
    history: list[Any]
    email: str | None  # masked (s***@example.edu.tw): enough to tell a caller which address it is
    phone: str | None
    window_minutes: int  # failures are forgotten this long after the last one


def find(username: str, actor: str) -> Account | None:
    """The account with exactly this name (case-insensitive, as sign-in compares), or None. Audited."""
    account = accounts.get_account_by_username(username[:64])
    audit.record(audit.ACCOUNT_LOOKUP, actor=actor, found=account is not None,
                 **({"account_id": account.id} if account is not None else {}))
    return account


def _get(account_id: int) -> Account:
    account = accounts.get_account(account_id)
    if account is None:
        raise NotFound()
    return account


def view(account_id: int) -> AccountView:
    from idp.identity import services as identity
    from idp.schools.services import names

    account = _get(account_id)
    person = identity.person_for_account(account.id)
    code = person.current_school_code if person is not None else None
    school = f"{names({code}).get(code, '')} ({code})".strip() if code else None
    note = None
    if not account.is_active:
        latest = audit.events_for_account(account.id, (audit.ACCOUNT_DISABLED,), limit=1)
        note = latest[0].data.get("note") if latest else None
    failures, wait = ratelimit.login_failures(account.username)
    return AccountView(account, person, school, note, failures, wait,
                       audit.events_for_account(account.id, HISTORY, limit=20),
                       notify.mask_address(account.email) if account.email else None,
                       notify.mask_address(account.phone) if account.phone else None,
                       max(1, settings().login_failure_window // 60))


def disable(account_id: int, note: str, actor: str) -> Account:
    """Disable by an operator, with a note saying why; the account is signed out everywhere."""
    account = _get(account_id)
    note = (note or "").strip()
    if account.username == actor:
        raise InvalidField("note", _l("You cannot disable your own account."))
    if not note:
        raise InvalidField("note", _l("Say why (for the audit trail and the next operator)."))
    if not account.is_active:
        raise InvalidField("note", _l("This account is already disabled."), status=409)
    accounts.disable(account, reason=DISABLED_BY_OPERATOR, actor=actor, note=note)
    signals.account_disabled.send(account.id, reason=DISABLED_BY_OPERATOR)
    db.session.flush()
    return account


def enable(account_id: int, actor: str) -> Account:
    """Enable a disabled account (the person signs in with the password they had)."""
    account = _get(account_id)
    if account.is_active:
        raise InvalidField("enable", _l("This account is already active."), status=409)
    accounts.enable(account, actor=actor, how="operator")
    return account


def unlock(account_id: int, actor: str) -> Account:
    """Forget the account's sign-in failures (every address, every browser). Audited."""
    account = _get(account_id)
    failures, _wait = ratelimit.login_failures(account.username)
    ratelimit.unlock_account(account.username)
    audit.record(audit.ACCOUNT_UNLOCKED, actor=actor, account_id=account.id, failures=failures)
    db.session.flush()
    return account
