"""One-time codes sent to an e-mail address or a mobile number (R-C7 backup contacts, R-A1 member
sign-up, R-C4 password reset by code; R-N3 limits and audit).

A code is 6 digits from ``secrets``, valid ``otp_lifetime`` seconds (10 minutes) for
``otp_max_tries`` tries (5). The person gets the code; the caller gets a ``Challenge`` whose id it
keeps (wizard state, session) and later passes to ``verify`` with what the person typed.

What is kept, and where: the store holds, under the challenge id, the purpose, the target (the
address or number being proved), the channel, the number of tries allowed and an HMAC of the code
keyed with the app's secret and bound to the challenge id, never the code itself: somebody who
reads the store cannot try the million codes offline. The entry expires with the code.

Guessing is bounded twice over:

* ``otp.send`` (named limit, checked *before* anything is sent): ``otp_sends_per_target`` codes
  per address or number per ``otp_send_window`` (3 per 10 minutes), so nobody floods a pupil's
  mailbox or phone; ``otp_sends_per_target_per_day`` (10), so that guessing a person's codes day
  after day stays hopeless (50 guesses a day against a million codes); and
  ``otp_sends_per_address`` per requesting IP address per hour (20), so one machine cannot open
  challenges by the hundred. Refusals are ``RateLimited`` with Retry-After.
* ``otp.verify``: the tries of one challenge. A try is *reserved* (one atomic increment in the
  store) before the code is compared, so twenty parallel guesses still get five comparisons; the
  fifth wrong code deletes the challenge (``TooManyTries``, 429). A right code consumes the
  challenge (an atomic get-and-delete), so it works once, even when sent twice at the same moment.

Audit rows (``otp.sent``, ``otp.verified``, ``otp.failed``) name the purpose, the channel and the
target masked (``s***@example.edu.tw``, ``09****5678``), never the code. They join the caller's
transaction: a view that turns ``WrongCode`` into a message beside the field commits, so the
failure is kept (as the login page does for a wrong password).

A ``OneTimeCode`` cannot leak by accident, like ``identity.nationalid.NationalId``: ``str`` and
``repr`` show ``******``, it refuses to be pickled, and only ``reveal()`` (for the message that
carries it) gives the digits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
import time
import unicodedata

from flask import current_app, has_request_context, request
from flask_babel import lazy_gettext as _l

from idp import notify
from idp.errors import IdpError, InvalidField, RateLimited
from idp.extensions import settings, store
from idp.security import audit, ratelimit

# purpose -> the message template (templates/notify/<template>.*) that explains it
PURPOSES = {
    "contact.email": "otp_contact",
    "contact.mobile": "otp_contact",
    "password.reset": "otp_password_reset",
    "member.signup": "otp_member_signup",
}
CHANNELS = ("email", "sms")
DIGITS = 6
ADDRESS_WINDOW = 3600  # otp_sends_per_address counts per hour
DAY = 86400

_CHALLENGE_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")
_MOBILE = re.compile(r"09[0-9]{8}")


# -- the code ----------------------------------------------------------------------------------
class OneTimeCode:
    """Six digits that never show themselves: compare with ``==`` (constant time), send with
    ``reveal()``, store ``mac(challenge_id)``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @classmethod
    def generate(cls) -> OneTimeCode:
        return cls(f"{secrets.randbelow(10 ** DIGITS):0{DIGITS}d}")

    @classmethod
    def parse(cls, raw: object) -> OneTimeCode | None:
        """What a person typed: full-width digits (a Chinese input method), spaces and dashes are
        fine; anything that cannot be six digits is ``None``."""
        if not isinstance(raw, str):
            return None
        text = unicodedata.normalize("NFKC", raw[:64])
        value = "".join(ch for ch in text if not ch.isspace() and ch not in "-‐")
        if len(value) != DIGITS or not value.isascii() or not value.isdigit():
            return None
        return cls(value)

    def reveal(self) -> str:
        """The digits: for the message that carries them to the person, nothing else."""
        return self._value

    def mac(self, challenge_id: str) -> str:
        """What the store keeps: HMAC-SHA-256 keyed with the app's secret, bound to the challenge."""
        key = current_app.config["SECRET_KEY"].encode()
        return hmac.new(key, f"otp:{challenge_id}:{self._value}".encode(), hashlib.sha256).hexdigest()

    @property
    def masked(self) -> str:
        return "*" * DIGITS

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"OneTimeCode({self.masked})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OneTimeCode) and hmac.compare_digest(self._value, other._value)

    __hash__ = None  # type: ignore[assignment]  (a code is compared, never used as a key)

    def __reduce__(self) -> tuple:
        raise TypeError("OneTimeCode is not serialisable: store its mac() instead")


