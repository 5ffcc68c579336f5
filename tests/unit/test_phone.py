"""Phone parsing table: real-world spellings from many countries, with the known traps.

Each row is (input, region chain, expected E.164) or, for junk, (input, chain, "!reason").
Numbers are fictional or reserved ranges where the country has them (NANP 555-01xx, Ofcom
drama numbers, ARCEP fiction numbers, ACMA 5550 and 0491 570 ranges, German film numbers).
"""

from __future__ import annotations

import pytest

from connector.domain.phone import (
    MAX_INPUT_LENGTH,
    REASONS,
    lookup_key,
    normalize,
    normalize_many,
    parse_phone,
    search_variants,
    to_key_value,
)
from connector.errors import InvalidInputError, InvalidPhoneNumberError

US = ("US",)
GB = ("GB",)

TABLE: list[tuple[str, tuple[str | None, ...], str]] = [
    # United States / Canada
    ("(201) 555-0123", US, "+12015550123"),
    ("201-555-0123", US, "+12015550123"),
    ("201.555.0123", US, "+12015550123"),
    ("1 (201) 555-0123", US, "+12015550123"),
    ("+1 201 555 0123", (), "+12015550123"),
    ("+1-201-555-0123", GB, "+12015550123"),
    ("2015550123", ("CA", "US"), "+12015550123"),
    ("(613) 555-0123", ("CA",), "+16135550123"),
    ("1-800-FLOWERS", US, "+18003569377"),
    ("1-800-GOT-JUNK", US, "+18004685865"),
    ("201-555-0123 x123", US, "+12015550123"),
    ("201-555-0123 ext. 123", US, "+12015550123"),
    ("201-555-0123#123", US, "+12015550123"),
    ("tel:+1-201-555-0123;ext=123", (), "+12015550123"),
    ("0044 20 7946 0958", US, "+442079460958"),
    ("011 44 20 7946 0958", US, "+442079460958"),
    ("555-0123", US, "!local_only"),
    # United Kingdom
    ("020 7946 0958", GB, "+442079460958"),
    ("+44 (0)20 7946 0958", (), "+442079460958"),
    ("+44 0 20 7946 0958", (), "+442079460958"),
    ("+44(0)2079460958", US, "+442079460958"),
    ("(020) 7946 0958", GB, "+442079460958"),
    ("+44 20 7946 0958", US, "+442079460958"),
    ("011 44 20 7946 0958", GB, "+442079460958"),
    ("00 44 20 7946 0958", GB, "+442079460958"),
    ("0114 496 0123", GB, "+441144960123"),
    ("0114 496 0123", ("US", "GB"), "+441144960123"),
    ("0161 496 0123", GB, "+441614960123"),
    ("07700 900123", GB, "+447700900123"),
    ("020 7946 0958 ext 12", GB, "+442079460958"),
    ("442079460958", US, "+442079460958"),
    ("020 7946 0958", (None, "", "uk"), "+442079460958"),
    ("\uff0b44 20 7946 0958", (), "+442079460958"),
    # Germany
    ("030 23125 123", ("DE",), "+493023125123"),
    ("+49 (0)30 23125 123", (), "+493023125123"),
    ("0049 30 23125 123", US, "+493023125123"),
    ("+49 30 23125123", (), "+493023125123"),
    ("040 66969 123", ("DE",), "+494066969123"),
    # France
    ("01 99 00 12 34", ("FR",), "+33199001234"),
    ("+33 (0)1 99 00 12 34", (), "+33199001234"),
    ("0033 1 99 00 12 34", GB, "+33199001234"),
    ("01.99.00.12.34", ("FR",), "+33199001234"),
    ("06 39 98 12 34", ("FR",), "+33639981234"),
    # India
    ("098765 43210", ("IN",), "+919876543210"),
    ("+91 98765 43210", (), "+919876543210"),
    ("98765-43210", ("IN",), "+919876543210"),
    # Brazil: today's mobiles have 9 digits; the old 8-digit spelling gets the 9
    ("(11) 98765-4321", ("BR",), "+5511987654321"),
    ("(11) 8765-4321", ("BR",), "+5511987654321"),
    ("+55 11 8765-4321", (), "+5511987654321"),
    ("+55 (11) 98765-4321", (), "+5511987654321"),
    ("011 98765 4321", ("BR",), "+5511987654321"),
    ("(11) 3456-7890", ("BR",), "+551134567890"),
    ("0 21 11 98765-4321", ("BR",), "+5511987654321"),
    ("0xx11 98765-4321", ("BR",), "+5511987654321"),
    ("021 11 8765 4321", ("BR",), "+5511987654321"),
    # Argentina: mobiles are +54 9 <area> <number>; nationally 0 <area> 15 <number>
    ("+54 9 11 2345-6789", (), "+5491123456789"),
    ("+54 11 15 2345-6789", (), "+5491123456789"),
    ("011 15 2345-6789", ("AR",), "+5491123456789"),
    ("11 15 2345 6789", ("AR",), "+5491123456789"),
    ("+54 11 2345-6789", (), "+541123456789"),
    # Mexico: +52 and ten digits; +521, 044, 045 and 01 are gone
    ("+52 55 1234 5678", (), "+525512345678"),
    ("+521 55 1234 5678", (), "+525512345678"),
    ("+52 1 55 1234 5678", (), "+525512345678"),
    ("044 55 1234 5678", ("MX",), "+525512345678"),
    ("045 55 1234 5678", ("MX",), "+525512345678"),
    ("01 55 1234 5678", ("MX",), "+525512345678"),
    ("55 1234 5678", ("MX",), "+525512345678"),
    ("0052 1 55 1234 5678", US, "+525512345678"),
    # Australia
    ("0491 570 156", ("AU",), "+61491570156"),
    ("+61 (0)4 9157 0156", (), "+61491570156"),
    ("(02) 5550 1234", ("AU",), "+61255501234"),
    ("03 5550 1234", ("AU",), "+61355501234"),
    ("0011 44 20 7946 0958", ("AU",), "+442079460958"),
    ("0011 44 20 7946 0958", US, "+442079460958"),
    # Japan
    ("03-1234-5678", ("JP",), "+81312345678"),
    ("090-1234-5678", ("JP",), "+819012345678"),
    ("+81 90-1234-5678", (), "+819012345678"),
    ("010 81 3 1234 5678", ("JP",), "+81312345678"),
    # Others: Italy keeps its leading 0; chain order decides an ambiguous national number
    ("06 4567 8901", ("IT",), "+390645678901"),
    ("+39 06 4567 8901", (), "+390645678901"),
    ("06 4567 8901", ("IT", "FR"), "+390645678901"),
    ("06 45 67 89 01", ("FR", "IT"), "+33645678901"),
    ("912 345 678", ("ES",), "+34912345678"),
    ("020 123 4567", ("NL",), "+31201234567"),
    ("01 234 5678", ("IE",), "+35312345678"),
    ("021 123 4567", ("NZ",), "+64211234567"),
    ("082 123 4567", ("ZA",), "+27821234567"),
    ("6123 4567", ("SG",), "+6561234567"),
    ("044 668 18 00", ("CH",), "+41446681800"),
    # Junk
    ("", (), "!empty"),
    ("   ", US, "!empty"),
    ("hello", US, "!not_a_number"),
    ("N/A", GB, "!not_a_number"),
    ("12", US, "!too_short"),
    ("1234567890123456789", US, "!too_long"),
    ("+999 1234567", (), "!invalid_country_code"),
    ("2015550123", (), "!no_region"),
    ("2015550123", ("XX", "ZZ"), "!no_region"),
    ("9" * 70, US, "!input_too_long"),
]


