"""The resolution ledger: conversation recency per number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.domain.routing import RecordRef
from connector.state.db import StateStore
from connector.state.resolution_ledger import ResolutionLedger

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
KEY = "14155550101"


@pytest.fixture
def ledger() -> ResolutionLedger:
    return ResolutionLedger(StateStore.from_url("sqlite://"))


def test_latest_conversation_time_is_kept_per_record(ledger: ResolutionLedger) -> None:
    a, b = RecordRef("contact", "a"), RecordRef("lead", "b")
    ledger.note_conversation(KEY, a, T0)
    ledger.note_conversation(KEY, b, T0 + timedelta(minutes=5))
    ledger.note_conversation(KEY, a, T0 - timedelta(days=1))  # older: ignored
    assert ledger.last_conversations(KEY) == {a: T0, b: T0 + timedelta(minutes=5)}
    ledger.note_conversation(KEY, a, T0 + timedelta(hours=1))
    assert ledger.last_conversations(KEY)[a] == T0 + timedelta(hours=1)
    assert ledger.last_conversations("4420") == {}
