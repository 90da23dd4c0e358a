"""National ID parsing and validation (issue 3 item 1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idp.identity.nationalid import LETTER_VALUES, IdKind, InvalidNationalId, NationalId, check_digit, is_valid


@pytest.mark.parametrize(("raw", "kind"), [
    ("A123456789", IdKind.NATIONAL_ID),
    ("AC03095424", IdKind.RESIDENCE_PERMIT_OLD),
    ("A800000014", IdKind.RESIDENCE_PERMIT_NEW),
])
def test_valid_examples(raw: str, kind: IdKind) -> None:
    """R-S4: the issue's valid numbers of all three formats are accepted with their kind."""
    assert NationalId.parse(raw).kind is kind


@pytest.mark.parametrize(("raw", "reason"), [
    ("A123456788", "checksum"),
    ("AE23456785", "second_character"),
    ("A323456789", "second_character"),
    ("A12345678", "length"),
    ("A1234567890", "length"),
    ("1123456789", "first_letter"),
    ("A12345678X", "digits"),
    ("", "empty"),
])
def test_invalid_examples_say_what_is_wrong(raw: str, reason: str) -> None:
    """R-S4: each invalid number is refused with the precise reason, and the message never repeats it."""
    with pytest.raises(InvalidNationalId) as err:
        NationalId.parse(raw)
    assert err.value.reason == reason
    if raw:
        assert raw not in str(err.value.args)


def test_normalises_case_fullwidth_and_spaces() -> None:
    """R-S4: lower case, full-width characters and spaces typed by people are normalised."""
    assert NationalId.parse("ａ１２３４５６７８９") == NationalId.parse("A123456789")
    assert NationalId.parse(" a123-456 789 ") == NationalId.parse("A123456789")
    assert NationalId.parse("ac03095424").kind is IdKind.RESIDENCE_PERMIT_OLD


def test_never_printed_in_clear() -> None:
    """R-S4: str/repr mask the number; it cannot be pickled."""
    nid = NationalId.parse("A123456789")
    assert "A123456789" not in str(nid) and "A123456789" not in repr(nid)
    assert str(nid) == "A1******89"
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(nid)


ids = st.builds(lambda letter, second, body: letter + second + body,
                st.sampled_from(sorted(LETTER_VALUES)), st.sampled_from("12ABCD89"),
                st.text("0123456789", min_size=7, max_size=7))


@given(ids)
def test_check_digit_round_trip(first9: str) -> None:
    """R-S4: the check digit completes every prefix into a valid number that parses back to itself."""
    full = first9 + check_digit(first9)
    assert NationalId.parse(full).reveal() == full
    assert NationalId.parse(full.lower()) == NationalId.parse(full)


@given(ids, st.integers(1, 9))
def test_changing_the_last_digit_breaks_the_checksum(first9: str, delta: int) -> None:
    """R-S4: any other last digit fails the checksum (weight 1 on the last digit)."""
    good = int(check_digit(first9))
    assert not is_valid(first9 + str((good + delta) % 10))


@given(st.text(max_size=14))
def test_arbitrary_text_never_crashes(raw: str) -> None:
    """R-S4: any input either parses or raises InvalidNationalId."""
    try:
        NationalId.parse(raw)
    except InvalidNationalId as exc:
        assert exc.reason in {"empty", "length", "first_letter", "second_character", "digits", "checksum"}
