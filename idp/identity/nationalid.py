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


def _normalise(raw: str) -> str:
    """Full-width to half-width (NFKC), trim spaces and dashes people type, upper-case."""
    text = unicodedata.normalize("NFKC", raw or "")
    return "".join(ch for ch in text if not ch.isspace() and ch not in "-‐").upper()


def _digits(value: str) -> list[int]:
    letter = LETTER_VALUES[value[0]]
    second = value[1]
    second_digit = OLD_PERMIT_SECOND[second] if second in OLD_PERMIT_SECOND else int(second)
    return [letter // 10, letter % 10, second_digit, *(int(c) for c in value[2:])]


def checksum_ok(value: str) -> bool:
    """True when a well-formed 10-character number passes the weighted checksum."""
    return sum(w * d for w, d in zip(WEIGHTS, _digits(value), strict=True)) % 10 == 0


def check_digit(first9: str) -> str:
    """The last digit that makes ``first9`` (letter + 8 characters) valid; used by generators."""
    for last in "0123456789":
        if checksum_ok(first9 + last):
            return last
    raise ValueError("no check digit")  # unreachable: weight 1 on the last digit


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
