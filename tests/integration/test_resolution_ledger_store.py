"""The conversation ledger's one-statement upsert, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connector.domain.routing import RecordRef
from connector.state.db import StateStore
from connector.state.resolution_ledger import ResolutionLedger

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
KEY = "14155550101"


@pytest.fixture
def ledger(state_url: str) -> Iterator[ResolutionLedger]:
    store = StateStore.from_url(state_url)
    yield ResolutionLedger(store)
    store.close()


def test_the_latest_time_wins_per_record_and_an_older_one_changes_nothing(
    ledger: ResolutionLedger,
) -> None:
    contact, lead = RecordRef("contact", "c-1"), RecordRef("lead", "l-1")
    ledger.note_conversation(KEY, contact, T0)
    ledger.note_conversation(KEY, contact, T0)  # the same time again: no error, no change
    ledger.note_conversation(KEY, lead, T0 + timedelta(seconds=1))
    ledger.note_conversation(KEY, contact, T0 - timedelta(days=1))
    assert ledger.last_conversations(KEY) == {contact: T0, lead: T0 + timedelta(seconds=1)}
    ledger.note_conversation(KEY, contact, T0 + timedelta(microseconds=5))
    assert ledger.last_conversations(KEY)[contact] == T0 + timedelta(microseconds=5)
    assert ledger.last_conversations("4420") == {}
