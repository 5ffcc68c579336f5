"""The Web API requests of the phone sync and the live fallback (pure builders)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from connector.crm.phone_queries import (
    MAX_VARIANTS,
    changes_url,
    lead_body,
    live_lookup_url,
    records_url,
    team_members_url,
)
from connector.domain.record_types import standard_spec
from connector.errors import InvalidInputError

CONTACT = standard_spec("contact")


def options(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_live_lookup_ors_every_phone_column_against_every_form() -> None:
    url = live_lookup_url(CONTACT, ["+14155550101", "(415) 555-0101"])
    assert url.startswith("contacts?")
    opts = options(url)
    assert opts["$top"] == "50"
    clauses = opts["$filter"].split(" or ")
    assert len(clauses) == 6
    assert "mobilephone eq '+14155550101'" in clauses
    assert "telephone2 eq '(415) 555-0101'" in clauses
    assert opts["$select"].split(",")[:2] == ["contactid", "fullname"]


def test_hostile_phone_text_stays_one_literal() -> None:
    hostile = "1' or statecode eq 1 or mobilephone eq '2&$top=5000"
    opts = options(live_lookup_url(standard_spec("lead", ["mobilephone"]), [hostile]))
    assert set(opts) == {"$select", "$filter", "$top"}
    assert opts["$top"] == "50"
    assert (
        opts["$filter"] == "mobilephone eq '1'' or statecode eq 1 or mobilephone eq ''2&$top=5000'"
    )


def test_variants_are_deduplicated_and_bounded() -> None:
    forms = [f"+1415555{i:04d}" for i in range(40)] + ["+14155550000"]
    clauses = options(live_lookup_url(CONTACT, forms))["$filter"].split(" or ")
    assert len(clauses) == MAX_VARIANTS * len(CONTACT.phone_columns)


def test_incremental_read_filters_on_modifiedon() -> None:
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert options(records_url(CONTACT, modified_since=when))["$filter"] == (
        "modifiedon ge 2025-01-02T03:04:05Z"
    )
    assert "$filter" not in options(records_url(CONTACT))
    assert set(options(changes_url(CONTACT))) == {"$select"}


def test_opportunity_reads_its_parent_lookups() -> None:
    select = options(records_url(standard_spec("opportunity")))["$select"].split(",")
    assert {"_parentcontactid_value", "_parentaccountid_value", "opportunityid"} <= set(select)


def test_ids_and_owner_must_be_guids() -> None:
    with pytest.raises(InvalidInputError):
        lead_body("+14155550101", "not-a-guid")
    with pytest.raises(InvalidInputError):
        team_members_url("x')")


def test_lead_carries_the_number_and_owner() -> None:
    owner = "00000000-0000-0000-0000-0000000000aa"
    body = lead_body("+14155550101", owner)
    assert body["mobilephone"] == "+14155550101"
    assert body["ownerid@odata.bind"] == f"/systemusers({owner})"
    assert "ownerid@odata.bind" not in lead_body("+14155550101", None)
