"""The outbox: durable adds with idempotency keys (a send's session in the same commit),
leased sends, forward-only status, and Dataverse versions that collapse (SQLite file, as the
default deployment has it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from connector.domain.conversation import SessionState
from connector.domain.outbound import Failure, OutboundMessage
from connector.domain.status import FailureCategory, MessageStatus
from connector.errors import UnprocessableError
from connector.state.db import StateStore
from connector.state.outbox import Outbox
from connector.state.session_mirror import SessionCache


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}"))
    yield box
    box.close()


def _message(
    message_id: str = "m1", to: str = "+14155550100", at: float = 1000.0
) -> OutboundMessage:
    return OutboundMessage(
        id=message_id,
        configuration_id="c1",
        to_number=to,
        from_number="+15005550006",
        body="Hello",
        session_id="s1",
        created_at=at,
        updated_at=at,
    )


def test_same_key_same_request_returns_first_answer_and_stores_once(outbox: Outbox) -> None:
    first = outbox.add(_message("m1"), {"id": "m1"}, idempotency_key="k", request_hash="h")
    again = outbox.add(_message("m2"), {"id": "m2"}, idempotency_key="k", request_hash="h")
    assert first.created and not again.created
    assert again.answer == {"id": "m1"}
    assert outbox.get("m2") is None
    assert outbox.senders_due(2000.0) == ["c1"]
    assert len(outbox.claim_sends("c1", 10, lease_seconds=30, now=2000.0)) == 1


def test_same_key_other_request_is_a_conflict(outbox: Outbox) -> None:
    outbox.add(_message("m1"), {"id": "m1"}, idempotency_key="k", request_hash="h1")
    with pytest.raises(UnprocessableError) as caught:
        outbox.add(_message("m2"), {"id": "m2"}, idempotency_key="k", request_hash="h2")
    assert caught.value.code == "idempotency_conflict"
    assert outbox.get("m2") is None


def test_a_claimed_message_is_not_claimed_twice_until_its_lease_ends(outbox: Outbox) -> None:
    outbox.add(_message(), {})
    first = outbox.claim_sends("c1", 5, lease_seconds=30, now=1000.0)
    assert len(first) == 1 and not first[0].uncertain
    assert outbox.claim_sends("c1", 5, lease_seconds=30, now=1010.0) == []
    assert len(outbox.claim_sends("c1", 5, lease_seconds=30, now=1031.0)) == 1


def test_a_worker_dying_after_recording_its_attempt_leaves_the_message_uncertain(
    outbox: Outbox,
) -> None:
    outbox.add(_message(), {})
    [claimed] = outbox.claim_sends("c1", 5, lease_seconds=30, now=1000.0)
    assert outbox.start_attempt(claimed, lease_seconds=30, now=1001.0)
    # the worker dies here: no handed(), no retry_later()
    [again] = outbox.claim_sends("c1", 5, lease_seconds=30, now=1100.0)
    assert again.uncertain and again.attempt_at == 1001.0 and again.attempts == 1
    assert not outbox.start_attempt(claimed, lease_seconds=30, now=1101.0)  # lease lost


def test_handed_messages_are_never_sent_again(outbox: Outbox) -> None:
    outbox.add(_message(), {})
    [claimed] = outbox.claim_sends("c1", 5, lease_seconds=30, now=1000.0)
    sent = claimed.message.with_status(MessageStatus.QUEUED, 1001.0, provider_id="SM1")
    assert sent is not None and outbox.handed(claimed, sent)
    assert outbox.senders_due(5000.0) == []
    assert outbox.get("m1").provider_id == "SM1"  # type: ignore[union-attr]


def test_status_only_moves_forward_whatever_the_order(outbox: Outbox) -> None:
    outbox.add(_message(), {})
    for status in ("delivered", "sent", "queued", "delivered", "failed", "sending"):
        outbox.apply("m1", MessageStatus(status), 1002.0, provider_id="SM1")
    message = outbox.get("m1")
    assert message is not None
    assert message.status is MessageStatus.DELIVERED
    assert message.sent_at == 1002.0 and message.delivered_at == 1002.0


def test_a_callback_for_a_waiting_message_settles_it(outbox: Outbox) -> None:
    """The provider has it (the worker died before marking it): it is never resent."""
    outbox.add(_message(), {})
    outbox.apply("m1", MessageStatus.SENT, 1002.0, provider_id="SM9")
    assert outbox.senders_due(5000.0) == []


def test_failures_keep_category_and_reason(outbox: Outbox) -> None:
    outbox.add(_message(), {})
    failure = Failure(FailureCategory.INVALID_RECIPIENT, "not a valid phone number", "21211")
    outbox.apply("m1", MessageStatus.FAILED, 1003.0, failure=failure)
    assert outbox.get("m1").failure == failure  # type: ignore[union-attr]


def test_unknown_message_news_changes_nothing(outbox: Outbox) -> None:
    assert outbox.apply("nope", MessageStatus.SENT, 1.0) is None
    assert not outbox.exists("nope")


def test_changes_collapse_into_one_dataverse_version(outbox: Outbox) -> None:
    outbox.add(_message(), {})
    outbox.apply("m1", MessageStatus.SENT, 1002.0, provider_id="SM1")
    outbox.apply("m1", MessageStatus.DELIVERED, 1003.0)
    [item] = outbox.claim_unsynced(10)
    assert item.first and item.message.status is MessageStatus.DELIVERED
    outbox.mark_synced([item])
    assert outbox.claim_unsynced(10) == []
    outbox.apply("m1", MessageStatus.READ, 1004.0)
    [later] = outbox.claim_unsynced(10)
    assert not later.first and later.message.status is MessageStatus.READ


def test_a_change_while_writing_stays_due(outbox: Outbox) -> None:
    outbox.add(_message(), {})
    [item] = outbox.claim_unsynced(10)
    outbox.apply("m1", MessageStatus.SENT, 1002.0, provider_id="SM1")
    outbox.mark_synced([item])
    [again] = outbox.claim_unsynced(10, now=item.message.created_at + 120)
    assert again.message.status is MessageStatus.SENT


def test_failed_writes_back_off(outbox: Outbox) -> None:
    outbox.add(_message(), {})
    items = outbox.claim_unsynced(10)
    outbox.sync_failed(items, retry_after=30)
    assert outbox.claim_unsynced(10) == []
    due = outbox.next_sync_due()
    assert due is not None
    assert len(outbox.claim_unsynced(10, now=due + 1)) == 1


def _session(session_id: str, version: int = 0) -> SessionState:
    return SessionState(
        id=session_id,
        configuration_id="c1",
        phone="+14155550100",
        started_at=1000.0,
        expires_at=5000.0,
        version=version,
    )


def test_a_message_and_its_session_are_stored_in_one_commit(tmp_path: Path) -> None:
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    box, sessions = Outbox(store), SessionCache(store)
    try:
        added = box.add(_message("m1"), {"id": "m1"}, session=(_session("s1"), None))
        assert added.created and not added.session_moved
        stored = sessions.current("c1", "+14155550100")
        assert stored is not None and stored.id == "s1"
        # A change read before that commit no longer applies: nothing is stored.
        moved = box.add(_message("m2"), {"id": "m2"}, session=(_session("s2"), None))
        assert moved.session_moved and not moved.created
        assert box.get("m2") is None and sessions.get("s2") is None
        # A replay of an idempotent send stores nothing, its session change included.
        current = sessions.current("c1", "+14155550100")
        assert box.add(_message("m3"), {"id": "m3"}, idempotency_key="k", request_hash="h").created
        replay = box.add(
            _message("m4"),
            {"id": "m4"},
            idempotency_key="k",
            request_hash="h",
            session=(_session("s4"), current),
        )
        assert replay.answer == {"id": "m3"} and not replay.created and not replay.session_moved
        assert sessions.current("c1", "+14155550100") == current
    finally:
        box.close()


UNSYNCED_PLANS = ("ix_outbox_unsynced", "ix_outbox_sync_claim", "ix_outbox_unsynced")


def test_the_sync_claim_reads_only_unsynced_messages(outbox: Outbox) -> None:
    """The messages Dataverse lacks come from an index of those alone, in order of their last
    change, and are read back through an index of the leased ones: beside 300,000 synced
    messages (the outbox keeps them all) a claim read every one, 200 ms, twice."""
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        statements.append((sql, params))

    outbox.add(_message("m1"), {})
    engine = outbox._books  # the engine the claims run on
    event.listen(engine, "before_cursor_execute", seen)
    (claimed,) = outbox.claim_unsynced(10, now=2000.0)
    outbox.next_sync_due()
    event.remove(engine, "before_cursor_execute", seen)
    assert claimed.message.id == "m1"
    queries = [(s, p) for s, p in statements if not s.startswith(("BEGIN", "COMMIT"))]
    assert len(queries) == 3  # the claim, its read-back, the probe
    with engine.connect() as conn:
        for (sql, params), index in zip(queries, UNSYNCED_PLANS, strict=True):
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
            assert any(index in step for step in plan), plan
            whole = [s for s in plan if s.startswith("SCAN outbox") and "unsynced" not in s]
            sorted_all = index != "ix_outbox_sync_claim" and any("TEMP B-TREE" in s for s in plan)
            assert not whole and not sorted_all, plan  # (the leased rows alone may be sorted)
