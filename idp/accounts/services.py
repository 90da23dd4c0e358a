"""Account rules: creation, passwords, authentication (R-A1, R-A2, R-L1, R-N3).

Passwords are hashed with argon2id; parameters come from settings, and a hash made with
older parameters is replaced at the next successful login, so raising the cost needs no
migration. Authentication gives one message for "no such account" and "wrong password" and
spends the same time on both, so the login form cannot be used to discover who has an account.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm.attributes import set_committed_value

from idp.accounts import passwords
from idp.accounts.models import DISABLED_INACTIVE, DISABLED_REASONS, Account, UsedUsername
from idp.db import adopt, read_alone, write_alone
from idp.errors import IdpError, InvalidField, RateLimited
from idp.extensions import db, settings
from idp.security import audit, devices, ratelimit
from idp.store import Batch

log = logging.getLogger(__name__)

# Lifelong account names the person chooses (R-L1): lower-case letters, digits, '.', '_', '-'.
USERNAME_RE = re.compile(r"^[a-z0-9._-]{6,30}$")


class InvalidCredentials(IdpError):
    status = 401
    code = "invalid_credentials"
    message = _l("The account or password is incorrect.")


class AccountDisabled(IdpError):
    status = 403
    code = "account_disabled"
    message = _l("This account has been disabled. Students can re-activate it with their personal data.")


class CaptchaRequired(IdpError):
    """The account (or this address's tries at it) is past its free failures: the next attempt needs
    a solved captcha. Asking is not a failure: nothing is counted or reserved."""

    status = 400
    code = "captcha_required"
    message = _l("Please type the security code shown below, then sign in again.")


class InvalidUsername(InvalidField):
    code = "invalid_username"

    def __init__(self, field: str = "username") -> None:
        super().__init__(field, _l("The account name must be 6–30 characters: lower-case letters, digits, "
                                   "'.', '_' or '-'."))


class UsernameTaken(InvalidField):
    status = 409
    code = "username_taken"

    def __init__(self, field: str = "username") -> None:
        super().__init__(field, _l("This account name is taken (names are never given out twice). "
                                   "Please choose another."))


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


def check_username(username: str, field: str = "username") -> str:
    """The normalised name if it follows the rule and was never taken by anyone; else InvalidField."""
    name = normalise_username(username)
    if not USERNAME_RE.fullmatch(name):
        raise InvalidUsername(field)
    if db.session.get(UsedUsername, name) is not None or get_account_by_username(name) is not None:
        raise UsernameTaken(field)
    return name


def check_password_rules(username: str, password: str, **own_data: Any) -> None:
    """``passwords.check`` with the account name (and any of national_id, birthday)."""
    passwords.check(password, username=username, **own_data)


def mask_username(username: str) -> str:
    """``st****01``: enough for the owner to recognise (forgot account, "you already have one"), too
    little for anyone else to use."""
    if len(username) <= 4:
        return username[:1] + "*" * (len(username) - 1)
    return f"{username[:2]}{'*' * (len(username) - 4)}{username[-2:]}"


def get_account(account_id: int | None) -> Account | None:
    """The account with this id, or None; the one way other packages read accounts."""
    if account_id is None:
        return None
    return db.session.get(Account, account_id)


def account_with_statement(column: Any, join_on: Any) -> sa.Select:
    """The statement ``get_account_with`` runs: the account's columns, then ``column`` of the table
    outer-joined on ``join_on(account id column)``, which may name more bound parameters. Make it
    once and keep it: building a statement and its cache key cost more CPU than running it (issue 11)."""
    table = Account.__table__
    return (sa.select(*_account_columns()[0], column).select_from(table)
            .outerjoin(column.table, join_on(table.c.id)).where(table.c.id == sa.bindparam("account_id")))


def get_account_with(statement: sa.Select, account_id: int, **params: Any) -> tuple[Account | None, Any]:
    """The account with this id and one value another package keeps about it, in one statement
    (``account_with_statement``): an authorization reads the consent its app was given this way,
    one round trip, not two, on its own (``read_alone``, as a sign-in reads its account). ``(None,
    None)`` without the account; the value is None when the other table has no row."""
    row = read_alone(statement, {"account_id": account_id, **params})
    if row is None:
        return None, None
    return adopt(Account, dict(zip(_account_columns()[1], row, strict=False))), row[-1]


@functools.cache
def _account_columns() -> tuple[tuple[Any, ...], tuple[str, ...]]:
    """The account table's columns in the mapper's order, and the attribute each is."""
    attributes = sa.inspect(Account).column_attrs
    return tuple(a.columns[0] for a in attributes), tuple(a.key for a in attributes)


def get_account_by_username(username: str) -> Account | None:
    return db.session.execute(
        db.select(Account).filter_by(username=normalise_username(username))).scalar_one_or_none()


@functools.cache
def _sign_in_statement() -> tuple[sa.Select, tuple[str, ...]]:
    """Made once (see ``account_with_statement``): the account's columns, then whether a person
    stands behind it; and the attribute each column is. The person table is named, not imported:
    accounts sits below identity."""
    person = db.metadata.tables["person"]
    columns, keys = _account_columns()
    known = sa.exists().where(person.c.account_id == Account.__table__.c.id)
    statement = sa.select(*columns, known).where(Account.__table__.c.username == sa.bindparam("name"))
    return statement, keys


def _account_for_sign_in(name: str) -> Account | None:
    """The account a password sign-in is for, read together with whether a trusted source knows
    its person (``identity_known``, which the new session's assurance level depends on,
    ``identity.assurance.acr_for``): one statement where there were two, on its own
    (``read_alone``: no pool check-out, no ORM query; issue 11), the object then given to the
    session as if it had loaded it."""
    statement, keys = _sign_in_statement()
    row = read_alone(statement, {"name": name})
    if row is None:
        return None
    account = adopt(Account, dict(zip(keys, row, strict=False)))
    account.identity_known = bool(row[-1])  # not a column: this load's answer, for this request
    return account


def create_account(username: str, password: str | None, *, name: str = "", email: str | None = None,
                   kind: str = "member", is_operator: bool = False, actor: str | None = None,
                   own_data: dict[str, Any] | None = None, **fields: Any) -> Account:
    """Create an account after checking the name and password rules; the name is taken for good.
    ``own_data`` (national_id, birthday) lets the password rules refuse a password built from them.
    ``password=None``: an account without a password (created on a first county sign-in, R-L2: the
    person signs in with the county, and 忘記密碼 with their personal data gives them one)."""
    username = check_username(username)
    if password is not None:
        check_password_rules(username, password, **(own_data or {}))
    if kind not in {"member", "cloud"}:
        raise IdpError(_l("Unknown account kind."))
    now = dt.datetime.now(dt.UTC)
    account = Account(username=username, password_hash=hash_password(password) if password is not None else None,
                      name=name, email=email, kind=kind, is_operator=is_operator,
                      password_changed_at=now if password is not None else None, **fields)
    db.session.add(account)
    db.session.flush()
    db.session.add(UsedUsername(username=username, account_id=account.id, taken_at=now))
    audit.record(audit.ACCOUNT_CREATED, actor=actor or username, account_id=account.id, kind=kind)
    db.session.flush()
    return account


def rename(account: Account, new_name: str, actor: str, *, field: str = "username") -> str:
    """Give an account a new name (R-L1: the person's own choice, e.g. instead of the one a county
    sign-in made up). The new name follows ``check_username`` (never used by anyone, ever); the old
    one stays in ``used_username``, so it is never issued to someone else. Audited; returns the name."""
    name = normalise_username(new_name)
    if name == account.username:
        return name
    name = check_username(name, field)
    old = account.username
    account.username = name
    db.session.add(UsedUsername(username=name, account_id=account.id, taken_at=dt.datetime.now(dt.UTC)))
    audit.record(audit.ACCOUNT_RENAMED, actor=actor, account_id=account.id, was=old, now=name)
    db.session.flush()
    return name


def set_password(account: Account, password: str, *, actor: str | None = None, reason: str = "changed",
                 field: str = "password", **own_data: Any) -> None:
    """A new password (rules checked, with the person's own data when given); audited. ``field``
    names the form field a refusal is shown beside."""
    passwords.check(password, username=account.username, field=field, **own_data)
    account.password_hash = hash_password(password)
    account.password_changed_at = dt.datetime.now(dt.UTC)
    audit.record(audit.PASSWORD_CHANGED, actor=actor or account.username, account_id=account.id, reason=reason)
    db.session.flush()


def disable(account: Account, *, reason: str, actor: str, note: str | None = None) -> None:
    """Disable an account and say who and why (R-C5). Its sessions stop counting at once (a disabled
    account is signed out everywhere); students can re-activate with their personal data. An
    operator's ``note`` (why, in their words) is kept in the audit row the console shows."""
    if reason not in DISABLED_REASONS:
        raise IdpError(_l("Unknown reason."))
    if not account.is_active:
        return
    account.status = "disabled"
    account.disabled_at, account.disabled_reason, account.disabled_by = dt.datetime.now(dt.UTC), reason, actor
    audit.record(audit.ACCOUNT_DISABLED, actor=actor, account_id=account.id, reason=reason,
                 **({"note": note.strip()[:500]} if note and note.strip() else {}))
    db.session.flush()


def enable(account: Account, *, actor: str, how: str) -> None:
    """Make an account active again (``how``: "activation" by its owner, "operator"); audited."""
    if account.is_active:
        return
    audit.record(audit.ACCOUNT_ENABLED, actor=actor, account_id=account.id, how=how,
                 was=account.disabled_reason)
    account.status = "active"
    account.disabled_at = account.disabled_reason = account.disabled_by = None
    db.session.flush()


def disable_inactive(days: int, *, now: dt.datetime | None = None, batch: int = 1000) -> int:
    """Disable accounts nobody has signed in to for ``days`` days (``account_inactivity_days``); the
    ``flask accounts disable-inactive`` job. Operators are never disabled this way. Caller commits."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    last_seen = sa.func.coalesce(Account.last_login_at, Account.created_at)
    stale = db.session.scalars(sa.select(Account).where(Account.status == "active", Account.is_operator.is_(False),
                                                         last_seen < cutoff).limit(batch)).all()
    for account in stale:
        disable(account, reason=DISABLED_INACTIVE, actor="inactivity-rule")
    return len(stale)


Throttles = list[tuple[ratelimit.Throttle, str]]


def _throttles_for(username: str, ip: str, device_cookie: str | None) -> tuple[str, str | None, Throttles]:
    """The normalised name, the browser's device nonce for it (or None) and the throttles an attempt
    of it from ``ip`` goes through."""
    name = normalise_username(username)
    nonce = devices.trusted_nonce(device_cookie, name) if name else None
    return name, nonce, ratelimit.login_throttles(name, ip, nonce)


def _too_many(retry_after: int, device: bool) -> RateLimited:
    log.info("sign-in attempt refused: %s waits %d s", "device" if device else "account", retry_after)
    return RateLimited(retry_after, _l("Too many failed sign-in attempts. Please wait %(seconds)d seconds "
                                       "and try again.", seconds=retry_after))


def _refuse_while_waiting(throttles: Throttles, ip: str, nonce: str | None) -> ratelimit.Look:
    """``RateLimited`` when an attempt now would be refused for waiting: the address's ceiling
    (except for a trusted browser) or a closed gate; else what the throttles say. Only looks."""
    try:
        if nonce is None:
            ratelimit.check(ratelimit.login_ip(), ip)
        state = ratelimit.look(throttles)
    except RateLimited as exc:
        raise _too_many(exc.retry_after, bool(nonce)) from None
    if state.wait:
        raise _too_many(state.wait, bool(nonce))
    return state


def captcha_needed(username: str, ip: str | None, device_cookie: str | None = None) -> bool:
    """Would a sign-in of ``username`` from here have to come with a solved captcha? (Only looks.)
    The login page asks this to show the captcha before the person is refused for lacking one."""
    name, _nonce, throttles = _throttles_for(username, ip or "unknown", device_cookie)
    return bool(name) and ratelimit.past_free(throttles)


@dataclass(frozen=True)
class SignInCheck:
    """What ``sign_in_check`` found, handed to ``authenticate`` for the same attempt so that the
    throttles are not looked up twice in one request (each look is a round trip to the store)."""

    captcha_needed: bool
    name: str
    nonce: str | None
    throttles: Throttles


def sign_in_check(username: str, ip: str | None, device_cookie: str | None = None) -> SignInCheck:
    """Before the login page checks anything the person typed: ``RateLimited`` when the attempt would
    have to wait (so a captcha typed meanwhile is not used up for nothing), else whether it must come
    with a solved captcha (``captcha_needed``). Only looks; ``authenticate`` decides (its
    reservation is atomic and refuses a gate that closed since)."""
    ip = ip or "unknown"
    name, nonce, throttles = _throttles_for(username, ip, device_cookie)
    needed = bool(name) and _refuse_while_waiting(throttles, ip, nonce).past_free
    return SignInCheck(needed, name, nonce, throttles)


def authenticate(username: str, password: str, ip: str | None, device_cookie: str | None = None, *,
                 captcha_solved: bool = False, checked: SignInCheck | None = None,
                 then: Batch | None = None) -> Account:
    """The account for these credentials, or a domain error; guessing is slowed, never locked.

    Throttles are reserved before the (deliberately slow) hash and given back on success
    (``ratelimit.attempt``): failures of this account from this address, and from all addresses,
    each allow a few free tries and then a doubling wait up to ``login_max_delay``; a browser
    holding this account's device cookie is judged by its own failures instead, so nobody can
    lock the owner out of their own browser. An address that fails across very many accounts meets
    a hard ceiling (``login.ip``), again except for such browsers. Counters are keyed on the
    normalised name (``Student1`` and ``student1`` share one), while audit rows keep the name as
    typed (never the password), which is what an investigator needs.

    ``checked``: what ``sign_in_check`` found for this very attempt, earlier in the same request
    (its look is not repeated). ``then``: a success's store writes (the throttles forgotten) are
    queued there, for the caller to send with its own (the new session), instead of at once.

    Past the free failures an attempt also needs ``captcha_solved`` (the caller checked a captcha
    for this very attempt), else ``CaptchaRequired``: scripted guessing then costs a solved captcha
    per try on top of the delay. A closed gate is reported first (the person waits, then solves one
    captcha), and neither refusal counts as a failure, so the owner, who knows the password, gets in
    within ``login_max_delay`` however many wrong passwords others typed (issue 10 item 13).
    """
    typed = (username or "").strip()[:64]
    ip = ip or "unknown"
    if checked is not None and checked.name == normalise_username(username):  # looked in this request
        name, nonce, throttles, past_free = checked.name, checked.nonce, checked.throttles, checked.captcha_needed
    else:
        name, nonce, throttles = _throttles_for(username, ip, device_cookie)
        past_free = _refuse_while_waiting(throttles, ip, nonce).past_free
    if not captcha_solved and past_free:
        raise CaptchaRequired()
    try:
        gated = ratelimit.attempt(throttles)
    except RateLimited as exc:  # another attempt closed the gate meanwhile
        raise _too_many(exc.retry_after, bool(nonce)) from None
    account = _account_for_sign_in(name) if name else None
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
    ratelimit.succeeded(throttles, then)
    if not account.is_active:
        audit.record(audit.LOGIN_FAILURE, actor=typed, reason="disabled", account_id=account.id)
        raise AccountDisabled(reason=account.disabled_reason)
    if hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hasher.hash(password)
        audit.record(audit.PASSWORD_REHASHED, actor=typed, account_id=account.id)
    _signed_in_now(account, typed)
    return account


def _signed_in_now(account: Account, typed: str) -> None:
    """``last_login_at`` (and ``updated_at``) written by one UPDATE of those two columns, and the
    sign-in's audit row, in one round trip: through the unit of work, or as statements of their
    own, they cost more than the sign-in's other SQL together (issue 11). On PostgreSQL they are
    committed together, on their own (``write_alone``), once the password proved right: what comes
    after (the session in the store) failing leaves a true record of the sign-in. The loaded
    object gets the same values, not marked changed."""
    now = dt.datetime.now(dt.UTC)
    write_alone([(_SIGNED_IN_NOW, {"account_id": account.id, "at": now}),
                 audit.row(audit.LOGIN_SUCCESS, actor=typed, account_id=account.id)])
    set_committed_value(account, "last_login_at", now)
    set_committed_value(account, "updated_at", now)


_SIGNED_IN_NOW = (Account.__table__.update().where(Account.__table__.c.id == sa.bindparam("account_id"))
                  .values(last_login_at=sa.bindparam("at"), updated_at=sa.bindparam("at")))


def verify_password(account: Account, password: str, ip: str | None, *, field: str = "password") -> None:
    """Check the current password of a signed-in person before a change (R-N3): throttled like a sign-in
    from this address, so a borrowed session cannot be used to guess it; a miss is audited and
    raises ``InvalidField`` beside ``field``."""
    ip = ip or "unknown"
    throttles = ratelimit.login_throttles(account.username, ip)
    try:
        ratelimit.attempt(throttles)
    except RateLimited as exc:
        raise RateLimited(exc.retry_after, _l("Too many wrong passwords. Please wait %(seconds)d seconds and try "
                                              "again.", seconds=exc.retry_after)) from None
    try:
        ok = bool(account.password_hash) and _hasher().verify(account.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        audit.record(audit.PASSWORD_CHECK_FAILED, actor=account.username, account_id=account.id)
        raise InvalidField(field, _l("That is not your current password."))
    ratelimit.succeeded(throttles)
