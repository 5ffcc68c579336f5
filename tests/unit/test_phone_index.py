"""The phone index stores candidates per lookup key and replaces, deletes and cursors them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connector.domain.phone_records import IndexEntry, SyncCursor
from connector.domain.routing import Candidate, RecordRef
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex

WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture
def index() -> PhoneIndex:
    return PhoneIndex(StateStore.from_url("sqlite://"))


def entry(key: str, table: str, rid: str, column: str = "mobilephone", **kw: object) -> IndexEntry:
    cand = Candidate(record=RecordRef(table, rid), matched_column=column, **kw)  # type: ignore[arg-type]
    return IndexEntry(key, cand)


def test_lookup_returns_every_record_with_the_key_and_all_its_fields(index: PhoneIndex) -> None:
    full = entry(
        "14155550101",
        "contact",
        "c1",
        name="Ada Lovelace",
        owner_id="u1",
        owner_is_team=False,
        active=False,
        modified_on=WHEN,
    )
    index.replace({full.candidate.record: [full]})
    index.replace({RecordRef("lead", "l1"): [entry("14155550101", "lead", "l1", "telephone1")]})
    found = {c.record: c for c in index.lookup("14155550101")}
    assert set(found) == {RecordRef("contact", "c1"), RecordRef("lead", "l1")}
    assert found[RecordRef("contact", "c1")] == full.candidate
    assert found[RecordRef("lead", "l1")].matched_column == "telephone1"
    assert index.lookup("14155550199") == []


def test_a_batchs_keys_are_looked_up_in_one_read_with_what_single_lookups_find(
    index: PhoneIndex,
) -> None:
    keys = [f"1415555{n:04d}" for n in range(1200)]  # more than one chunk of the read
    index.replace(
        {
            RecordRef("contact", f"c{n}"): [entry(keys[n], "contact", f"c{n}")]
            for n in range(0, 1200, 3)
        }
    )
    index.replace({RecordRef("lead", "l3"): [entry(keys[3], "lead", "l3", "telephone1")]})
    found = index.lookup_many([*keys, keys[3], "999"])
    assert set(found) == {keys[n] for n in range(0, 1200, 3)}  # keys nothing carries: absent
    for key in (keys[0], keys[3], keys[1197]):
        assert sorted(found[key], key=str) == sorted(index.lookup(key), key=str)
    assert {c.record for c in found[keys[3]]} == {
        RecordRef("contact", "c3"),
        RecordRef("lead", "l3"),
    }
    assert index.lookup_many([]) == {}


def test_replace_swaps_a_records_numbers_without_touching_others(index: PhoneIndex) -> None:
    ref = RecordRef("contact", "c1")
    index.replace({ref: [entry("111", "contact", "c1"), entry("222", "contact", "c1", "t1")]})
    index.replace({RecordRef("contact", "c2"): [entry("222", "contact", "c2")]})
    index.replace({ref: [entry("333", "contact", "c1")]})
    assert index.lookup("111") == []
    assert [c.record.id for c in index.lookup("222")] == ["c2"]
    assert [c.record.id for c in index.lookup("333")] == ["c1"]


def test_replace_with_no_entries_removes_a_record_that_lost_its_number(index: PhoneIndex) -> None:
    ref = RecordRef("contact", "c1")
    index.replace({ref: [entry("111", "contact", "c1")]})
    index.replace({ref: []})
    assert index.lookup("111") == []
    assert index.count() == 0


def test_deleting_a_parent_drops_records_found_through_it(index: PhoneIndex) -> None:
    contact = RecordRef("contact", "c1")
    index.replace({contact: [entry("111", "contact", "c1")]})
    opp = entry("111", "opportunity", "o1", "parentcontactid.mobilephone", via=contact)
    index.replace({opp.candidate.record: [opp]})
    assert {c.record.table for c in index.lookup("111")} == {"contact", "opportunity"}
    assert index.entries_for([contact]) == {contact: [entry("111", "contact", "c1")]}
    index.delete([contact])
    assert index.lookup("111") == []


def test_records_in_lists_ids_per_table(index: PhoneIndex) -> None:
    index.replace(
        {
            RecordRef("contact", "a"): [entry("1", "contact", "a"), entry("2", "contact", "a")],
            RecordRef("contact", "b"): [entry("3", "contact", "b")],
            RecordRef("lead", "l"): [entry("3", "lead", "l")],
        }
    )
    assert index.records_in("contact") == {"a", "b"}
    index.clear_table("contact")
    assert index.records_in("contact") == set()
    assert index.count() == 1


def test_bulk_replace_handles_more_rows_than_one_chunk(index: PhoneIndex) -> None:
    records = {
        RecordRef("contact", f"c{i}"): [entry(f"1415555{i:04d}", "contact", f"c{i}")]
        for i in range(1200)
    }
    assert index.replace(records) == 1200
    index.delete(list(records)[:700])
    assert index.count() == 500
    assert index.lookup("14155551199")[0].record.id == "c1199"


def test_cursor_round_trips_and_updates(index: PhoneIndex) -> None:
    assert index.cursor("contact") == SyncCursor("contact")
    index.save_cursor(SyncCursor("contact", delta_link="https://x/contacts?$deltatoken=1"))
    index.save_cursor(SyncCursor("contact", watermark=WHEN, full_sync_at=WHEN))
    assert index.cursor("contact") == SyncCursor("contact", None, WHEN, WHEN)
