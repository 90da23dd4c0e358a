"""Taiwan national ID and residence-permit numbers: parse, normalise, validate (R-S4).

Three formats share one checksum:

* national ID (國民身分證統一編號): ``[A-Z][12]\\d{8}``, the second digit is the sex;
* the old residence-permit number (舊式居留證號): ``[A-Z][A-D]\\d{8}``; the second letter counts
  A0 B1 C2 D3 in the checksum;
* the 2021 unified number for foreign residents (新式統一證號): ``[A-Z][89]\\d{8}``.

The first letter becomes two digits (A10 B11 … with the historic I34 O35 W32 X30 Y31 Z33); the
eleven digits are weighted 1,9,8,7,6,5,4,3,2,1,1 and the sum must be divisible by 10.

This module and ``identity.protection`` are the only code that sees a clear number. A
``NationalId`` never shows it: ``str``/``repr`` mask it, errors describe what is wrong without
repeating the number, so one cannot reach a log or an error page by accident.
"""

from __future__ import annotations

import enum
import re
import unicodedata

from flask_babel import lazy_gettext as _l

from idp.errors import IdpError

LETTER_VALUES = {
    "A": 10, "B": 11, "C": 12, "D": 13, "E": 14, "F": 15, "G": 16, "H": 17, "I": 34, "J": 18, "K": 19,
    "L": 20, "M": 21, "N": 22, "O": 35, "P": 23, "Q": 24, "R": 25, "S": 26, "T": 27, "U": 28, "V": 29,
    "W": 32, "X": 30, "Y": 31, "Z": 33,
}
OLD_PERMIT_SECOND = {"A": 0, "B": 1, "C": 2, "D": 3}
WEIGHTS = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)


class IdKind(enum.Enum):
    NATIONAL_ID = "national_id"
    RESIDENCE_PERMIT_OLD = "residence_permit_old"
    RESIDENCE_PERMIT_NEW = "residence_permit_new"


class InvalidNationalId(IdpError):
    """The number is not valid; ``reason`` is one of length, first_letter, second_character,
    digits, checksum, empty."""

    code = "invalid_national_id"

    def __init__(self, reason: str, message: object) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason


_CANONICAL = re.compile(r"[A-Z][0-9A-D][0-9]{8}")


def _normalise(raw: str) -> str:
    """Full-width to half-width (NFKC), trim spaces and dashes people type, upper-case.

    Data feeds send the canonical form already; it is returned as it is (NFKC would change nothing
    and cost most of a feed record's mapping time)."""
    if raw and len(raw) == 10 and _CANONICAL.fullmatch(raw):
        return raw
    text = unicodedata.normalize("NFKC", raw or "")
    return "".join(ch for ch in text if not ch.isspace() and ch not in "-‐").upper()


# The first letter's two digits carry weights 1 and 9: fold them into one number per letter.
_LETTER_SUM = {k: v // 10 + (v % 10) * 9 for k, v in LETTER_VALUES.items()}
_SECOND_DIGIT = {**{str(d): d for d in range(10)}, **OLD_PERMIT_SECOND}


def _partial_sum(first9: str) -> int:
    """The weighted sum of the first nine characters (the check digit's weight is 1).

    Written out rather than zipped with ``WEIGHTS``: every record of every sync passes through
    here, and a generator generating the whole country calls it 3.5 million times."""
    total = _LETTER_SUM[first9[0]] + 8 * _SECOND_DIGIT[first9[1]]
    for weight, ch in zip((7, 6, 5, 4, 3, 2, 1), first9[2:9], strict=True):
        total += weight * (ord(ch) - 48)
    return total


def checksum_ok(value: str) -> bool:
    """True when a well-formed 10-character number passes the weighted checksum."""
    return (_partial_sum(value[:9]) + ord(value[9]) - 48) % 10 == 0


def check_digit(first9: str) -> str:
    """The last digit that makes ``first9`` (letter + 8 characters) valid; used by generators."""
    return str(-_partial_sum(first9) % 10)


class NationalId:
    """A validated number. Compare and hash by value; never printed in clear."""

    __slots__ = ("_value", "kind")

    def __init__(self, value: str, kind: IdKind) -> None:
        self._value = value
        self.kind = kind

    @classmethod
    def parse(cls, raw: str) -> NationalId:
        """Normalise and validate; raise ``InvalidNationalId`` saying precisely what is wrong."""
        value = _normalise(raw)
        if not value:
            raise InvalidNationalId("empty", _l("Please enter the national ID or residence-permit number."))
        if len(value) != 10:
            raise InvalidNationalId("length", _l("The number must be 10 characters long (it has %(n)d).",
                                                 n=len(value)))
        if value[0] not in LETTER_VALUES:
            raise InvalidNationalId("first_letter", _l("The first character must be a letter A–Z."))
        second = value[1]
        if second in "12":
            kind = IdKind.NATIONAL_ID
        elif second in OLD_PERMIT_SECOND:
            kind = IdKind.RESIDENCE_PERMIT_OLD
        elif second in "89":
            kind = IdKind.RESIDENCE_PERMIT_NEW
        else:
            raise InvalidNationalId("second_character", _l(
                "The second character must be 1 or 2 (national ID), A–D (old residence permit) "
                "or 8 or 9 (new residence permit)."))
        if not value[2:].isdigit() or not value[2:].isascii():
            raise InvalidNationalId("digits", _l("The last eight characters must be digits."))
        if not checksum_ok(value):
            raise InvalidNationalId("checksum", _l(
                "The number is not valid (its check digit does not match). Please check for a typing mistake."))
        return cls(value, kind)

    def reveal(self) -> str:
        """The clear number: for ``identity.protection`` only (HMAC and encryption)."""
        return self._value

    @property
    def masked(self) -> str:
        return f"{self._value[:2]}******{self._value[-2:]}"

    def appears_in(self, text: str) -> bool:
        """Does ``text`` contain this number, or its eight or nine digits (a password built from
        one's own ID, NIST SP 800-63B §5.1.1.2)? The number never leaves this object."""
        folded = (text or "").upper()
        return self._value in folded or self._value[1:] in folded or self._value[2:] in folded

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"NationalId({self.masked}, {self.kind.value})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NationalId) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("NationalId", self._value))

    def __reduce__(self) -> tuple:
        raise TypeError("NationalId is not serialisable: store its blind index instead")


def is_valid(raw: str) -> bool:
    try:
        NationalId.parse(raw)
    except InvalidNationalId:
        return False
    return True
