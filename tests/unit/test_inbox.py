"""The inbox use cases against fakes: reading a thread marks it read with one write, marks go
to Dataverse before the mirror, a reply brings an archived conversation back unread, records
are created only where the sender allows, and the consent badge; the page's signed cookie and
CSRF tokens."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connector.domain.conversation import SessionState
from connector.domain.inbox import ConversationSummary, Folder, ThreadMessage
from connector.domain.model import Configuration, MessageCategory, Provider
from connector.errors import NotFoundError, UnprocessableError
from connector.services.conversation_move import ConversationMover
from connector.services.inbox import InboxService
from connector.state.caches import ConfigurationCache
from connector.state.consent import ConsentLedger
from connector.state.db import StateStore
from connector.state.session_mirror import SessionCache
from connector.testing.conversations import (
    FakeConfigurationDirectory,
    FakeConversationWriter,
    TableResolver,
)
from connector.testing.inbox import FakeInbox
from connector.testing.session_links import FakeConversationRelinker
from connector.web import auth

CONFIG_ID = "00000000-0000-4000-8000-0000000000c1"
PHONE = "+14155550123"


class World:
    def __init__(self, allow: tuple[str, ...] = ("lead",)) -> None:
        store = StateStore.from_url("sqlite://")
        self.sessions = SessionCache(store)
        self.writer = FakeConversationWriter()
        self.reader = FakeInbox()
        self.relinker = FakeConversationRelinker()
        config = Configuration(
            name="Demo",
            provider=Provider.TWILIO,
            sender_number="+14155550100",
            id=CONFIG_ID,
            allow_create_to=allow,
        )
        self.configs = ConfigurationCache(FakeConfigurationDirectory([config]))
        self.ledger = ConsentLedger(store)
        self.inbox = InboxService(
            sessions=self.sessions,
            reader=self.reader,
            writer=self.writer,
            records=self.reader,
            mover=ConversationMover(self.sessions, self.relinker, TableResolver()),
            configurations=self.configs,
            consent=self.ledger,
        )
        self.session = SessionState(
            id="00000000-0000-4000-8000-0000000000a1",
            configuration_id=CONFIG_ID,
            phone=PHONE,
            started_at=1000.0,
            expires_at=1000.0 + 86400,
            unread=2,
        )
        assert self.sessions.save(self.session, None)
        self.reader.threads[self.session.id] = [
            ThreadMessage("m1", "inbound", "<script>", PHONE, "+14155550100", "Received", None)
        ]


def test_opening_a_thread_reads_once_and_marks_it_read_with_one_write() -> None:
    world = World()
    thread = world.inbox.thread(world.session.id)
    assert world.reader.reads == 1
    assert thread.session.unread == 0
    assert world.writer.sessions[world.session.id].unread == 0  # Dataverse first
    assert world.sessions.get(world.session.id).unread == 0  # type: ignore[union-attr]
    world.writer.sessions.clear()
    world.inbox.thread(world.session.id)  # nothing unread: no write
    assert world.writer.sessions == {}


def test_reading_through_the_api_does_not_mark_read() -> None:
    world = World()
    assert world.inbox.thread(world.session.id, mark_read=False).session.unread == 2
    assert world.writer.sessions == {}


def test_archive_then_a_reply_brings_it_back_unread() -> None:
    world = World()
    archived = world.inbox.mark(world.session.id, "archive")
    assert archived.archived and world.writer.sessions[world.session.id].archived
    read = world.inbox.mark(world.session.id, "read")
    back = read.with_inbound(2000.0, "SM-reply")
    assert not back.archived and back.unread == 1
    assert world.inbox.mark(world.session.id, "unread").unread == 1
    assert not world.inbox.mark(world.session.id, "unarchive").archived


def test_marks_on_an_unknown_session_or_mark_are_not_found() -> None:
    world = World()
    with pytest.raises(NotFoundError):
        world.inbox.mark("00000000-0000-4000-8000-00000000dead", "read")
    with pytest.raises(NotFoundError):
        world.inbox.mark(world.session.id, "explode")


def test_create_record_only_where_the_sender_allows_and_moves_the_conversation() -> None:
    world = World(allow=("lead",))
    with pytest.raises(UnprocessableError) as refused:
        world.inbox.create_record(world.session.id, "contact", {"lastname": "X"})
    assert refused.value.code == "create_not_allowed"
    created = world.inbox.create_record(
        world.session.id, "lead", {"firstname": "Erin", "lastname": "Walsh"}
    )
    assert created.record.name == "Erin Walsh"
    moved = world.sessions.get(world.session.id)
    assert moved is not None and moved.regarding_id == created.record.id
    assert world.relinker.session_regarding[world.session.id].table == "lead"


def test_folder_search_and_display_name() -> None:
    world = World()
    summary = ConversationSummary(
        world.session.id, CONFIG_ID, PHONE, PHONE, "lead", "x", "2026-01-01T00:00:00Z", 1,
        "pending", Folder.INBOX,
    )  # fmt: skip
    world.reader.summaries = [summary, replace(summary, session_id="s2", name="Alice Nguyen")]
    assert [s.display_name for s in world.inbox.conversations(query="alice")] == ["Alice Nguyen"]
    assert summary.display_name == PHONE  # a lead nobody named shows its number
    assert world.inbox.conversations(Folder.ARCHIVED) == []


def test_consent_badge_follows_the_local_ledger() -> None:
    world = World()
    assert world.inbox.consent(PHONE, CONFIG_ID) == "unknown"
    from connector.domain.consent import ConsentChange, ConsentMethod, ConsentStatus, Evidence

    change = ConsentChange(
        "c1", PHONE, CONFIG_ID, MessageCategory.COMMERCIAL, ConsentStatus.PENDING,
        ConsentMethod.API, Evidence(at=1.0, source="test"),
    )  # fmt: skip
    world.ledger.apply([change])
    assert world.inbox.consent(PHONE, CONFIG_ID) == "pending"
    world.ledger.apply([replace(change, id="c2", status=ConsentStatus.OPTED_OUT)])
    assert world.inbox.consent(PHONE, CONFIG_ID) == "no"


def test_session_cookie_round_trips_and_refuses_tampering_expiry_and_other_keys() -> None:
    key = auth.signing_key("secret-api-key")
    cookie = auth.issue(key, "user-1", now=100.0)
    session = auth.verify(cookie, [key], now=200.0)
    assert session is not None and session.user_id == "user-1"
    assert auth.verify(cookie, [auth.signing_key("another")], now=200.0) is None
    assert auth.verify(cookie, [key], now=100.0 + auth.LIFETIME_SECONDS + 1) is None
    body, signature = cookie.split(".")
    assert auth.verify(body + "x." + signature, [key], now=200.0) is None
    assert auth.verify("garbage", [key]) is None
    assert session.csrf_ok(session.csrf())
    assert not session.csrf_ok(None) and not session.csrf_ok("0" * 64)
    other = auth.verify(auth.issue(key, None, now=100.0), [key], now=200.0)
    assert other is not None and other.csrf() != session.csrf()  # a token per session
    assert auth.key_for("secret-api-key", ["x", "secret-api-key"]) == key
    assert auth.key_for("wrong", ["secret-api-key"]) is None
