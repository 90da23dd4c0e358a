"""Forgot account, reset a password, activate a disabled account (R-C1, R-C4, R-C5, R-C6, R-N3).

The rules, as the seed's steps ask for them:

- **忘記帳號** (``find_account``): national ID + birthday (+ the captcha, checked by the form) → the
  account name masked (``st****01``), or "no account yet". Nothing else comes back: no name, no
  school. Looking up is limited like the identification step (``recover.ip`` per address,
  ``recover.id`` per number: checked first, a miss counts).
- **使用個人基本資料重設** and **啟用帳號** (``identify_owner`` then ``reset_with_personal_data``): the
  shared identification step (``identify.identify``; activation is for students only, so the role is
  學生), then a new password checked against the person's own data. A reset also makes the chosen
  school the person's current one (R-C4); an activation enables the account (``how="activation"``),
  whatever disabled it (the inactivity rule or an operator: the seed lets pupils re-activate either).
- **使用備用信箱/手機重設** (``request_code`` → ``verify_code`` → ``reset_with_code``): a code goes
  only to a *verified* backup address, and the request is answered the same way, equally fast,
  whether or not the account exists and has one: the request only draws a token and queues the
  work; a worker thread looks the account up and sends (or not). A token whose account got no code
  behaves at the code step exactly like one that did (wrong code, tries left, too many tries,
  expiry), so nobody learns from this page who has an account or a verified address.

Every successful reset or activation: ``accounts.services.set_password(..., reason=...)``, then the
``password_reset`` signal, on which the login package ends every SSO session of the account and
the oidc package revokes its tokens. Services add and flush; the view commits once.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from idp import notify
from idp.accounts import identify, signals
from idp.accounts import services as accounts
from idp.accounts.models import Account
from idp.errors import IdpError, InvalidField, RateLimited
from idp.extensions import db, settings, store
from idp.identity import protection
from idp.identity import services as identity
from idp.identity.nationalid import NationalId
from idp.security import audit, otp, ratelimit

log = logging.getLogger(__name__)

FLOWS = ("password", "activate")  # the two flows that identify a person with personal data
CHANNELS = ("email", "sms")
POOL = "idp.recover_pool"  # app.extensions: the worker that sends reset codes off the request


# -- answers -------------------------------------------------------------------------------------
class NoAccount(IdpError):
    """The person (or the ID and birthday) has no education cloud account yet: apply (R-C1, R-C6)."""

    status = 404
    code = "no_account"
    message = _l("We found no education cloud account for this person.")


class AccountIsDisabled(IdpError):
    """Resetting the password of a disabled account: activation is the way (R-C6, R-C5)."""

    status = 409
    code = "account_disabled"
    message = _l("Your education cloud account has been disabled.")


class AccountIsActive(IdpError):
    """Activating an account that is not disabled: 忘記密碼 is the way if the password is lost."""

    status = 409
    code = "account_active"
    message = _l("Your education cloud account is active: it does not need to be activated.")


class StartAgain(IdpError):
    """What the flow identified changed meanwhile (a source removed the person, an operator acted)."""

    status = 409
    code = "start_again"
    message = _l("Something changed while you were on these pages. Please start again.")


# -- 忘記帳號 --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FoundAccount:
    """The forgot-account answer: the masked name, and whether the account is disabled."""

    masked: str
    disabled: bool


def find_account(*, national_id: NationalId, birthday: dt.date, ip: str | None) -> FoundAccount:
    """The account of the person with this ID and birthday, masked; ``NoAccount`` when there is none
    (nobody with this ID and birthday, or a person without an account: the same answer). A miss counts
    against ``recover.ip`` and ``recover.id`` (checked first: ``RateLimited``)."""
    by_ip, by_id = ratelimit.recover_ip(), ratelimit.recover_id()
    bi = protection.blind_index(national_id)
    ratelimit.check(by_ip, ip or "unknown")
    ratelimit.check(by_id, bi)
    person = identity.find_by_personal_data(None, national_id, birthday)
    account = accounts.get_account(person.account_id) if person is not None else None
    if account is None:
        ratelimit.count_failure(by_ip, ip or "unknown")
        ratelimit.count_failure(by_id, bi)
        audit.record(audit.ACCOUNT_FOUND, found=False, **({"person_id": person.id} if person is not None else {}))
        raise NoAccount()
    audit.record(audit.ACCOUNT_FOUND, found=True, account_id=account.id, person_id=person.id)
    return FoundAccount(accounts.mask_username(account.username), not account.is_active)


# -- reset or activate with personal data ---------------------------------------------------------
def identify_owner(*, flow: str, school_code: str, name: str, national_id: NationalId, birthday: dt.date,
                   ip: str | None) -> identify.Identified:
    """The person at this school (a student, for activation) whose account this flow may change; or
    the seed's answer, audited: ``NoPersonalData``, ``NoAccount``, ``AccountIsDisabled`` (reset →
    activate), ``AccountIsActive`` (activate → nothing to do). ``RateLimited`` past the limits."""
    role = "學生" if flow == "activate" else None
    try:
        found = identify.identify(school_code=school_code, role=role, name=name, national_id=national_id,
                                  birthday=birthday, ip=ip)
    except identify.NoPersonalData:
        audit.record(audit.RECOVER_REFUSED, flow=flow, reason="no_data", school_code=school_code)
        raise
    _check_account(flow, accounts.get_account(found.account_id), person_id=found.person_id,
                   school_code=school_code)
    return found


def _check_account(flow: str, account: Account | None, *, person_id: int, school_code: str) -> Account:
    reason = ("no_account" if account is None else
              "disabled" if flow == "password" and not account.is_active else
              "active" if flow == "activate" and account.is_active else None)
    if reason is not None:
        audit.record(audit.RECOVER_REFUSED, flow=flow, reason=reason, person_id=person_id, school_code=school_code)
    if account is None:
        raise NoAccount()
    if reason == "disabled":
        raise AccountIsDisabled(username=accounts.mask_username(account.username))
    if reason == "active":
        raise AccountIsActive(username=accounts.mask_username(account.username))
    return account


def owner_account(person_id: int, flow: str) -> Account:
    """The account the identified person is about to change (shown on the new-password step)."""
    person = identity.get_person(person_id)
    if person is None:
        raise StartAgain()
    account = accounts.get_account(person.account_id)
    if account is None or account.is_active != (flow == "password"):
        raise StartAgain()
    return account


def _own_data(person: Any, birthday: dt.date | None) -> dict[str, Any]:
    """ID and birthday for the password rules; a month-day-only source knows no year, so the
    birthday the person typed (which matched it) stands in."""
    own = identity.own_data(person)
    if own["birthday"] is None and birthday is not None:
        own["birthday"] = birthday
    return own


def reset_with_personal_data(*, flow: str, person_id: int, school_code: str, password: str,
                             birthday: dt.date | None) -> Account:
    """Set the new password of the identified person's account, make the chosen school their current
    one, and for ``activate`` enable the account; then end its sessions and tokens. Audited
    ``password.reset`` (how=personal_data) or ``account.activated``. All or nothing."""
    person = identity.get_person(person_id)
    if person is None:
        raise StartAgain()
    account = _check_account(flow, accounts.get_account(person.account_id), person_id=person.id,
                             school_code=school_code)
    reason = "activation" if flow == "activate" else "reset"
    accounts.set_password(account, password, actor=account.username, reason=reason, **_own_data(person, birthday))
    identity.set_current_school(person, school_code, actor=account.username)
    if flow == "activate":
        was = account.disabled_reason
        accounts.enable(account, actor=account.username, how="activation")
        audit.record(audit.ACCOUNT_ACTIVATED, actor=account.username, account_id=account.id, person_id=person.id,
                     school_code=school_code, was=was)
    else:
        audit.record(audit.PASSWORD_RESET, actor=account.username, account_id=account.id, person_id=person.id,
                     school_code=school_code, how="personal_data")
    signals.password_reset.send(account.id, reason=reason)
    db.session.flush()
    return account


# -- reset with a code to the verified backup e-mail or mobile ------------------------------------
def _pending_key(token: str) -> str:
    return f"recover:code:{token}"


def _tries_key(token: str) -> str:
    return f"recover:code:{token}:tries"


def _challenge_key(token: str) -> str:
    return f"recover:code:{token}:challenge"


_pool_lock = threading.Lock()


def _pool() -> Executor:
    pool = current_app.extensions.get(POOL)
    if pool is None:
        with _pool_lock:
            pool = current_app.extensions.get(POOL)
            if pool is None:
                pool = current_app.extensions[POOL] = ThreadPoolExecutor(max_workers=2,
                                                                         thread_name_prefix="recover-code")
    return pool


def request_code(*, username: str, channel: str) -> str:
    """Ask for a reset code for ``username`` by ``channel``; returns the token the flow keeps.

    The same for every name: the request counts against the per-address code limit
    (``otp.send``, as every code request does), draws a token, and hands the rest to a worker
    (``_send_code``), so neither the answer nor its timing depends on whether the account exists,
    is active or has a verified address there, nor on how long the mail relay takes."""
    if channel not in CHANNELS:
        raise InvalidField("channel", _l("Please choose e-mail or text message."))
    limit, address = otp.send_address_limit(), f"address:{request.remote_addr or 'unknown'}"
    try:
        ratelimit.check(limit, address)
    except RateLimited as exc:
        minutes = max(1, math.ceil(exc.retry_after / 60))
        raise RateLimited(exc.retry_after, _l(
            "You asked for several codes in a short time. You can ask for another in %(minutes)d min.",
            minutes=minutes)) from None
    ratelimit.count_failure(limit, address)
    token = secrets.token_urlsafe(24)
    store().set(_pending_key(token), "1", settings().otp_lifetime)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    _pool().submit(_send_code_job, app, token, accounts.normalise_username(username)[:64], channel,
                   str(get_locale() or settings().default_locale), request.remote_addr)
    return token


def _send_code_job(app: Flask, token: str, username: str, channel: str, locale: str, ip: str | None) -> None:
    """The worker's part: find the account and its verified address, send the code, remember the
    challenge under the token. Whatever happens stays here (logged, audited): the person was
    already answered."""
    with app.app_context():
        try:
            _send_code(token, username, channel, locale, ip)
            db.session.commit()
        except Exception:
            log.exception("sending a password-reset code failed")
            db.session.rollback()


def _verified_target(account: Account | None, channel: str) -> str | None:
    if account is None or not account.is_active:
        return None
    if channel == "email":
        return account.email if account.email and account.email_verified else None
    return account.phone if account.phone and account.phone_verified else None


def _send_code(token: str, username: str, channel: str, locale: str, ip: str | None) -> None:
    account = accounts.get_account_by_username(username) if username else None
    target = _verified_target(account, channel)
    outcome = "no_address"
    if account is None:
        outcome = "no_account"
    elif target is not None:
        try:
            challenge = otp.send_code("password.reset", target, channel, locale=locale)
        except (RateLimited, notify.DeliveryFailed, InvalidField) as exc:
            outcome = exc.code
            log.info("password-reset code not sent: %s", exc.code)
        else:
            outcome = "sent"
            store().set_json(_challenge_key(token), {"challenge": challenge.id, "account_id": account.id},
                             settings().otp_lifetime)
    audit.record(audit.PASSWORD_RESET_REQUESTED, actor=username or None, ip=ip, channel=channel, outcome=outcome,
                 **({"account_id": account.id} if account is not None else {}))


def verify_code(token: str | None, code: str) -> int:
    """The account id the code proves, the code consumed. Raises ``otp.WrongCode`` (tries left),
    ``otp.Expired`` or ``otp.TooManyTries``, alike for a token whose account got no code."""
    record = store().get_json(_challenge_key(token)) if token else None
    if record is not None:
        target = otp.verify(record["challenge"], code, purpose="password.reset")
        store().delete(_challenge_key(token), _pending_key(token), _tries_key(token))
        account = accounts.get_account(record["account_id"])
        if account is None or target not in (_verified_target(account, "email"), _verified_target(account, "sms")):
            raise otp.Expired()  # the address changed (or the account went) since the code was sent
        return account.id
    return _decoy_verify(token, code)


def _decoy_verify(token: str | None, code: str) -> int:
    """What ``otp.verify`` answers for a code that was sent, for a token that got none: a malformed
    code costs no try, each other one uses one, the last one ends the token, an old one expired."""
    if not token or store().get(_pending_key(token)) is None:
        raise otp.Expired()
    allowed = settings().otp_max_tries
    if otp.OneTimeCode.parse(code) is None:
        used = int(store().get(_tries_key(token)) or 0)
        raise otp.WrongCode(max(0, allowed - used), _l("The code is the 6 digits in the message we sent."))
    used = store().incr(_tries_key(token), max(1, store().ttl(_pending_key(token)) or 1))
    left = allowed - used
    if left <= 0:
        store().delete(_pending_key(token), _tries_key(token))
        raise otp.TooManyTries()
    raise otp.WrongCode(left)


def code_account(account_id: int) -> Account:
    """The account a verified code proved, still active (else start again)."""
    account = accounts.get_account(account_id)
    if account is None or not account.is_active:
        raise StartAgain()
    return account


def reset_with_code(*, account_id: int, password: str) -> Account:
    """The new password of the account a code proved; then its sessions and tokens end. Audited
    ``password.reset`` (how=code). The password rules use the linked person's own data."""
    account = code_account(account_id)
    person = identity.person_for_account(account.id)
    own = _own_data(person, None) if person is not None else {}
    accounts.set_password(account, password, actor=account.username, reason="reset", **own)
    audit.record(audit.PASSWORD_RESET, actor=account.username, account_id=account.id, how="code")
    signals.password_reset.send(account.id, reason="reset")
    db.session.flush()
    return account