@dataclasses.dataclass(frozen=True)
class Challenge:
    """What the caller keeps: the id (to pass to ``verify``), when the code expires, and the target
    masked (to tell the person where the code went)."""

    id: str
    expires_at: dt.datetime
    masked_target: str


# -- refusals ----------------------------------------------------------------------------------
class WrongCode(InvalidField):
    """Not the code; ``tries_left`` (also in ``data``) more tries before the challenge ends."""

    code = "wrong_code"

    def __init__(self, tries_left: int, message: object = None) -> None:
        super().__init__("code", message or _l("That code is not right. Tries left: %(tries)d.", tries=tries_left),
                         tries_left=tries_left)
        self.tries_left = tries_left


class Expired(InvalidField):
    """The code expired, was used already, or the challenge never existed (they look the same)."""

    code = "code_expired"
    message = _l("This code has expired or has already been used. Please ask for a new code.")

    def __init__(self) -> None:
        super().__init__("code", self.message)


class TooManyTries(IdpError):
    """The last try was used: the challenge is gone, a new code must be asked for."""

    status = 429
    code = "too_many_tries"
    message = _l("Too many wrong codes. This code no longer works: please ask for a new one.")


# -- named limits ------------------------------------------------------------------------------
def send_limit() -> ratelimit.Limit:
    """Codes per target (address or number) per window."""
    s = settings()
    return ratelimit.Limit("otp.send", s.otp_sends_per_target, s.otp_send_window)


def send_daily_limit() -> ratelimit.Limit:
    """Codes per target per day: bounds the guesses anyone can make at one person's codes."""
    return ratelimit.Limit("otp.send", settings().otp_sends_per_target_per_day, DAY)


def send_address_limit() -> ratelimit.Limit:
    """Codes asked for from one IP address per hour, whatever the target."""
    return ratelimit.Limit("otp.send", settings().otp_sends_per_address, ADDRESS_WINDOW)


def _target_key(target: str) -> str:
    """The target as rate-limit keys hold it: a keyed hash (no addresses or numbers in Redis)."""
    key = current_app.config["SECRET_KEY"].encode()
    return "target:" + hmac.new(key, target.lower().encode(), hashlib.sha256).hexdigest()[:32]


def _tag(challenge_id: str) -> str:
    """A short handle for audit rows: joins sent/verified/failed rows without being the id."""
    return hashlib.sha256(challenge_id.encode()).hexdigest()[:12]


def _key(challenge_id: str) -> str:
    return f"otp:{challenge_id}"


def _tries_key(challenge_id: str) -> str:
    return f"otp:{challenge_id}:tries"


def normalise_target(target: str, channel: str) -> str:
    """An e-mail address trimmed, or a Taiwan mobile number as ``09xxxxxxxx`` (full-width digits,
    spaces, dashes and ``+886`` accepted); a target that cannot be one is refused beside its field."""
    text = unicodedata.normalize("NFKC", target or "").strip()
    if channel == "email":
        if len(text) > 254 or not _EMAIL.fullmatch(text):
            raise InvalidField("email", _l("Please enter an e-mail address such as name@example.com."))
        return text
    number = "".join(ch for ch in text if ch not in " -()‐")
    if number.startswith("+886"):
        number = "0" + number[4:]
    if not _MOBILE.fullmatch(number):
        raise InvalidField("mobile", _l("Please enter a mobile number of 10 digits starting with 09."))
    return number


def _check_send_limits(identifiers: list[tuple[ratelimit.Limit, str]]) -> None:
    try:
        for limit, identifier in identifiers:
            ratelimit.check(limit, identifier)
    except RateLimited as exc:
        minutes = max(1, math.ceil(exc.retry_after / 60))
        raise RateLimited(exc.retry_after, _l(
            "You asked for several codes in a short time. You can ask for another in %(minutes)d min.",
            minutes=minutes)) from None


