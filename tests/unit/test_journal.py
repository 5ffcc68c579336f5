"""The ingress journal: dedupe, leases, backoff, poison rows and replay (in-memory SQLite)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event

from connector.state.db import StateStore
from connector.state.journal import Journal
from connector.state.journal_table import ERROR, PENDING


@pytest.fixture
def journal() -> Journal:
    return Journal(StateStore.from_url("sqlite://"), base_delay=2.0, max_attempts=3)


def test_repeat_event_id_is_a_duplicate_of_the_first_row(journal: Journal) -> None:
    first = journal.append("twilio", "SM1", {"Body": "hi"}, now=100.0)
    again = journal.append("twilio", "SM1", {"Body": "changed"}, now=101.0)
    assert not first.duplicate and again.duplicate and again.id == first.id
    (entry,) = journal.claim(now=102.0)
    assert entry.payload == {"Body": "hi"}
    assert journal.counts().pending == 1


def test_claimed_rows_are_not_claimed_twice_until_the_lease_expires(journal: Journal) -> None:
    for n in range(3):
        journal.append("twilio", f"SM{n}", {"n": str(n)}, now=100.0)
    first = journal.claim(limit=2, lease_seconds=30, now=100.0)
    second = journal.claim(limit=10, lease_seconds=30, now=101.0)
    assert [e.event_id for e in first] == ["SM0", "SM1"]
    assert [e.event_id for e in second] == ["SM2"]
    assert journal.claim(now=120.0) == []
    retaken = journal.claim(now=131.0)  # the first worker died: its leases ran out
    assert [e.event_id for e in retaken] == ["SM0", "SM1"]


def test_a_lost_lease_cannot_mark_a_row_done(journal: Journal) -> None:
    journal.append("twilio", "SM1", {}, now=100.0)
    (stale,) = journal.claim(lease_seconds=10, now=100.0)
    (fresh,) = journal.claim(lease_seconds=10, now=111.0)
    assert journal.mark_done(stale) is False
    assert journal.mark_done(fresh) is True
    assert journal.counts().done == 1


def test_transient_failure_backs_off_exponentially_then_becomes_error(journal: Journal) -> None:
    journal.append("twilio", "SM1", {}, now=100.0)
    (entry,) = journal.claim(now=100.0)
    assert journal.mark_failed(entry, {"code": "x"}, transient=True, now=100.0) == PENDING
    assert journal.claim(now=101.0) == []
    (entry,) = journal.claim(now=102.0)
    assert entry.attempts == 1
    assert journal.mark_failed(entry, {"code": "x"}, transient=True, now=102.0) == PENDING
    assert journal.claim(now=105.0) == []  # second delay is 4 s
    (entry,) = journal.claim(now=106.0)
    assert journal.mark_failed(entry, {"code": "x"}, transient=True, now=106.0) == ERROR
    assert journal.counts().error == 1
    assert journal.errors()[0]["attempts"] == 3


def test_retry_after_is_honoured_when_longer_than_the_backoff(journal: Journal) -> None:
    journal.append("twilio", "SM1", {}, now=100.0)
    (entry,) = journal.claim(now=100.0)
    journal.mark_failed(entry, {}, transient=True, retry_after=30.0, now=100.0)
    assert journal.claim(now=125.0) == []
    assert journal.next_due() == pytest.approx(130.0)


def test_poison_event_goes_to_error_at_once_and_replay_makes_it_due(journal: Journal) -> None:
    journal.append("twilio", "SM1", {}, now=100.0)
    (entry,) = journal.claim(now=100.0)
    assert journal.mark_failed(entry, {"code": "bad"}, transient=False, now=100.0) == ERROR
    assert journal.claim() == []
    assert journal.replay() == 1
    (again,) = journal.claim()
    assert again.attempts == 0
    assert journal.mark_done(again)
    counts = journal.counts()
    assert (counts.pending, counts.done, counts.error) == (0, 1, 0)


def test_prune_drops_only_old_done_rows(journal: Journal) -> None:
    journal.append("twilio", "SM1", {}, now=100.0)
    journal.append("twilio", "SM2", {}, now=100.0)
    first, _second = journal.claim(now=100.0)
    journal.mark_done(first, now=150.0)
    assert journal.prune(older_than=200.0) == 1
    assert journal.counts().pending == 1
    assert journal.counts().done == 0


def test_prune_deletes_in_bounded_batches_until_nothing_old_is_left(journal: Journal) -> None:
    for n in range(7):
        journal.append("twilio", f"SM{n}", {}, now=100.0)
    for entry in journal.claim(limit=7, now=100.0)[:6]:
        journal.mark_done(entry, now=150.0)
    journal.append("twilio", "SM-new", {}, now=300.0)
    journal.mark_done(journal.claim(now=300.0)[1], now=300.0)  # done, but recent
    assert journal.prune(older_than=200.0, batch=4) == 6
    counts = journal.counts()
    assert (counts.pending, counts.done) == (1, 1)


def test_transient_failures_retry_without_limit_by_default() -> None:
    journal = Journal(StateStore.from_url("sqlite://"), base_delay=1.0, max_delay=60.0)
    journal.append("twilio", "SM1", {}, now=0.0)
    now = 0.0
    for _ in range(30):
        (entry,) = journal.claim(now=now)
        assert journal.mark_failed(entry, {}, transient=True, now=now) == PENDING
        now += 61.0
    assert journal.counts().error == 0


def test_the_request_id_an_event_was_appended_under_comes_back_on_claim(journal: Journal) -> None:
    journal.append("twilio", "SM1", {"Body": "hi"}, now=100.0, request_id="req-1")
    journal.append("twilio", "SM1", {"Body": "hi"}, now=101.0, request_id="req-2")  # repeat
    journal.append("twilio", "SM2", {}, now=100.0)  # positional call, no request id
    asyncio.run(journal.append_async("twilio", "SM3", {}, request_id="req-3", timeout=10))
    entries = journal.claim()  # SM3 was appended at the current time
    assert [(e.provider, e.event_id, e.request_id) for e in entries] == [
        ("twilio", "SM1", "req-1"),  # the first append's id: the repeat added nothing
        ("twilio", "SM2", None),
        ("twilio", "SM3", "req-3"),
    ]


def test_the_request_id_survives_a_retry(journal: Journal) -> None:
    journal.append("twilio", "SM1", {}, now=100.0, request_id="req-1")
    (entry,) = journal.claim(now=100.0)
    journal.mark_failed(entry, {"code": "x"}, transient=True, now=100.0)
    (again,) = journal.claim(now=200.0)
    assert again.request_id == "req-1" and again.attempts == 1


def test_a_claim_walks_the_backlog_in_order_and_reads_its_rows_through_an_index() -> None:
    """Claiming the oldest due rows reads them in id order from an index (no sort of every
    due row) and reads the leased rows back through an index of the leased ones (not a
    search of the whole table for the claim's token): with 100,000 rows waiting, or a week
    of done ones, a claim took 27-56 ms, holding the lock every webhook's append waits for."""
    store = StateStore.from_url("sqlite://")
    journal = Journal(store)
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        statements.append((sql, params))

    for n in range(3):
        journal.append("twilio", f"SM{n}", {"n": str(n)}, now=100.0)
    event.listen(store.engine, "before_cursor_execute", seen)
    claimed = journal.claim(limit=2, now=101.0)
    event.remove(store.engine, "before_cursor_execute", seen)
    assert [entry.event_id for entry in claimed] == ["SM0", "SM1"]
    claim, read_back = [(s, p) for s, p in statements if not s.startswith(("BEGIN", "COMMIT"))]
    with store.engine.connect() as conn:
        plans = [
            [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
            for sql, params in (claim, read_back)
        ]
    for plan in plans:
        assert not any("TEMP B-TREE" in step or step.startswith("SCAN") for step in plan), plan
    assert any("ix_ingress_journal_queue" in step for step in plans[0]), plans[0]
    assert any("ix_ingress_journal_claim" in step for step in plans[1]), plans[1]