@pytest.mark.parametrize(("raw", "regions", "expected"), TABLE)
def test_parses_real_world_spelling(
    raw: str, regions: tuple[str | None, ...], expected: str
) -> None:
    if expected.startswith("!"):
        with pytest.raises(InvalidPhoneNumberError) as info:
            parse_phone(raw, regions)
        assert info.value.reason == expected[1:]
        assert info.value.reason in REASONS
        assert info.value.details["input"] == info.value.raw
    else:
        assert normalize(raw, regions) == expected


def test_table_is_broad_enough() -> None:
    countries = {parse_phone(raw, regions).region for raw, regions, exp in TABLE if exp[0] == "+"}
    assert len(TABLE) >= 60
    assert {"US", "CA", "GB", "DE", "FR", "IN", "BR", "AR", "MX", "AU", "JP"} <= countries
    assert len(countries) >= 15


@pytest.mark.parametrize(
    ("raw", "extension"),
    [
        ("201-555-0123 x123", "123"),
        ("201-555-0123 ext. 4567", "4567"),
        ("201-555-0123#89", "89"),
        ("tel:+1-201-555-0123;ext=55", "55"),
        ("(201) 555-0123", None),
    ],
)
def test_keeps_extension_apart_from_the_number(raw: str, extension: str | None) -> None:
    number = parse_phone(raw, US)
    assert number.e164 == "+12015550123"
    assert number.extension == extension
    assert number.key == "12015550123"


def test_valid_number_reports_region_type_and_how_it_was_read() -> None:
    number = parse_phone("0491 570 156", ("GB", "AU"))
    assert number.is_valid and not number.unusual and not number.is_possible_only
    assert (number.region, number.number_type) == ("AU", "mobile")
    assert (number.via, number.region_used) == ("region", "AU")
    assert parse_phone("+1 613 555 0123", GB).region == "CA"
    assert parse_phone("1-800-FLOWERS", US).number_type == "toll_free"