# -- the two operations ------------------------------------------------------------------------
def send_code(purpose: str, target: str, channel: str, *, locale: str | None = None) -> Challenge:
    """Send a new code for ``purpose`` to ``target`` by ``channel`` ("email" or "sms").

    Limits are checked before anything is generated or sent, and each send counts, even one the
    relay then refuses (so a failing relay is not hammered). A code that could not be sent is not
    kept: ``notify.DeliveryFailed`` (503) reaches the caller and the challenge is gone."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown one-time code purpose {purpose!r}")
    if channel not in CHANNELS:
        raise ValueError(f"unknown one-time code channel {channel!r}")
    target = normalise_target(target, channel)
    s = settings()
    limits = [(send_limit(), _target_key(target)), (send_daily_limit(), _target_key(target))]
    if has_request_context() and request.remote_addr:
        limits.append((send_address_limit(), f"address:{request.remote_addr}"))
    _check_send_limits(limits)
    for limit, identifier in limits:
        ratelimit.count_failure(limit, identifier)  # counts this send

    challenge_id = secrets.token_urlsafe(24)
    code = OneTimeCode.generate()
    expires = time.time() + s.otp_lifetime
    store().set_json(_key(challenge_id), {
        "purpose": purpose, "target": target, "channel": channel, "tries": s.otp_max_tries,
        "mac": code.mac(challenge_id), "expires": expires,
    }, s.otp_lifetime)
    minutes = max(1, s.otp_lifetime // 60)
    try:
        if channel == "email":
            notify.send_mail(target, PURPOSES[purpose], locale=locale, code=code.reveal(), minutes=minutes,
                             purpose=purpose)
        else:
            notify.send_sms(target, PURPOSES[purpose], locale=locale, code=code.reveal(), minutes=minutes,
                            purpose=purpose)
    except BaseException:
        store().delete(_key(challenge_id))
        raise
    masked = notify.mask_address(target)
    audit.record(audit.OTP_SENT, purpose=purpose, channel=channel, target=masked, challenge=_tag(challenge_id))
    return Challenge(challenge_id, dt.datetime.fromtimestamp(expires, dt.UTC), masked)


def verify(challenge_id: str, code: str, *, purpose: str | None = None) -> str:
    """The target the code was sent to, when ``code`` is the challenge's code; the challenge is
    then consumed. ``purpose``, when given, must be the one the code was sent for (a code sent to
    sign up does not reset a password).

    Raises ``WrongCode`` (400, ``tries_left``), ``Expired`` (400: expired, used, unknown, or of
    another purpose) or ``TooManyTries`` (429: that was the last try; the challenge is gone)."""
    if not isinstance(challenge_id, str) or not _CHALLENGE_ID.fullmatch(challenge_id):
        raise Expired()
    record = store().get_json(_key(challenge_id))
    if record is None or record["expires"] <= time.time() or (purpose and record["purpose"] != purpose):
        audit.record(audit.OTP_FAILED, reason="expired", challenge=_tag(challenge_id))
        raise Expired()
    fields = {"purpose": record["purpose"], "channel": record["channel"],
              "target": notify.mask_address(record["target"]), "challenge": _tag(challenge_id)}
    allowed = int(record["tries"])
    typed = OneTimeCode.parse(code)
    if typed is None:  # cannot be the code: costs no try, says what a code looks like
        used = int(store().get(_tries_key(challenge_id)) or 0)
        raise WrongCode(max(0, allowed - used), _l("The code is the 6 digits in the message we sent."))
    ttl = max(1, math.ceil(record["expires"] - time.time()))
    used = store().incr(_tries_key(challenge_id), ttl)  # reserve the try before comparing
    if used > allowed:
        store().delete(_key(challenge_id), _tries_key(challenge_id))
        raise TooManyTries()
    if hmac.compare_digest(typed.mac(challenge_id), record["mac"]):
        if store().getdel(_key(challenge_id)) is None:  # a parallel request consumed it first
            raise Expired()
        store().delete(_tries_key(challenge_id))
        audit.record(audit.OTP_VERIFIED, **fields)
        return record["target"]
    left = allowed - used
    audit.record(audit.OTP_FAILED, reason="wrong_code" if left else "too_many_tries", tries_left=left, **fields)
    if left <= 0:
        store().delete(_key(challenge_id), _tries_key(challenge_id))
        raise TooManyTries()
    raise WrongCode(left)
