"""Inbound service on a claimed batch: one session read and one write per conversation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from connector.domain.conversation import SessionState
from connector.domain.model import Configuration, Provider
from connector.domain.provider_messages import InboundMessage
from connector.domain.routing import RecordRef, SenderContext
from connector.errors import ConfigurationError
from connector.services.inbound import InboundService, PreparedInbound
from connector.state.caches import ConfigurationCache
from connector.state.db import StateStore
from connector.state.session_mirror import SessionCache
from connector.testing.conversations import (
    FakeConfigurationDirectory,
    FakeConversationWriter,
    TableResolver,
)

SENDER = "+14155550100"
ALICE = "+14155550123"
BOB = "+14155550124"
START = 1_000_000.0


@dataclass
class CountingSessions:
    """The real session mirror, counting reads and writes."""

    inner: SessionCache
    reads: int = 0
    writes: list[int] = field(default_factory=list)
    stores: int = 0
    """Calls of ``save_groups``: one per batch."""

    def current(self, configuration_id: str, phone: str) -> SessionState | None:
        self.reads += 1
        return self.inner.current(configuration_id, phone)

    def get(self, session_id: str) -> SessionState | None:
        return self.inner.get(session_id)

    def save(self, session: SessionState, previous: SessionState | None) -> bool:
        self.writes.append(1)
        return self.inner.save(session, previous)

    def save_many(self, changes: Sequence[tuple[SessionState, SessionState | None]]) -> bool:
        self.writes.append(len(changes))
        return self.inner.save_many(changes)

    def current_many(self, configuration_id: str, phones: Sequence[str]) -> dict[str, SessionState]:
        self.reads += 1
        return self.inner.current_many(configuration_id, phones)

    def save_groups(
        self, groups: Sequence[Sequence[tuple[SessionState, SessionState | None]]]
    ) -> list[bool]:
        self.stores += 1
        self.writes.extend(len(group) for group in groups if group)
        return self.inner.save_groups(groups)

    def awaiting_escalation(
        self, configuration_id: str, waiting_since_before: float, limit: int
    ) -> list[SessionState]:
        return self.inner.awaiting_escalation(configuration_id, waiting_since_before, limit)


def make_service(
    sessions: CountingSessions | None = None,
) -> tuple[InboundService, CountingSessions, TableResolver]:
    config = Configuration(
        name="Main",
        provider=Provider.SIMULATOR,
        sender_number=SENDER,
        id="cfg-1",
        owner_id="user-1",
        default_country="US",
        session_timeout_minutes=60,
    )
    sessions = sessions or CountingSessions(SessionCache(StateStore.from_url("sqlite://")))
    resolver = TableResolver(
        records={ALICE: RecordRef("contact", "0" * 8 + "-0000-0000-0000-" + "a" * 12)}
    )
    service = InboundService(
        ConfigurationCache(FakeConfigurationDirectory(configurations=[config])),
        sessions,
        resolver,
        FakeConversationWriter(),
        clock=lambda: START,
    )
    return service, sessions, resolver


def message(sid: str, frm: str = ALICE, to: str = SENDER) -> InboundMessage:
    return InboundMessage("twilio", sid, "AC" + "0" * 32, frm, to, f"body of {sid}")


def prepared(results: list[PreparedInbound | Exception]) -> list[PreparedInbound]:
    assert all(isinstance(result, PreparedInbound) for result in results), results
    return [result for result in results if isinstance(result, PreparedInbound)]


def test_a_conversation_in_one_batch_reads_and_writes_its_session_once() -> None:
    service, sessions, resolver = make_service()
    batch = [(message(f"SM{n}"), START + n) for n in range(5)]
    done = prepared(service.prepare_many(batch))
    assert sessions.reads == 1 and sessions.writes == [1]
    assert [p.write.session.unread for p in done] == [1, 2, 3, 4, 5]
    assert [p.outcome.new_session for p in done] == [True, False, False, False, False]
    assert len({p.outcome.session_id for p in done}) == 1
    assert resolver.calls == 1
    stored = sessions.get(done[0].outcome.session_id)
    assert stored is not None and stored.unread == 5 and stored.last_message_at == START + 4


def test_each_conversation_of_a_mixed_batch_keeps_its_own_session_in_arrival_order() -> None:
    service, sessions, _ = make_service()
    batch = [(message("SM1"), START), (message("SM2", BOB), START + 1), (message("SM3"), START + 2)]
    done = prepared(service.prepare_many(batch))
    assert sessions.reads == 1 and sessions.stores == 1  # the batch's sessions, at once
    assert sessions.writes == [1, 1]
    assert done[0].outcome.session_id == done[2].outcome.session_id != done[1].outcome.session_id
    assert [p.write.session.unread for p in done] == [1, 1, 2]


def test_a_batch_spanning_the_session_timeout_stores_both_sessions_together() -> None:
    service, sessions, _ = make_service()
    prepared(service.prepare_many([(message("SM0"), START)]))
    late = START + 61 * 60
    batch = [(message("SM1"), START + 10), (message("SM2"), late), (message("SM3"), late + 1)]
    done = prepared(service.prepare_many(batch))
    assert sessions.writes[-1] == 2  # the old session's count and the new session, at once
    first, second, third = (p.outcome for p in done)
    assert not first.new_session and second.new_session and not third.new_session
    assert second.session_id == third.session_id != first.session_id
    old = sessions.get(first.session_id)
    new = sessions.current("cfg-1", ALICE)
    assert old is not None and old.unread == 2
    assert new is not None and new.id == second.session_id and new.unread == 2


def test_a_message_that_cannot_be_prepared_fails_alone() -> None:
    service, _, _ = make_service()
    batch = [(message("SM1"), START), (message("SM2", to="+14155550999"), START + 1)]
    results = service.prepare_many([*batch, (message("SM3"), START + 2)])
    assert isinstance(results[1], ConfigurationError)
    ok = [r for r in results if isinstance(r, PreparedInbound)]
    assert [p.write.session.unread for p in ok] == [1, 2]


def test_a_retried_batch_counts_the_opening_message_once() -> None:
    service, sessions, _ = make_service()
    first = prepared(service.prepare_many([(message("SM1"), START)]))[0]
    again = prepared(service.prepare_many([(message("SM1"), START)]))[0]
    assert again.outcome.session_id == first.outcome.session_id and again.outcome.new_session
    stored = sessions.get(first.outcome.session_id)
    assert stored is not None and stored.unread == 1


def test_a_batchs_numbers_are_offered_to_the_resolver_together_once() -> None:
    service, _, resolver = make_service()
    batch = [(message("SM1"), START), (message("SM2", BOB), START + 1), (message("SM3"), START + 2)]
    prepared(service.prepare_many(batch))
    assert resolver.prefetched == [(ALICE, BOB)]


def test_a_failing_prefetch_leaves_each_number_to_its_own_resolution() -> None:
    service, _, resolver = make_service()

    def broken(phones: Sequence[str], sender: SenderContext) -> None:
        raise ConfigurationError("the lookup failed")

    resolver.prefetch = broken  # type: ignore[method-assign]
    batch = [(message("SM1"), START), (message("SM2", BOB), START + 1)]
    assert len(prepared(service.prepare_many(batch))) == 2
    assert resolver.calls == 2


@dataclass
class RacingSessions(CountingSessions):
    """The real mirror, where (once ``armed``) another worker counts a message of
    ``racer``'s conversation between a batch's read and its write."""

    racer: str = ALICE
    armed: bool = False

    def save_groups(
        self, groups: Sequence[Sequence[tuple[SessionState, SessionState | None]]]
    ) -> list[bool]:
        theirs = self.inner.current("cfg-1", self.racer)
        if self.armed and theirs is not None:
            assert self.inner.save(theirs.with_inbound(START + 5, "SM-theirs"), theirs)
        return super().save_groups(groups)


def test_a_conversation_another_worker_moved_mid_batch_is_read_again_alone() -> None:
    racing = RacingSessions(SessionCache(StateStore.from_url("sqlite://")))
    service, _, _ = make_service(racing)
    prepared(service.prepare_many([(message("SM1"), START), (message("SM2", BOB), START + 1)]))
    racing.armed, racing.reads = True, 0
    batch = [(message("SM3"), START + 10), (message("SM4", BOB), START + 11)]
    alice, bob = prepared(service.prepare_many(batch))
    assert racing.reads == 2  # the batch's read, then Alice's conversation again
    assert alice.write.session.unread == 3  # SM1, the other worker's message, SM3
    assert bob.write.session.unread == 2
    for number, unread in ((ALICE, 3), (BOB, 2)):
        stored = racing.current("cfg-1", number)
        assert stored is not None and stored.unread == unread
