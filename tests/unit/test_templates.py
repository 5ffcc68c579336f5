"""Template placeholders: examples of the language, its refusals, and properties of any body.

The properties build bodies from pieces (literal text with its braces escaped, placeholders
with random case, defaults, repeats) next to a model of what rendering them must give.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.domain.templates import (
    SENDER_FIELDS,
    Placeholder,
    fields_needed,
    parse,
    render,
)
from connector.errors import InvalidInputError, TemplateError

PROPERTY = settings(max_examples=150, derandomize=True, deadline=None)


# -- examples ---------------------------------------------------------------------------------


def test_renders_columns_lookups_defaults_and_sender() -> None:
    body = (
        "Hi {FirstName}, {parentcustomerid.name} here ({city|no city}). "
        "{Sender.Name} {sender.number}"
    )
    values = {
        "firstname": "Ana",
        "parentcustomerid.name": "Contoso",
        "city": "  ",
        "sender.name": "Bo",
        "sender.number": "+14155550100",
    }
    assert render(body, values) == "Hi Ana, Contoso here (no city). Bo +14155550100"


def test_lists_record_fields_in_order_once_without_sender() -> None:
    body = "{b} {A.x} {sender.name} {a.X|y} {B|z} {c}"
    assert fields_needed(body) == ("b", "a.x", "c")


def test_double_braces_are_literal_braces() -> None:
    assert render("{{x}} {{ {y} }}", {"y": "1"}) == "{x} { 1 }"
    assert fields_needed("{{x}}") == ()


def test_spaces_around_a_name_are_allowed() -> None:
    assert render("{ firstname |friend}", {}) == "friend"
    assert fields_needed("{ firstname }") == ("firstname",)


def test_empty_default_makes_a_placeholder_optional() -> None:
    assert render("a{x|}b", {"x": None}) == "ab"


def test_missing_value_names_every_missing_placeholder_once() -> None:
    with pytest.raises(TemplateError) as raised:
        render("{firstname} {lastname} {firstname} {city|x} {sender.name}", {"lastname": ""})
    error = raised.value
    assert isinstance(error, InvalidInputError)
    assert error.code == "template_value_missing"
    assert error.details["placeholders"] == ["firstname", "lastname", "sender.name"]
    assert str(error) == "template value missing: firstname, lastname, sender.name"


def test_a_default_elsewhere_does_not_cover_a_placeholder_without_one() -> None:
    with pytest.raises(TemplateError) as raised:
        render("{x|fallback} {x}", {})
    assert raised.value.details["placeholders"] == ["x"]


def test_values_that_look_like_placeholders_stay_text() -> None:
    values = {"a": "{b} and {{c}}", "b": "B"}
    assert render("{a}/{b}", values) == "{b} and {{c}}/B"


@pytest.mark.parametrize(
    ("body", "position", "reason"),
    [
        ("Hi {firstname", 3, "unclosed '{'"),
        ("Hi {}", 3, "empty placeholder name"),
        ("Hi { |x}", 3, "empty placeholder name"),
        ("{a.b.c}", 4, "more than one '.' in a placeholder name"),
        ("{first name}", 6, "bad character ' ' in name"),
        ("{a-b}", 2, "bad character '-' in name"),
        ("{9lives}", 1, "bad character '9' in name"),
        ("{a.}", 3, "empty name part"),
        ("{.a}", 1, "empty name part"),
        ("{a{b}}", 2, "'{' inside a placeholder"),
        ("{a|x{y}", 4, "'{' inside a placeholder"),
        ("oops } here", 5, "unmatched '}' (write '}}' for a brace)"),
        ("{sender.email}", 1, "unknown sender placeholder 'sender.email'"),
    ],
)
def test_refuses_malformed_body_naming_the_position(body: str, position: int, reason: str) -> None:
    with pytest.raises(TemplateError) as raised:
        fields_needed(body)
    error = raised.value
    assert isinstance(error, InvalidInputError)
    assert error.code == "template_invalid"
    assert error.details == {"position": position, "reason": reason}
    assert f"at position {position}" in str(error)


def test_render_refuses_a_malformed_body_too() -> None:
    with pytest.raises(TemplateError, match="unclosed"):
        render("{x", {"x": "1"})


def test_parse_keeps_literal_text_between_placeholders() -> None:
    assert parse("a{x}b{{") == ("a", Placeholder("x", None, 1), "b{")


# -- properties -------------------------------------------------------------------------------

_names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(lambda n: n != "sender")
_fields = st.one_of(_names, st.tuples(_names, _names).map(".".join))
_names_and_sender = st.one_of(_fields, st.sampled_from(sorted(SENDER_FIELDS)))
_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
_plain_default = st.none() | st.text(st.characters(exclude_characters="{}"), max_size=5)


@dataclass(frozen=True)
class Literal:
    text: str

    def source(self) -> str:
        return self.text.replace("{", "{{").replace("}", "}}")


@dataclass(frozen=True)
class Slot:
    name: str
    default: str | None
    spelled: str  # the name as written in the body (any case)

    def source(self) -> str:
        return "{" + self.spelled + ("" if self.default is None else "|" + self.default) + "}"


@st.composite
def _slot(draw: st.DrawFn, names: list[str]) -> Slot:
    name = draw(st.sampled_from(names))
    spelled = "".join(c.upper() if draw(st.booleans()) else c for c in name)
    return Slot(name, draw(_plain_default), spelled)


@st.composite
def bodies(draw: st.DrawFn, text: st.SearchStrategy[str] = _text) -> list[Literal | Slot]:
    """Pieces of a body: literals and placeholders over a few names (so some repeat)."""
    names = draw(st.lists(_names_and_sender, min_size=1, max_size=4, unique=True))
    piece = st.one_of(text.map(Literal), _slot(names))
    return draw(st.lists(piece, max_size=8))


def source(pieces: list[Literal | Slot]) -> str:
    return "".join(p.source() for p in pieces)


def slots(pieces: list[Literal | Slot]) -> list[Slot]:
    return [p for p in pieces if isinstance(p, Slot)]


def model(pieces: list[Literal | Slot], values: Mapping[str, str | None]) -> str:
    out = []
    for piece in pieces:
        if isinstance(piece, Literal):
            out.append(piece.text)
        else:
            value = values.get(piece.name)
            out.append(value if value and value.strip() else str(piece.default))
    return "".join(out)


_values = st.text(max_size=8).filter(lambda v: bool(v.strip()))


@st.composite
def bodies_with_values(
    draw: st.DrawFn, value: st.SearchStrategy[str] = _values
) -> tuple[list[Literal | Slot], dict[str, str | None]]:
    pieces = draw(bodies())
    return pieces, {s.name: draw(value) for s in slots(pieces)}


@PROPERTY
@given(bodies(text=st.text(st.characters(exclude_characters="{}"), max_size=8)), _values)
def test_no_placeholder_syntax_survives_rendering(pieces: list[Literal | Slot], value: str) -> None:
    plain = value.replace("{", "").replace("}", "")
    values = {s.name: plain or "v" for s in slots(pieces)}
    out = render(source(pieces), values)
    assert "{" not in out and "}" not in out
    assert out == model(pieces, values)


@PROPERTY
@given(bodies_with_values())
def test_rendering_with_every_value_present_matches_the_model(
    case: tuple[list[Literal | Slot], dict[str, str | None]],
) -> None:
    pieces, values = case
    assert render(source(pieces), values) == model(pieces, values)


_tricky = st.one_of(_values, _names_and_sender.map(lambda n: "{" + n + "}"), st.just("{{x}}"))


@PROPERTY
@given(bodies_with_values(value=_tricky))
def test_values_with_braces_are_inserted_literally(
    case: tuple[list[Literal | Slot], dict[str, str | None]],
) -> None:
    pieces, values = case
    out = render(source(pieces), values)
    assert out == model(pieces, values)  # the model never expands a value


_absent = st.sampled_from([None, "", "  ", "\t\n"])


@PROPERTY
@given(bodies_with_values(), st.data())
def test_missing_values_raise_naming_exactly_the_missing_ones(
    case: tuple[list[Literal | Slot], dict[str, str | None]], data: st.DataObject
) -> None:
    pieces, values = case
    for name in list(values):
        if data.draw(st.booleans()):
            if data.draw(st.booleans()):
                del values[name]
            else:
                values[name] = data.draw(_absent)
    present = {n for n, v in values.items() if v and v.strip()}
    expected = list(
        dict.fromkeys(s.name for s in slots(pieces) if s.default is None and s.name not in present)
    )
    if not expected:
        assert render(source(pieces), values) == model(pieces, values)
        return
    with pytest.raises(TemplateError) as raised:
        render(source(pieces), values)
    assert raised.value.code == "template_value_missing"
    assert raised.value.details["placeholders"] == expected
    assert str(raised.value) == "template value missing: " + ", ".join(expected)


class Recording(Mapping[str, str | None]):
    """Values that remember which names were asked for."""

    def __init__(self, values: Mapping[str, str | None]) -> None:
        self.held = dict(values)
        self.asked: list[str] = []

    def __getitem__(self, key: str) -> str | None:
        self.asked.append(key)
        return self.held[key]

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("render must not walk the values")

    def __len__(self) -> int:
        return len(self.held)


@PROPERTY
@given(bodies_with_values())
def test_fields_needed_are_exactly_the_record_fields_render_reads(
    case: tuple[list[Literal | Slot], dict[str, str | None]],
) -> None:
    pieces, values = case
    recording = Recording(values)
    render(source(pieces), recording)
    asked = list(dict.fromkeys(n for n in recording.asked if n not in SENDER_FIELDS))
    needed = fields_needed(source(pieces))
    assert needed == tuple(asked)
    assert needed == tuple(
        dict.fromkeys(s.name for s in slots(pieces) if s.name not in SENDER_FIELDS)
    )
