"""Agent actions on conversations: accept, dismiss, block (for everyone), assign."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from connector.domain.conversation import Acceptance
from connector.domain.model import Configuration, Provider
from connector.domain.provider_messages import InboundMessage
from connector.domain.routing import RecordRef
from connector.errors import NotFoundError
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


@dataclass
class World:
    service: InboundService
    actions: SessionActions
    writer: FakeConversationWriter
    now: list[float]

    def receive(self, sid: str) -> str:
        msg = InboundMessage("twilio", sid, "AC" + "0" * 32, ALICE, SENDER, "hi")
        return self.service.handle(msg, self.now[0]).session_id


@pytest.fixture
def world() -> World:
    now = [1_000_000.0]
    config = Configuration(
        "Main", Provider.SIMULATOR, SENDER, id="cfg-1", owner_id="u-1", idle_timeout_minutes=5
    )
    store = StateStore.from_url("sqlite://")
    sessions = SessionCache(store)
    configs = ConfigurationCache(FakeConfigurationDirectory(configurations=[config]))
    writer = FakeConversationWriter()
    service = InboundService(
        configs,
        sessions,
        TableResolver(records={ALICE: RecordRef("contact", "c-1")}),
        writer,
        team_members=lambda _team: frozenset({"u-7", "u-8"}),
        clock=lambda: now[0],
    )
    actions = SessionActions(sessions, writer, configs, clock=lambda: now[0])
    return World(service, actions, writer, now)


def test_accept_makes_the_agent_the_owner_and_stops_the_idle_escalation(world: World) -> None:
    session_id = world.receive("SM1")
    accepted = world.actions.accept(session_id, "u-5")
    assert (accepted.owner_id, accepted.acceptance) == ("u-5", Acceptance.ACCEPTED)
    assert world.writer.sessions[session_id].owner_id == "u-5"
    world.now[0] += 10 * 60
    world.receive("SM2")
    assert world.writer.messages["SM2"].notify == ("u-5",)


def test_dismiss_hides_the_conversation_for_that_agent(world: World) -> None:
    session_id = world.receive("SM1")
    dismissed = world.actions.dismiss(session_id, "u-5")
    assert dismissed.acceptance is Acceptance.DISMISSED and "u-5" in dismissed.dismissed_by


def test_block_stores_later_messages_flagged_without_notifications(world: World) -> None:
    session_id = world.receive("SM1")
    world.actions.block(session_id, "u-5")
    assert ("cfg-1", ALICE) in world.writer.blocked
    world.receive("SM2")
    later = world.writer.messages["SM2"]
    assert later.blocked and later.notify == ()


def test_assign_to_a_team_notifies_its_members(world: World) -> None:
    session_id = world.receive("SM1")
    assigned = world.actions.assign(session_id, "team-9", team=True)
    assert (assigned.owner_id, assigned.owner_is_team) == ("team-9", True)
    world.receive("SM2")
    assert world.writer.messages["SM2"].notify == ("u-7", "u-8")


def test_unknown_session_is_not_found(world: World) -> None:
    with pytest.raises(NotFoundError):
        world.actions.accept("00000000-0000-0000-0000-000000000000", "u-5")
