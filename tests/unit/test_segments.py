"""Segment counting: every vector of the SMS provider reference (section 7), the boundaries,
and properties that hold for any text."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.domain.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    Encoding,
    count_segments,
    ucs2_triggers,
    unit_cost,
)

GSM = Encoding.GSM7
UCS = Encoding.UCS2
DIGITS = "2345678901" * 20
QUOTE, LDQ, RDQ = "\N{RIGHT SINGLE QUOTATION MARK}", "\u201c", "\u201d"
DASH = "\N{EN DASH}"

# Twilio calculator vectors: body, encoding, segments, messageSize bits, totalSize bits.
TWILIO_VECTORS = [
    ("{" + DIGITS[:158], GSM, 1, 1120, 1120),
    ("{" + DIGITS[:159], GSM, 2, 1127, 1223),
    ("😜" + DIGITS[:68], UCS, 1, 1120, 1120),
    ("😜" + DIGITS[:69], UCS, 2, 1136, 1232),
]


@pytest.mark.parametrize(("body", "encoding", "segments", "message", "total"), TWILIO_VECTORS)
def test_matches_twilio_calculator_vector(
    body: str, encoding: Encoding, segments: int, message: int, total: int
) -> None:
    info = count_segments(body)
    assert (info.encoding, info.segments) == (encoding, segments)
    assert (info.message_bits, info.total_bits) == (message, total)


# The reference's locally computed vectors: body, encoding, units, segments.
REFERENCE_VECTORS = [
    ("a" * 160, GSM, 160, 1),
    ("a" * 161, GSM, 161, 2),
    ("a" * 306, GSM, 306, 2),
    ("a" * 307, GSM, 307, 3),
    ("a" * 1600, GSM, 1600, 11),
    ("€" * 80, GSM, 160, 1),
    ("€" * 81, GSM, 162, 2),
    ("ê" * 70, UCS, 70, 1),
    ("ê" * 71, UCS, 71, 2),
    ("😀" * 35, UCS, 70, 1),
    ("😀" * 36, UCS, 72, 2),
    ("It\N{RIGHT SINGLE QUOTATION MARK}s here", UCS, 9, 1),
    ("a" * 152 + "{" + "a" * 10, GSM, 164, 2),
]


@pytest.mark.parametrize(("body", "encoding", "units", "segments"), REFERENCE_VECTORS)
def test_matches_reference_vector(body: str, encoding: Encoding, units: int, segments: int) -> None:
    info = count_segments(body)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)


def test_escape_pair_moves_whole_to_the_next_segment() -> None:
    info = count_segments("a" * 152 + "{" + "a" * 10)
    assert info.parts == ("a" * 152, "{" + "a" * 10)


BOUNDARIES = [
    ("a" * 459, GSM, 3),
    ("a" * 460, GSM, 4),
    ("a" * 158 + "€", GSM, 1),
    ("a" * 159 + "€", GSM, 2),
    ("a" * 159 + "\f", GSM, 2),
    ("a" * 151 + "{" + "a" * 153, GSM, 2),
    ("a" * 152 + "{" + "a" * 152, GSM, 3),
    ("ê" * 134, UCS, 2),
    ("ê" * 135, UCS, 3),
    ("a" * 68 + "😀", UCS, 1),
    ("a" * 69 + "😀", UCS, 2),
    ("a" * 65 + "😀" + "a" * 67, UCS, 2),
    ("a" * 66 + "😀" + "a" * 66, UCS, 3),
    ("😀" * 33 + "a" + "😀" * 33 + "a", UCS, 2),
    ("😀" * 67, UCS, 3),
]


@pytest.mark.parametrize(("body", "encoding", "segments"), BOUNDARIES)
def test_counts_segments_at_the_boundaries(body: str, encoding: Encoding, segments: int) -> None:
    info = count_segments(body)
    assert (info.encoding, info.segments) == (encoding, segments)


def test_surrogate_pair_is_never_split_across_segments() -> None:
    info = count_segments("a" * 66 + "😀" + "a" * 66)
    assert info.parts == ("a" * 66, "😀" + "a" * 65, "a")
    assert [len(p.encode("utf-16-le")) // 2 for p in info.parts] == [66, 67, 1]


def test_every_basic_character_is_one_septet_and_every_extension_two() -> None:
    assert len(GSM7_BASIC) == len(set(GSM7_BASIC)) == 127
    basic = count_segments(GSM7_BASIC)
    assert (basic.encoding, basic.units, basic.ucs2_triggers) == (GSM, 127, ())
    extension = count_segments(GSM7_EXTENSION)
    assert (extension.encoding, extension.units) == (GSM, 2 * len(GSM7_EXTENSION))
    assert set("^{}\\[~]|€\f") == set(GSM7_EXTENSION)


@pytest.mark.parametrize(
    ("body", "triggers"),
    [
        (
            "It" + QUOTE + "s " + LDQ + "here" + RDQ + " " + DASH + " now",
            (QUOTE, LDQ, RDQ, DASH),
        ),
        ("Crème brûlée", ("û",)),
        ("Fête\u00a0ce soir", ("ê", "\u00a0")),
        ("Façade", ("ç",)),
        ("FAÇADE", ()),
        ("Café 😀 😀", ("😀",)),
        ("\u041f\u0440\u0438\u0432\u0435\u0442", tuple("\u041f\u0440\u0438\u0432\u0435\u0442")),
        ("Tab\there", ("\t",)),
    ],
)
def test_lists_the_characters_that_forced_ucs2(body: str, triggers: tuple[str, ...]) -> None:
    info = count_segments(body)
    assert info.ucs2_triggers == triggers
    assert info.encoding is (UCS if triggers else GSM)


def test_trigger_names_tell_a_user_what_the_character_is() -> None:
    info = count_segments("It" + QUOTE + "s 😀")
    assert info.trigger_names() == [
        "U+2019 RIGHT SINGLE QUOTATION MARK",
        "U+1F600 GRINNING FACE",
    ]


def test_reports_characters_units_and_room_left() -> None:
    info = count_segments("Hi 😀")
    assert (info.characters, info.units, info.segments) == (4, 5, 1)
    assert (info.per_segment, info.remaining) == (70, 65)
    long = count_segments("a" * 200)
    assert (long.per_segment, long.remaining) == (153, 106)


def test_empty_text_has_no_segments() -> None:
    info = count_segments("")
    assert (info.encoding, info.segments, info.units, info.parts) == (GSM, 0, 0, ())
    assert info.total_bits == 0


TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(GSM7_BASIC + GSM7_EXTENSION),
        st.characters(codec="utf-8"),
    ),
    max_size=800,
)


@settings(deadline=None)
@given(TEXT)
def test_parts_rebuild_the_text_and_each_fits_its_segment(text: str) -> None:
    info = count_segments(text)
    assert "".join(info.parts) == text
    assert info.units == sum(unit_cost(ch, info.encoding) for ch in text)
    assert info.segments == len(info.parts)
    unit = 7 if info.encoding is GSM else 16
    assert info.message_bits == info.units * unit
    for part in info.parts:
        assert 0 < sum(unit_cost(ch, info.encoding) for ch in part) <= info.per_segment
        if info.encoding is UCS:
            assert len(part.encode("utf-16-le", "surrogatepass")) // 2 <= info.per_segment


@settings(deadline=None)
@given(TEXT)
def test_segment_count_is_bounded_by_full_and_one_short_segments(text: str) -> None:
    info = count_segments(text)
    if not text:
        assert info.segments == 0
        return
    single, part = (160, 153) if info.encoding is GSM else (70, 67)
    if info.units <= single:
        assert info.segments == 1
    else:
        # a segment loses at most one unit to an escape or surrogate pair it cannot split
        assert math.ceil(info.units / part) <= info.segments <= math.ceil(info.units / (part - 1))
    assert (info.encoding is UCS) == bool(ucs2_triggers(text))
