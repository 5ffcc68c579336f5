"""Idle-timeout escalation: the team is alerted once per wait, by the sweep or the next message."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from connector.domain.conversation import Acceptance, EscalationWrite, SessionState
from connector.domain.model import Configuration, Provider
from connector.domain.provider_messages import InboundMessage
from connector.domain.routing import RecordRef
from connector.errors import DataverseUnavailableError
from connector.services.escalation import EscalationService
from connector.services.inbound import InboundService
from connector.services.sessions import SessionActions
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
TEAM = ("u-7", "u-8")


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    clock: Clock
    config: Configuration
    directory: FakeConfigurationDirectory
    sessions: SessionCache
    writer: FakeConversationWriter
    inbound: InboundService
    actions: SessionActions
    sweeper: EscalationService

    def receive(self, sid: str, frm: str = ALICE) -> str:
        msg = InboundMessage("twilio", sid, "AC" + "0" * 32, frm, SENDER, "hi")
        return self.inbound.handle(msg, self.clock.now).session_id

    def another_sweeper(self) -> EscalationService:
        configs = ConfigurationCache(self.directory, clock=self.clock)
        return EscalationService(
            configs, self.sessions, self.writer, lambda _t: frozenset(TEAM), clock=self.clock
        )

    def alerts(self) -> list[tuple[str, str]]:
        """(user, session) of every escalation notification the fake Dataverse holds."""
        return sorted(
            (user, cause.removeprefix("escalation:"))
            for user, cause in self.writer.notifications.values()
            if cause.startswith("escalation:")
        )


def make_world(team: str | None = "team-1") -> World:
    clock = Clock()
    config = Configuration(
        "Main",
        Provider.SIMULATOR,
        SENDER,
        id="cfg-1",
        owner_id="u-1",
        owning_team_id=team,
        idle_timeout_minutes=5,
    )
    directory = FakeConfigurationDirectory(configurations=[config])
    configs = ConfigurationCache(directory, clock=clock)
    sessions = SessionCache(StateStore.from_url("sqlite://"))
    writer = FakeConversationWriter()
    resolver = TableResolver(records={ALICE: RecordRef("contact", "c-1")})
    inbound = InboundService(
        configs,
        sessions,
        resolver,
        writer,
        team_members=lambda _t: frozenset(TEAM),
        clock=clock,
    )
    actions = SessionActions(sessions, writer, configs, clock=clock)
    sweeper = EscalationService(configs, sessions, writer, lambda _t: frozenset(TEAM), clock=clock)
    return World(clock, config, directory, sessions, writer, inbound, actions, sweeper)


def test_team_members_are_alerted_once_after_the_idle_timeout() -> None:
    world = make_world()
    session_id = world.receive("SM1")
    world.clock.now += 4 * 60
    assert world.sweeper.sweep().escalated == 0
    world.clock.now += 60
    assert world.sweeper.sweep().escalated == 1
    world.clock.now += 60
    assert world.sweeper.sweep().escalated == 0
    assert world.alerts() == [("u-7", session_id), ("u-8", session_id)]
    stored = world.sessions.get(session_id)
    assert stored is not None and stored.escalated_at is not None
    assert stored.escalation_claim is None and stored.escalation_pending_since is None


def test_an_accept_before_the_idle_timeout_means_no_alert() -> None:
    world = make_world()
    session_id = world.receive("SM1")
    world.clock.now += 4 * 60
    world.actions.accept(session_id, "u-5")
    world.clock.now += 10 * 60
    assert world.sweeper.sweep().escalated == 0
    assert world.alerts() == []


def test_an_action_ends_the_wait_and_the_next_wait_is_escalated_again() -> None:
    world = make_world()
    session_id = world.receive("SM1")
    world.clock.now += 6 * 60
    world.sweeper.sweep()
    world.actions.accept(session_id, "u-5")
    world.receive("SM2")
    world.clock.now += 6 * 60
    assert world.sweeper.sweep().escalated == 1
    assert len(world.alerts()) == 4  # two waits, two members: distinct notification ids


def test_blocked_number_gets_no_alert_and_its_wait_is_settled() -> None:
    world = make_world()
    session_id = world.receive("SM1")
    world.directory.blocked = {"cfg-1": {ALICE}}
    world.clock.now += 6 * 60
    report = world.another_sweeper().sweep()
    assert (report.escalated, report.settled_silently) == (0, 1)
    assert world.alerts() == []
    assert world.sessions.awaiting_escalation("cfg-1", world.clock.now, 10) == []
    assert world.sessions.get(session_id) is not None


def test_blocked_session_is_never_a_candidate() -> None:
    world = make_world()
    session_id = world.receive("SM1")
    world.actions.block(session_id, "u-5")
    world.receive("SM2")  # stored, flagged, silent: a wait no one is alerted about
    world.clock.now += 6 * 60
    assert world.sessions.awaiting_escalation("cfg-1", world.clock.now, 10) == []
    assert world.sweeper.sweep().escalated == 0


def test_configuration_without_an_owning_team_is_left_alone() -> None:
    world = make_world(team=None)
    world.receive("SM1")
    world.clock.now += 60 * 60
    assert world.sweeper.sweep().escalated == 0
    assert world.alerts() == []


def test_failed_write_leaves_the_session_unescalated_for_the_next_sweep() -> None:
    world = make_world()
    session_id = world.receive("SM1")
    world.clock.now += 6 * 60
    world.writer.fail_next = 1
    report = world.sweeper.sweep()
    assert (report.escalated, report.failed) == (0, 1)
    assert world.alerts() == []
    stored = world.sessions.get(session_id)
    assert stored is not None and stored.escalated_at is None
    world.clock.now += 60
    assert world.sweeper.sweep().escalated == 1
    assert world.alerts() == [("u-7", session_id), ("u-8", session_id)]


def test_two_racing_sweeps_alert_once() -> None:
    world = make_world()
    world.receive("SM1")
    world.receive("SM2", frm="+14155550124")
    world.clock.now += 6 * 60
    late = world.another_sweeper()
    stale = late.candidates(world.config)  # read before the other sweep ran
    assert len(stale) == 2
    assert world.sweeper.sweep().escalated == 2
    assert late.escalate(world.config, stale).escalated == 0
    assert len(world.alerts()) == 4
    assert world.writer.change_sets == 2 + 2  # two messages, two alerts: no more


def test_a_claim_never_settled_is_retaken_after_the_lease_with_the_same_ids() -> None:
    world = make_world()
    session_id = world.receive("SM1")
    world.clock.now += 6 * 60
    read = world.sessions.get(session_id)
    assert read is not None  # a sweep claims, writes its alert, and dies before confirming
    assert world.sessions.save(read.escalated(world.clock.now, claim="dead-sweep"), read)
    world.writer.write_escalations([EscalationWrite(read, TEAM)])
    assert world.sweeper.sweep().escalated == 0  # the claim is fresh: someone is on it
    world.clock.now += 301
    assert world.another_sweeper().sweep().escalated == 1
    assert world.alerts() == [("u-7", session_id), ("u-8", session_id)]  # rewritten, not added


def test_message_after_the_sweep_escalated_notifies_only_the_owner() -> None:
    world = make_world()
    session_id = world.receive("SM1")
    world.actions.accept(session_id, "u-5")
    world.receive("SM2")  # a new wait in the same session
    world.clock.now += 6 * 60
    assert world.sweeper.sweep().escalated == 1
    world.receive("SM3")
    assert world.writer.messages["SM3"].notify == ("u-5",)
    assert len(world.alerts()) == 2


def test_message_that_finds_the_wait_idle_escalates_it_and_the_sweep_does_not_again() -> None:
    world = make_world()
    session_id = world.receive("SM1")
    world.actions.accept(session_id, "u-5")
    world.receive("SM2")
    world.clock.now += 6 * 60
    world.receive("SM3")
    assert world.writer.messages["SM3"].notify == TEAM
    world.clock.now += 60
    assert world.sweeper.sweep().escalated == 0
    world.receive("SM4")
    assert world.writer.messages["SM4"].notify == ("u-5",)
    assert world.alerts() == []


def test_retry_of_the_message_that_escalated_still_notifies_the_team() -> None:
    world = make_world()
    session_id = world.receive("SM1")
    world.actions.accept(session_id, "u-5")
    world.receive("SM2")
    world.clock.now += 6 * 60
    world.writer.fail_next = 1
    msg = InboundMessage("twilio", "SM3", "AC" + "0" * 32, ALICE, SENDER, "hi")
    assert world.inbound.write_many([world.inbound.prepare(msg, world.clock.now).write])[0]
    world.inbound.handle(msg, world.clock.now)  # the journal's retry
    assert world.writer.messages["SM3"].notify == TEAM


def _session(**changes: object) -> SessionState:
    base = SessionState("s-1", "cfg-1", ALICE, 0.0, 86_400.0, awaiting_since=100.0)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_escalation_is_due_only_when_idle_unblocked_and_not_alerted_for_this_wait() -> None:
    assert not _session().escalation_due(100.0 + 299, 5, 300)
    assert _session().escalation_due(100.0 + 300, 5, 300)
    assert not _session(awaiting_since=None).escalation_due(10_000, 5, 300)
    assert not _session(acceptance=Acceptance.BLOCKED).escalation_due(10_000, 5, 300)
    assert not _session(escalated_at=500.0).escalation_due(10_000, 5, 300)
    claimed = _session(escalated_at=500.0, escalation_claim="t")
    assert not claimed.escalation_due(799, 5, 300) and claimed.escalation_due(800, 5, 300)


def test_the_index_holds_a_wait_until_its_alert_is_confirmed() -> None:
    waiting = _session()
    assert waiting.escalation_pending_since == 100.0
    assert waiting.escalated(500.0, claim="t").escalation_pending_since == 100.0
    assert waiting.escalated(500.0).escalation_pending_since is None
    assert waiting.acted(600.0).escalation_pending_since is None


def test_a_new_wait_starts_unescalated_and_an_ongoing_one_keeps_its_alert() -> None:
    alerted = _session(escalated_at=500.0, escalated_by="SM1")
    assert alerted.with_inbound(700.0, "SM7").escalated_at == 500.0
    fresh = alerted.acted(800.0).with_inbound(900.0, "SM9")
    assert (fresh.awaiting_since, fresh.escalated_at, fresh.escalated_by) == (900.0, None, None)


def test_team_lookup_failure_claims_nothing_so_the_next_sweep_retries() -> None:
    world = make_world()
    session_id = world.receive("SM1")
    world.clock.now += 6 * 60

    def unreachable(_team: str) -> frozenset[str]:
        raise DataverseUnavailableError("team query failed", status=503)

    configs = ConfigurationCache(world.directory, clock=world.clock)
    failing = EscalationService(
        configs, world.sessions, world.writer, unreachable, clock=world.clock
    )
    with pytest.raises(DataverseUnavailableError):
        failing.sweep()
    stored = world.sessions.get(session_id)
    assert stored is not None and stored.escalated_at is None
    assert world.sweeper.sweep().escalated == 1
