"""Properties of phone parsing over generated numbers from every region phonenumbers knows:
normalizing is idempotent, every format of a valid number parses back to the same E.164 and
the same lookup key, and no input makes the parser fail other than with a named reason."""

from __future__ import annotations

import re

import phonenumbers
from hypothesis import assume, given, reject, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from connector.domain.phone import REASONS, lookup_key, normalize, parse_phone
from connector.errors import InvalidPhoneNumberError

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
KINDS = [PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE]
FORMATS = [
    PhoneNumberFormat.E164,
    PhoneNumberFormat.INTERNATIONAL,
    PhoneNumberFormat.NATIONAL,
    PhoneNumberFormat.RFC3966,
]
E164 = re.compile(r"\+[1-9]\d{1,14}")
# The first number of a region loads its metadata: no per-example deadline on a busy CI box.
PROPERTY = settings(deadline=None)


@st.composite
def valid_numbers(draw: st.DrawFn) -> tuple[str, phonenumbers.PhoneNumber]:
    """A valid number of a drawn region and type: the region's example with a new tail."""
    region = draw(st.sampled_from(REGIONS))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(KINDS)))
    if example is None:
        reject()
    nsn = phonenumbers.national_significant_number(example)
    tail = draw(st.text("0123456789", min_size=2, max_size=2))
    number = phonenumbers.parse(f"+{example.country_code}{nsn[:-2]}{tail}")
    assume(phonenumbers.is_valid_number(number))
    assume(phonenumbers.region_code_for_number(number) == region)
    return region, number


@PROPERTY
@given(valid_numbers())
def test_normalizing_an_e164_number_changes_nothing(
    drawn: tuple[str, phonenumbers.PhoneNumber],
) -> None:
    region, number = drawn
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    assert normalize(e164) == e164
    assert normalize(normalize(e164, (region,)), (region,)) == e164


@PROPERTY
@given(valid_numbers(), st.sampled_from(FORMATS))
def test_formatting_then_parsing_round_trips(
    drawn: tuple[str, phonenumbers.PhoneNumber], fmt: int
) -> None:
    region, number = drawn
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    written = phonenumbers.format_number(number, fmt)
    parsed = parse_phone(written, (region,))
    assert parsed.e164 == e164
    assert parsed.is_valid


@PROPERTY
@given(valid_numbers(), st.sampled_from(REGIONS), st.sampled_from(REGIONS))
def test_international_spelling_ignores_the_region_chain(
    drawn: tuple[str, phonenumbers.PhoneNumber], first: str, second: str
) -> None:
    _, number = drawn
    written = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    assert normalize(written, (first, second)) == normalize(written)


@PROPERTY
@given(valid_numbers(), st.sampled_from(["-", ".", " ", ""]), st.sampled_from(["", " x12"]))
def test_lookup_key_is_stable_across_spellings(
    drawn: tuple[str, phonenumbers.PhoneNumber], separator: str, extension: str
) -> None:
    region, number = drawn
    keys = set()
    for fmt in FORMATS:
        written = phonenumbers.format_number(number, fmt)
        if fmt != PhoneNumberFormat.RFC3966:
            written = written.replace(" ", separator) + extension
        keys.add(lookup_key(written, (region,)))
    assert len(keys) == 1
    (key,) = keys
    assert key.isdigit() and len(key) <= 15


ALPHABET = st.sampled_from("0123456789+-() .#x;ext=tel:/ABCZ\uff0b")


@settings(max_examples=300, deadline=None)
@given(st.text(ALPHABET, max_size=40), st.lists(st.sampled_from([*REGIONS[:40], None, "UK"])))
def test_any_input_gives_e164_or_a_named_reason(raw: str, chain: list[str | None]) -> None:
    try:
        number = parse_phone(raw, chain)
    except InvalidPhoneNumberError as exc:
        assert exc.reason in REASONS
        assert exc.details["input"] == exc.raw
        return
    assert E164.fullmatch(number.e164)
    assert normalize(number.e164) == number.e164
    assert lookup_key(number.e164) == number.key
    assert number.is_valid == phonenumbers.is_valid_number(phonenumbers.parse(number.e164))
