"""The emulator's $filter parser and evaluators, and key-segment parsing (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from connector.emulators.dataverse.addressing import (
    key_text,
    parse_key,
    parse_literal,
    split_segment,
)
from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.metadata import KeyDef
from connector.emulators.dataverse.query import (
    Node,
    evaluate,
    parse_expand,
    parse_filter,
    parse_orderby,
    split_top_level,
    to_sql,
)
from connector.emulators.dataverse.standard import standard_schema


def _sql(text: str) -> tuple[str, list[Any]]:
    params: list[Any] = []
    return to_sql(parse_filter(text), lambda name: f'"{name}"', params), params


def test_precedence_and_binds_over_or() -> None:
    sql, params = _sql("a eq 1 or b eq 2 and c eq 3")
    assert sql == '(("a" = ?) OR (("b" = ?) AND ("c" = ?)))'
    assert params == [1, 2, 3]


def test_literals() -> None:
    _, params = _sql(
        "n eq 'O''Brien' and g eq 6F9619FF-8B86-D011-B42D-00C04FC964FF and d ge 2026-01-02 "
        "and x eq 1.5 and t eq true and z eq -3"
    )
    assert params == [
        "O'Brien",
        "6f9619ff-8b86-d011-b42d-00c04fc964ff",
        "2026-01-02T00:00:00Z",
        1.5,
        1,
        -3,
    ]


def test_null_comparisons_become_is_null() -> None:
    assert _sql("a eq null")[0] == '("a" IS NULL)'
    assert _sql("a ne null")[0] == '("a" IS NOT NULL)'


def test_string_functions_become_like_and_keep_sql_wildcards() -> None:
    sql, params = _sql("contains(name,'a%b') and startswith(name,'x') and endswith(name,'y')")
    assert sql.count("LIKE ?") == 3
    assert params == ["%a%b%", "x%", "%y"]


def test_not_and_parentheses() -> None:
    assert _sql("not (a eq 1 or b eq 2)")[0] == '(NOT (("a" = ?) OR ("b" = ?)))'


@pytest.mark.parametrize("bad", ["a eq", "(a eq 1", "a eq 1)", "a eq 'x", "foo(a,'b')", "a ~ 1"])
def test_syntax_errors_are_400(bad: str) -> None:
    with pytest.raises(EmulatorRequestError) as error:
        parse_filter(bad)
    assert error.value.status == 400


def test_in_memory_evaluation_is_case_insensitive() -> None:
    row = {"LogicalName": "Contact", "IsPrivate": False, "N": 3}
    assert evaluate(parse_filter("LogicalName eq 'contact' and IsPrivate eq false"), row)
    assert evaluate(parse_filter("startswith(LogicalName,'CON') and N gt 2"), row)
    assert not evaluate(parse_filter("not (N le 3)"), row)


def test_orderby_expand_and_top_level_split() -> None:
    assert parse_orderby("modifiedon desc, fullname") == [("modifiedon", True), ("fullname", False)]
    items = parse_expand("a($select=x,y;$top=2),b")
    assert [(i.nav, i.options) for i in items] == [
        ("a", {"$select": "x,y", "$top": "2"}),
        ("b", {}),
    ]
    assert split_top_level("k='a,b',n=(1,2)") == ["k='a,b'", "n=(1,2)"]
    assert isinstance(parse_filter("a eq 1"), Node)


def test_key_segments() -> None:
    schema = standard_schema()
    contact = schema.entities["contact"]
    guid = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    assert split_segment(f"contacts({guid})") == ("contacts", guid)
    assert parse_key(contact, guid.upper()).record_id == guid
    assert parse_key(contact, f"contactid={guid}").record_id == guid
    with pytest.raises(EmulatorRequestError) as error:
        parse_key(contact, "emailaddress1='a@b.c'")
    assert "The key in the request URI is not valid" in error.value.message
    contact.keys.append(KeyDef("k", ["firstname", "emailaddress1"]))
    address = parse_key(contact, "emailaddress1='abc@example.com',firstname='O''Brien'")
    assert address.alternate == {"emailaddress1": "abc@example.com", "firstname": "O'Brien"}
    assert parse_literal("2") == 2
    assert key_text({"name": "O'Brien", "n": 2}) == "name='O''Brien',n=2"
