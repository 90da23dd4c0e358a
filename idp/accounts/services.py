"""Account rules: creation, passwords, authentication (R-A1, R-A2, R-L1, R-N3).

Passwords are hashed with argon2id; parameters come from settings, and a hash made with
older parameters is replaced at the next successful login, so raising the cost needs no
migration. Authentication gives one message for "no such account" and "wrong password" and
spends the same time on both, so the login form cannot be used to discover who has an account.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l

from idp.accounts.models import Account
from idp.errors import IdpError, RateLimited
from idp.extensions import db, settings
from idp.security import audit, devices, ratelimit

log = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{3,63}$")
MIN_PASSWORD = 8


class InvalidCredentials(IdpError):
    status = 401
    code = "invalid_credentials"
    message = _l("The account or password is incorrect.")


class AccountDisabled(IdpError):
    status = 403
    code = "account_disabled"
    message = _l("This account has been disabled. Students can re-activate it with their personal data.")


class InvalidUsername(IdpError):
    code = "invalid_username"
    message = _l("The account name must be 4–64 characters: letters, digits, '.', '_' or '-', "
                 "starting with a letter or digit.")


class UsernameTaken(IdpError):
    status = 409
    code = "username_taken"
    message = _l("This account name is already taken. Please choose another.")


class WeakPassword(IdpError):
    code = "weak_password"
    message = _l("The password must be at least 8 characters and must not be the account name.")


def _hasher() -> PasswordHasher:
    hasher = current_app.extensions.get("idp.password_hasher")
    if hasher is None:
        s = settings()
        hasher = PasswordHasher(time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_cost,
                                parallelism=s.argon2_parallelism)
        current_app.extensions["idp.password_hasher"] = hasher
    return hasher


def _dummy_hash() -> str:
    """A hash to verify against for unknown accounts, so both paths cost the same."""
    cached = current_app.extensions.get("idp.dummy_hash")
    if cached is None:
        cached = current_app.extensions["idp.dummy_hash"] = _hasher().hash("not-a-real-password")
    return cached


def normalise_username(username: str) -> str:
    return (username or "").strip().lower()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def check_password_rules(username: str, password: str) -> None:
    if len(password or "") < MIN_PASSWORD or normalise_username(password) == normalise_username(username):
        raise WeakPassword()


def get_account(account_id: int | None) -> Account | None:
    """The account with this id, or None; the one way other packages read accounts."""
    if account_id is None:
        return None
    return db.session.get(Account, account_id)


def get_account_by_username(username: str) -> Account | None:
    return db.session.execute(
        db.select(Account).filter_by(username=normalise_username(username))).scalar_one_or_none()


def create_account(username: str, password: str, *, name: str = "", email: str | None = None,
                   kind: str = "member", is_operator: bool = False, actor: str | None = None,
                   **fields: Any) -> Account:
    """Create an account after checking the name and password rules; audited."""
    username = normalise_username(username)
    if not USERNAME_RE.match(username):
        raise InvalidUsername()
    check_password_rules(username, password)
    if kind not in {"member", "cloud"}:
        raise IdpError(_l("Unknown account kind."))
    if get_account_by_username(username) is not None:
        raise UsernameTaken()
    account = Account(username=username, password_hash=hash_password(password), name=name, email=email,
                      kind=kind, is_operator=is_operator, **fields)
    db.session.add(account)
    db.session.flush()
    audit.record(audit.ACCOUNT_CREATED, actor=actor or username, account_id=account.id, kind=kind)
    return account


def set_password(account: Account, password: str) -> None:
    check_password_rules(account.username, password)
    account.password_hash = hash_password(password)


def authenticate(username: str, password: str, ip: str | None, device_cookie: str | None = None) -> Account:
    """The account for these credentials, or a domain error; guessing is slowed, never locked.

    Throttles are reserved before the (deliberately slow) hash and given back on success
    (``ratelimit.attempt``): failures of this account from this address, and from all addresses,
    each allow a few free tries and then a doubling wait up to ``login_max_delay``; a browser
    holding this account's device cookie is judged by its own failures instead, so nobody can
    lock the owner out of their own browser. An address that fails across very many accounts meets
    a hard ceiling (``login.ip``), again except for such browsers. Counters are keyed on the
    normalised name (``Student1`` and ``student1`` share one), while audit rows keep the name as
    typed (never the password), which is what an investigator needs.
    """
    name = normalise_username(username)
    typed = (username or "").strip()[:64]
    ip = ip or "unknown"
    nonce = devices.trusted_nonce(device_cookie, name) if name else None
    throttles = ([(ratelimit.login_device(), nonce)] if nonce else
                 [(ratelimit.login_pair(), f"{name}|{ip}"), (ratelimit.login_account(), name)])
    try:
        if nonce is None:
            ratelimit.check(ratelimit.login_ip(), ip)
        gated = ratelimit.attempt(throttles)
    except RateLimited as exc:
        log.info("sign-in attempt refused: %s waits %d s", "device" if nonce else "account", exc.retry_after)
        raise RateLimited(exc.retry_after, _l("Too many failed sign-in attempts. Please wait %(seconds)d seconds "
                                              "and try again.", seconds=exc.retry_after)) from None
    account = get_account_by_username(name) if name else None
    ok = False
    hasher = _hasher()
    try:
        # Unknown accounts are checked against a dummy hash: the same work, so the response
        # time does not reveal whether the account exists.
        ok = hasher.verify(account.password_hash if account and account.password_hash else _dummy_hash(),
                           password or "")
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or account is None:
        if nonce is None:
            ratelimit.count_failure(ratelimit.login_ip(), ip)
        audit.record(audit.LOGIN_FAILURE, actor=typed, reason="bad_credentials")
        if gated:
            audit.record(audit.LOGIN_LOCKED, actor=typed, reason="throttled", device=bool(nonce))
        raise InvalidCredentials()
    ratelimit.succeeded(throttles)
    if not account.is_active:
        audit.record(audit.LOGIN_FAILURE, actor=typed, reason="disabled", account_id=account.id)
        raise AccountDisabled()
    if hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hasher.hash(password)
        audit.record(audit.PASSWORD_REHASHED, actor=typed, account_id=account.id)
    account.last_login_at = dt.datetime.now(dt.UTC)
    audit.record(audit.LOGIN_SUCCESS, actor=typed, account_id=account.id)
    return account
