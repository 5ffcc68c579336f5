"""The resolution ledger: conversation recency per number and one lead claim per number."""

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
    return ResolutionLedger(StateStore.from_url("sqlite://"), stale_after=60)


def test_latest_conversation_time_is_kept_per_record(ledger: ResolutionLedger) -> None:
    a, b = RecordRef("contact", "a"), RecordRef("lead", "b")
    ledger.note_conversation(KEY, a, T0)
    ledger.note_conversation(KEY, b, T0 + timedelta(minutes=5))
    ledger.note_conversation(KEY, a, T0 - timedelta(days=1))  # older: ignored
    assert ledger.last_conversations(KEY) == {a: T0, b: T0 + timedelta(minutes=5)}
    ledger.note_conversation(KEY, a, T0 + timedelta(hours=1))
    assert ledger.last_conversations(KEY)[a] == T0 + timedelta(hours=1)
    assert ledger.last_conversations("4420") == {}


def test_first_claim_is_mine_and_others_wait_until_the_lead_exists(
    ledger: ResolutionLedger,
) -> None:
    first = ledger.claim_lead(KEY, T0)
    assert first.state == "mine"
    assert ledger.claim_lead(KEY, T0 + timedelta(seconds=1)).state == "pending"
    ledger.complete_lead(KEY, first.token, "lead-1")
    done = ledger.claim_lead(KEY, T0 + timedelta(seconds=2))
    assert (done.state, done.lead_id) == ("done", "lead-1")


def test_a_stale_claim_is_taken_over_once(ledger: ResolutionLedger) -> None:
    dead = ledger.claim_lead(KEY, T0)
    later = T0 + timedelta(seconds=61)
    takeover = ledger.claim_lead(KEY, later)
    assert takeover.state == "mine" and takeover.token != dead.token
    assert ledger.claim_lead(KEY, later).state == "pending"
    ledger.complete_lead(KEY, dead.token, "from-the-dead")  # the old holder lost its claim
    assert ledger.claim_lead(KEY, later).state == "pending"


def test_released_claim_lets_the_next_caller_create(ledger: ResolutionLedger) -> None:
    first = ledger.claim_lead(KEY, T0)
    ledger.release_lead(KEY, first.token)
    assert ledger.claim_lead(KEY, T0).state == "mine"
