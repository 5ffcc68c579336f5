"""The phone index behaves the same on SQLite and a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime

from connector.domain.phone_records import IndexEntry, SyncCursor
from connector.domain.routing import Candidate, RecordRef
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex

WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_index_round_trips_on_both_backends(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    index = PhoneIndex(store)
    contact = RecordRef("contact", "c1")
    cand = Candidate(contact, "Ada", "u1", False, False, WHEN, "mobilephone")
    opp = Candidate(RecordRef("opportunity", "o1"), matched_column="p.m", via=contact)
    index.replace({contact: [IndexEntry("447946095800", cand)]})
    index.replace({opp.record: [IndexEntry("447946095800", opp)]})
    assert {c.record for c in index.lookup("447946095800")} == {contact, opp.record}
    assert index.lookup("447946095800")[0].modified_on == WHEN
    index.save_cursor(SyncCursor("contact", watermark=WHEN))
    index.save_cursor(SyncCursor("contact", delta_link="d", watermark=WHEN))
    assert index.cursor("contact").delta_link == "d"
    index.delete([contact])
    assert index.count() == 0
    store.close()