def test_possible_but_unusual_number_is_flagged_not_rejected() -> None:
    drama = parse_phone("07700 900123", GB)
    assert drama.e164 == "+447700900123"
    assert drama.unusual and not drama.is_valid
    assert drama.number_type == "unknown"
    unassigned_area = parse_phone("+1 555 555 0123")
    assert unassigned_area.unusual


def test_valid_reading_in_a_later_region_beats_a_possible_one_in_an_earlier_region() -> None:
    number = parse_phone("0491 570 156", ("GB", "AU"))
    assert number.e164 == "+61491570156"


def test_idd_prefix_is_read_only_when_the_national_reading_is_not_valid() -> None:
    sheffield = parse_phone("0114 496 0123", GB)
    assert (sheffield.e164, sheffield.via) == ("+441144960123", "region")
    london = parse_phone("011 44 20 7946 0958", GB)
    assert (london.e164, london.via) == ("+442079460958", "idd")


def test_error_names_the_input_and_the_reason() -> None:
    with pytest.raises(InvalidPhoneNumberError) as info:
        parse_phone("call me maybe", US)
    err = info.value
    assert isinstance(err, InvalidInputError)
    assert "call me maybe" in err.message
    assert err.to_dict()["details"] == {"input": "call me maybe", "reason": "not_a_number"}
    assert err.transient is False


def test_overlong_input_is_cut_in_the_error() -> None:
    with pytest.raises(InvalidPhoneNumberError) as info:
        parse_phone("1" * 10_000, US)
    assert len(info.value.raw) <= MAX_INPUT_LENGTH + 1


def test_non_string_input_is_rejected() -> None:
    with pytest.raises(InvalidPhoneNumberError) as info:
        parse_phone(None, US)  # type: ignore[arg-type]
    assert info.value.reason == "not_a_number"


def test_strict_lookup_key_refuses_unusual_numbers() -> None:
    assert lookup_key("07700 900123", GB) == "447700900123"
    with pytest.raises(InvalidPhoneNumberError) as info:
        lookup_key("07700 900123", GB, strict=True)
    assert info.value.reason == "not_valid"
    assert lookup_key("020 7946 0958", GB, strict=True) == "442079460958"


@pytest.mark.parametrize(
    ("chain", "spellings", "key"),
    [
        (
            ("AR",),
            ["+54 9 11 2345-6789", "+54 11 2345-6789", "011 15 2345-6789", "+54 11 15 2345-6789"],
            "541123456789",
        ),
        (("BR",), ["+55 11 98765-4321", "(11) 8765-4321", "+55 11 8765-4321"], "5511987654321"),
        (("MX",), ["+52 55 1234 5678", "+521 55 1234 5678", "044 55 1234 5678"], "525512345678"),
        (
            ("GB",),
            ["+44 (0)20 7946 0958", "020 7946 0958 x12", "011 44 20 7946 0958", "442079460958"],
            "442079460958",
        ),
    ],
)
def test_lookup_key_folds_both_spellings_of_a_line(
    chain: tuple[str, ...], spellings: list[str], key: str
) -> None:
    assert {lookup_key(raw, chain) for raw in spellings} == {key}


def test_argentine_key_drops_the_mobile_nine_but_e164_keeps_it() -> None:
    mobile = parse_phone("+54 9 11 2345-6789")
    assert mobile.e164 == "+5491123456789"
    assert mobile.key == "541123456789"
    assert mobile.key_value == "5491123456789"


def test_brazilian_landline_gets_no_extra_nine() -> None:
    assert parse_phone("(11) 3456-7890", ("BR",)).key == "551134567890"


def test_to_key_value_strips_plus_and_refuses_non_e164() -> None:
    assert to_key_value("+442079460958") == "442079460958"
    for bad in ("442079460958", "+44 20 7946 0958", "+0123456789", "+1"):
        with pytest.raises(InvalidPhoneNumberError):
            to_key_value(bad)


def test_normalize_many_keeps_order_and_returns_errors_in_place() -> None:
    out = normalize_many(["020 7946 0958", "junk", "+1 201 555 0123"], GB)
    first, second, third = out
    assert not isinstance(first, InvalidPhoneNumberError) and first.e164 == "+442079460958"
    assert isinstance(second, InvalidPhoneNumberError) and second.reason == "not_a_number"
    assert not isinstance(third, InvalidPhoneNumberError) and third.e164 == "+12015550123"


def test_search_variants_cover_common_spellings() -> None:
    variants = search_variants("+12015550123")
    assert variants[0] == "+12015550123"
    assert {"12015550123", "(201) 555-0123", "201-555-0123", "201.555.0123", "2015550123"} <= set(
        variants
    )
    assert len(variants) == len(set(variants))
    argentina = search_variants("+5491123456789")
    assert {"+541123456789", "541123456789"} <= set(argentina)
    assert all(lookup_key(v, ("AR",)) == "541123456789" for v in argentina)
