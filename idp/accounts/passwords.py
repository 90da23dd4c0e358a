"""Password rules (NIST SP 800-63B §5.1.1.2; R-C2, R-C4, R-C5): long enough, not common, not one's own data.

No composition rules (a capital, a digit, a symbol): they make passwords harder for children to
remember and no harder to guess. Instead a password is refused when it is shorter than 8
characters, one of the 30,000 most common passwords (zxcvbn's list, compared case-insensitively),
or built from the person's own data: the account name, the national ID (or its digits), or the
birthday in the spellings people use (2015-05-21, 20150521, 0521, ROC 1040521). Each refusal says
which rule, next to the password field.
"""

from __future__ import annotations

import datetime as dt
import functools
import re

from flask_babel import lazy_gettext as _l

from idp.errors import InvalidField
from idp.identity.nationalid import NationalId

MIN_LENGTH = 8
MAX_LENGTH = 256  # argon2 takes any length; a limit keeps a 1 MB "password" from costing a hash


class WeakPassword(InvalidField):
    code = "weak_password"

    def __init__(self, message: object, field: str = "password") -> None:
        super().__init__(field, message)


@functools.cache
def _common() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def birthday_spellings(birthday: dt.date) -> set[str]:
    """How people write their birthday into a password (Western and ROC years, with and without year)."""
    roc = birthday.year - 1911
    md = f"{birthday.month:02d}{birthday.day:02d}"
    return {f"{birthday.year}{md}", f"{birthday.year % 100:02d}{md}", f"{roc}{md}", f"{roc:03d}{md}",
            f"{md}{birthday.year}", birthday.isoformat(), birthday.strftime("%Y/%m/%d")}


def check(password: str, *, username: str | None = None, national_id: NationalId | None = None,
          birthday: dt.date | None = None, field: str = "password") -> None:
    """Raise ``WeakPassword`` naming the rule ``password`` breaks; return quietly when it is fine."""
    password = password or ""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(_l("The password must be at least %(n)d characters long.", n=MIN_LENGTH), field)
    if len(password) > MAX_LENGTH:
        raise WeakPassword(_l("The password must be at most %(n)d characters long.", n=MAX_LENGTH), field)
    folded = password.lower()
    if folded in _common() or re.sub(r"[\W_]+", "", folded) in _common():
        raise WeakPassword(_l("This password is one of the most common ones and easy to guess. "
                              "Please choose another (a short sentence is easy to remember)."), field)
    if username and len(username) >= 3 and username.lower() in folded:
        raise WeakPassword(_l("The password must not contain your account name."), field)
    if national_id is not None and national_id.appears_in(password):
        raise WeakPassword(_l("The password must not contain your ID number."), field)
    if birthday is not None and any(b in password for b in birthday_spellings(birthday) if len(b) >= 6):
        raise WeakPassword(_l("The password must not contain your birthday."), field)
