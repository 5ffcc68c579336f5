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
    index.close()
    store.close()


def test_a_large_page_is_replaced_whole_across_write_transactions(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    index = PhoneIndex(store)
    refs = [RecordRef("contact", f"c{n}") for n in range(250)]  # three write transactions
    index.replace(
        {ref: [IndexEntry(f"1415555{n:04d}", Candidate(ref))] for n, ref in enumerate(refs)}
    )
    moved = {ref: [IndexEntry(f"1628555{n:04d}", Candidate(ref))] for n, ref in enumerate(refs)}
    moved[refs[7]] = []  # a record that lost its number
    assert index.replace(moved) == 249
    assert index.count() == 249
    assert index.lookup("14155550003") == []
    assert [c.record for c in index.lookup("16285550249")] == [refs[249]]
    assert index.lookup("16285550007") == []
    batch = index.lookup_many([f"1628555{n:04d}" for n in range(0, 250, 7)])  # a batch's read
    assert {key: [c.record for c in found] for key, found in batch.items()} == {
        f"1628555{n:04d}": [refs[n]]
        for n in range(0, 250, 7)
        if n != 7  # refs[7] lost its number
    }
    index.delete(refs[:120])
    assert index.count() == 130  # refs[7] had no entry left
    index.close()
    store.close()


def test_lookup_survives_the_database_dropping_its_held_connection(postgres_url: str) -> None:
    import uuid

    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    store = StateStore.from_url(postgres_url.rsplit("/", 1)[0] + "/" + name)
    index = PhoneIndex(store)
    contact = RecordRef("contact", "c1")
    index.replace({contact: [IndexEntry("14155550101", Candidate(contact))]})
    assert [c.record for c in index.lookup("14155550101")] == [contact]
    with admin.connect() as conn:  # a failover / idle timeout kills every session
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
            {"d": name},
        )
    assert [c.record for c in index.lookup("14155550101")] == [contact]
    index.close()
    store.close()
    admin.dispose()
