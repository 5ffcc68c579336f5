"""Inbound service: sessions, record links, notifications, blocked numbers, idempotent retries."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import pytest

from connector.domain.conversation import Acceptance
from connector.domain.model import Configuration, Provider
from connector.domain.provider_messages import InboundMedia, InboundMessage
from connector.domain.routing import RecordRef
from connector.errors import ConfigurationError, DataverseUnavailableError, is_transient
from connector.services.inbound import InboundOutcome, InboundService
from connector.state.caches import ConfigurationCache
from connector.state.db import StateStore
from connector.state.session_mirror import SessionCache
from connector.testing.conversations import (
    FakeConfigurationDirectory,
    FakeConversationWriter,
    FakeMediaFetcher,
    TableResolver,
)

SENDER = "+14155550100"
ALICE = "+14155550123"
PICTURE_URL = "https://api.twilio.com/media/ME1"
ALICE_CONTACT = RecordRef("contact", "00000000-0000-0000-0000-0000000000a1")


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    clock: Clock
    directory: FakeConfigurationDirectory
    writer: FakeConversationWriter
    resolver: TableResolver
    sessions: SessionCache
    service: InboundService
    team: set[str] = field(default_factory=lambda: {"user-2", "user-3"})

    def receive(
        self,
        sid: str,
        body: str = "hello",
        frm: str = ALICE,
        at: float | None = None,
        media: tuple[InboundMedia, ...] = (),
    ) -> InboundOutcome:
        msg = InboundMessage("twilio", sid, "AC" + "0" * 32, frm, SENDER, body, media=media)
        return self.service.handle(msg, self.clock.now if at is None else at)


def make_world(
    team: str | None = None, directory: FakeConfigurationDirectory | None = None
) -> World:
    clock = Clock()
    config = Configuration(
        name="Main",
        provider=Provider.SIMULATOR,
        sender_number=SENDER,
        id="cfg-1",
        owner_id="user-1",
        owning_team_id=team,
        default_country="US",
        session_timeout_minutes=60,
        idle_timeout_minutes=5,
    )
    directory = directory or FakeConfigurationDirectory(configurations=[config])
    writer = FakeConversationWriter()
    resolver = TableResolver(records={ALICE: ALICE_CONTACT})
    sessions = SessionCache(StateStore.from_url("sqlite://"))
    world = World(clock, directory, writer, resolver, sessions, None)  # type: ignore[arg-type]
    world.service = InboundService(
        ConfigurationCache(directory, clock=clock),
        sessions,
        resolver,
        writer,
        team_members=lambda _team: frozenset(world.team),
        media=FakeMediaFetcher({PICTURE_URL: b"png-bytes"}),
        clock=clock,
    )
    return world


def test_first_message_opens_a_pending_session_linked_to_the_record_and_notifies_owner() -> None:
    world = make_world()
    outcome = world.receive("SM1", "Hi there 👋")
    write = world.writer.messages["SM1"]
    assert outcome.new_session
    assert (write.regarding_table, write.regarding_id) == ("contact", ALICE_CONTACT.id)
    assert write.message.body == "Hi there 👋"
    assert write.session.acceptance is Acceptance.PENDING
    assert write.session.unread == 1
    assert write.notify == ("user-1",)
    assert "contact:" in write.session.match_trace


def test_the_same_message_twice_writes_the_same_rows() -> None:
    world = make_world()
    first = world.receive("SM1")
    again = world.receive("SM1")
    assert first.session_id == again.session_id and first.message_id == again.message_id
    assert len(world.writer.messages) == 1 and len(world.writer.sessions) == 1
    assert world.sessions.get(first.session_id).unread == 1  # type: ignore[union-attr]


def test_later_message_in_the_session_window_joins_it_without_resolving_again() -> None:
    world = make_world()
    first = world.receive("SM1")
    world.clock.now += 30 * 60
    second = world.receive("SM2")
    assert second.session_id == first.session_id and not second.new_session
    assert world.resolver.calls == 1
    assert world.writer.sessions[first.session_id].unread == 2


def test_message_after_the_session_timeout_opens_a_new_session() -> None:
    world = make_world()
    first = world.receive("SM1")
    world.clock.now += 61 * 60
    second = world.receive("SM2")
    assert second.new_session and second.session_id != first.session_id
    assert len(world.writer.sessions) == 2


def test_unknown_number_gets_a_lead_and_a_pending_session() -> None:
    world = make_world()
    world.receive("SM9", frm="+14155550999")
    write = world.writer.messages["SM9"]
    assert write.regarding_table == "lead"
    assert write.session.acceptance is Acceptance.PENDING


def test_national_sender_number_is_normalized_with_the_configuration_country() -> None:
    world = make_world()
    world.receive("SM1", frm="(415) 555-0123")
    assert world.writer.messages["SM1"].message.from_number == ALICE
    assert world.writer.messages["SM1"].regarding_id == ALICE_CONTACT.id


def test_blocked_number_is_stored_flagged_and_notifies_nobody() -> None:
    directory = FakeConfigurationDirectory(blocked={"cfg-1": {ALICE}})
    world = make_world(directory=directory)
    directory.configurations = make_world().directory.configurations
    outcome = world.receive("SM1")
    write = world.writer.messages["SM1"]
    assert outcome.blocked and write.blocked
    assert write.notify == () and world.writer.notifications == {}


def test_team_is_notified_once_the_idle_timeout_has_passed() -> None:
    world = make_world(team="team-1")
    world.receive("SM1")
    assert world.writer.messages["SM1"].notify == ("user-2", "user-3")  # team-owned session
    world.team = {"user-2", "user-3", "user-4"}
    world.clock.now += 6 * 60
    world.receive("SM2")
    assert world.writer.messages["SM2"].notify == ("user-2", "user-3", "user-4")


def test_owner_alone_is_notified_before_the_idle_timeout() -> None:
    world = make_world()
    world.receive("SM1")
    world.clock.now += 60
    world.receive("SM2")
    assert world.writer.messages["SM2"].notify == ("user-1",)


def test_message_to_an_unknown_sender_number_is_a_permanent_configuration_error() -> None:
    world = make_world()
    msg = InboundMessage("twilio", "SM1", "AC" + "0" * 32, ALICE, "+14155550777", "hi")
    with pytest.raises(ConfigurationError) as caught:
        world.service.handle(msg, world.clock.now)
    assert not is_transient(caught.value)
    assert world.writer.messages == {}


def test_dataverse_down_is_transient_and_the_retry_writes_one_message_one_session() -> None:
    world = make_world()
    world.writer.fail_next = 1
    with pytest.raises(DataverseUnavailableError) as caught:
        world.receive("SM1")
    assert is_transient(caught.value)
    world.receive("SM1")
    assert len(world.writer.messages) == 1 and len(world.writer.sessions) == 1


def test_unread_count_counts_each_message_once_however_often_its_write_is_retried() -> None:
    # the probe: 5 messages, then 10 during an outage (each tried 3 times) showed 35 unread
    world = make_world()
    for n in range(5):
        world.receive(f"SM{n}")
    for attempt in range(3):
        for n in range(5, 15):
            world.writer.fail_next = 0 if attempt == 2 else 1
            with contextlib.suppress(DataverseUnavailableError):
                world.receive(f"SM{n}")
    world.receive("SM3")  # a late repeat of an old message, already written
    session_id = world.writer.messages["SM0"].session.id
    assert world.sessions.get(session_id).unread == 15  # type: ignore[union-attr]
    assert world.writer.sessions[session_id].unread == 15
    assert len(world.writer.messages) == 15


def test_configurations_are_read_once_while_the_cache_is_warm() -> None:
    world = make_world()
    for n in range(20):
        world.receive(f"SM{n}")
    assert world.directory.loads == 1


def test_mms_media_is_attached_and_media_from_elsewhere_is_skipped() -> None:
    world = make_world()
    media = (
        InboundMedia(PICTURE_URL, "image/png"),
        InboundMedia("https://evil.example.com/x.png", "image/png"),
    )
    world.receive("MM1", "photo", media=media)
    (attachment,) = world.writer.messages["MM1"].attachments
    assert attachment.data == b"png-bytes"


def test_message_is_kept_when_dataverse_refuses_its_attachments() -> None:
    world = make_world()
    world.writer.refuse_attachments = True
    world.receive("MM1", "photo", media=(InboundMedia(PICTURE_URL, "image/png"),))
    write = world.writer.messages["MM1"]
    assert write.message.body == "photo" and write.attachments == ()
