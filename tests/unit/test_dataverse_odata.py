"""OData helpers: literals, filters, key segments, query strings, GUIDs, lookup builders."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.dataverse import lookups, odata
from connector.dataverse.odata import and_, contains, eq, ne, or_, startswith
from connector.errors import InvalidInputError

GUID = "7eb682f1-ca75-e511-80d4-00155d2a68d1"
HOSTILE = [
    "O'Brien",
    "' or 1 eq 1",
    "x') or (1 eq 1",
    "%27 or 1 eq 1",
    "a&$top=1",
    "a#frag",
    "+15551234567",
    "ünïcödé 电话",
    "''",
    "a;b,c=d/e?f",
]


def _decoded_filter(query: str) -> str:
    values = parse_qs(query, keep_blank_values=True, strict_parsing=True)
    assert list(values) == ["$filter"], "a hostile value added or removed a query option"
    return values["$filter"][0]


def _string_literal_content(expression: str, prefix: str) -> str:
    """Parse ``<prefix>'...'`` the way an OData server does and return the unescaped value."""
    assert expression.startswith(prefix + "'")
    rest = expression[len(prefix) + 1 :]
    out, i = [], 0
    while i < len(rest):
        if rest[i] == "'":
            if rest[i : i + 2] == "''":
                out.append("'")
                i += 2
                continue
            assert rest[i + 1 :] == "", f"literal ended early; trailing {rest[i + 1 :]!r}"
            return "".join(out)
        out.append(rest[i])
        i += 1
    raise AssertionError("unterminated literal")


def test_literal_doubles_single_quotes_and_leaves_guids_bare() -> None:
    assert odata.literal("O'Brien") == "'O''Brien'"
    assert odata.literal(uuid.UUID(GUID)) == GUID
    assert odata.literal(None) == "null"
    assert odata.literal(True) == "true"
    assert odata.literal(3) == "3"
    assert odata.literal(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_stays_one_literal_after_url_round_trip(value: str) -> None:
    query = odata.query_string({"$filter": str(eq("mobilephone", value))})
    assert "#" not in query and "+" not in query and "&" not in query
    decoded = _decoded_filter(query)
    assert _string_literal_content(decoded, "mobilephone eq ") == value


@given(st.text(max_size=60))
def test_any_text_round_trips_as_a_single_literal(value: str) -> None:
    query = odata.query_string({"$filter": str(eq("telephone1", value))})
    assert _string_literal_content(_decoded_filter(query), "telephone1 eq ") == value


def test_filter_builder_groups_compound_parts() -> None:
    expr = and_(eq("statecode", 0), or_(eq("mobilephone", "1"), eq("telephone1", "1")))
    assert str(expr) == "statecode eq 0 and (mobilephone eq '1' or telephone1 eq '1')"
    assert str(~eq("a", 1)) == "not (a eq 1)"
    assert str(ne("x", None)) == "x ne null"
    assert str(odata.is_null("x")) == "x eq null"
    assert str(contains("name", "a'b")) == "contains(name,'a''b')"
    assert str(startswith("name", "Co")) == "startswith(name,'Co')"
    assert str(eq("a", 1) | eq("b", 2)) == "a eq 1 or b eq 2"
    assert str(odata.in_("x", ["1", "2"])) == "x eq '1' or x eq '2'"


def test_column_names_are_validated_not_escaped() -> None:
    with pytest.raises(InvalidInputError):
        eq("name eq 'x' or name", "y")
    with pytest.raises(InvalidInputError):
        odata.query_options(select=["name,(1)"])
    assert str(eq("primarycontactid/fullname", "X")) == "primarycontactid/fullname eq 'X'"


def test_key_segments_for_primary_and_alternate_keys() -> None:
    assert odata.key_segment(GUID.upper()) == f"({GUID})"
    assert odata.key_segment({"accountnumber": "ABC123"}) == "(accountnumber='ABC123')"
    assert odata.key_segment({"k1": 2, "k2": 2}) == "(k1=2,k2=2)"
    assert odata.key_segment({"lastname": "O'Brien"}) == "(lastname='O''Brien')"
    segment = odata.key_segment({"csms_key": "a/b&c#d+e%f"})
    assert unquote(segment) == "(csms_key='a/b&c#d+e%f')"
    assert not set("/&#+") & set(segment)
    with pytest.raises(InvalidInputError):
        odata.key_segment("not-a-guid")
    with pytest.raises(InvalidInputError):
        odata.key_segment({})


def test_guid_validation() -> None:
    assert odata.is_guid(GUID) and odata.is_guid(uuid.UUID(GUID))
    assert not odata.is_guid(GUID + "0") and not odata.is_guid("x" * 36)
    assert odata.guid(GUID.upper()) == GUID
    with pytest.raises(InvalidInputError):
        odata.guid("') or true")


def test_entity_id_from_odata_entityid_header() -> None:
    url = f"https://org.crm.dynamics.com/api/data/v9.2/accounts({GUID.upper()})"
    assert odata.entity_id_from_url(url) == GUID
    assert odata.entity_id_from_url(".../example_records(example_key1=2,example_key2=2)") is None
    assert odata.entity_id_from_url(None) is None


def test_query_options_render_documented_query() -> None:
    options = odata.query_options(
        select=["fullname", "mobilephone"],
        filter=eq("statecode", 0),
        orderby=["modifiedon desc"],
        top=5,
        expand=[odata.expand_clause("parentcustomerid_account", select=["name"])],
    )
    assert odata.query_string(options) == (
        "$select=fullname,mobilephone&$filter=statecode%20eq%200&$orderby=modifiedon%20desc"
        "&$top=5&$expand=parentcustomerid_account(%24select%3Dname)"
    )
    with pytest.raises(InvalidInputError):
        odata.query_options(top=0)
    with pytest.raises(InvalidInputError):
        odata.query_options(orderby=["name sideways"])


def test_polymorphic_regarding_and_activity_parties() -> None:
    contact = lookups.RowRef("contact", "contacts", GUID)
    user = lookups.RowRef("systemuser", "systemusers", GUID)
    body = {
        "subject": "SMS",
        **lookups.regarding("new_sms", contact),
        **lookups.activity_parties(
            "new_sms",
            [
                lookups.activity_party(lookups.Participation.SENDER, contact),
                lookups.activity_party(lookups.Participation.TO_RECIPIENT, user),
                lookups.activity_party(lookups.Participation.TO_RECIPIENT, address="+1555"),
            ],
        ),
    }
    assert body == {
        "subject": "SMS",
        "regardingobjectid_contact_new_sms@odata.bind": f"/contacts({GUID})",
        "new_sms_activity_parties": [
            {"participationtypemask": 1, "partyid_contact@odata.bind": f"/contacts({GUID})"},
            {"participationtypemask": 2, "partyid_systemuser@odata.bind": f"/systemusers({GUID})"},
            {"participationtypemask": 2, "addressused": "+1555"},
        ],
    }
    assert lookups.lookup("parentcustomerid_account", None) == {
        "parentcustomerid_account@odata.bind": None
    }
    keyed = lookups.RowRef("account", "accounts", {"accountnumber": "A1"})
    assert keyed.bind() == "/accounts(accountnumber='A1')"
