"""The send path up to the outbox (fakes for Dataverse, a real outbox and session mirror on
SQLite), and the sender worker handing messages to a fake provider exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import pytest

from connector.domain.conversation import SessionState, derived_id
from connector.domain.model import Configuration, MessageCategory, Provider, Template
from connector.domain.outbound import Failure, OutboundMessage
from connector.domain.phone_records import RecordTypeSpec
from connector.domain.provider_messages import SendRequest, SendResult
from connector.domain.routing import RecordRef
from connector.domain.status import FailureCategory, MessageStatus
from connector.errors import ConnectorError, RefusedError
from connector.ports import SessionStore
from connector.providers.twilio.errors import unreachable_error
from connector.services.outbound import SendOrder, SendService
from connector.services.outbound_sync import OutboundSync
from connector.services.outbox_sender import OutboxSender
from connector.state.caches import ConfigurationCache
from connector.state.db import StateStore
from connector.state.outbox import Outbox
from connector.state.session_mirror import SessionCache
from connector.testing.conversations import (
    FakeConfigurationDirectory,
    FakeOutboundWriter,
    TableResolver,
)
from connector.testing.fake_sms import FakeSmsProvider
from connector.testing.send_rate import FakeSendRate
from connector.testing.templates import FakeRecordReader, FakeTemplateCatalog

US = Configuration(
    name="US desk",
    provider=Provider.SIMULATOR,
    sender_number="+14155550100",
    id="cfg-us",
    owner_id="user-1",
    default_country="US",
)
UK = Configuration(
    name="UK desk",
    provider=Provider.SIMULATOR,
    sender_number="+442079460000",
    id="cfg-uk",
    owner_id="user-2",
    default_country="GB",
)
ALICE = "+14155550123"
CONTACT = RecordRef("contact", "c-1")
SPECS = (
    RecordTypeSpec("contact", "contacts", "contactid", "fullname", ("mobilephone", "telephone1")),
    RecordTypeSpec("lead", "leads", "leadid", "fullname", ("mobilephone",)),
)


@dataclass
class World:
    service: SendService
    outbox: Outbox
    records: FakeRecordReader
    templates: FakeTemplateCatalog
    sessions: SessionCache
    resolver: TableResolver
    directory: FakeConfigurationDirectory
    provider: FakeSmsProvider = field(default_factory=FakeSmsProvider)

    def sender(self) -> OutboxSender:
        return OutboxSender(
            self.outbox,
            self.provider,
            self.service.configurations,
            FakeSendRate(),
            sleep=lambda _s: None,
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    outbox = Outbox(store)
    directory = FakeConfigurationDirectory(configurations=[US, UK])
    sessions = SessionCache(store)
    records, catalog, resolver = FakeRecordReader(), FakeTemplateCatalog(), TableResolver()
    records.put(
        "contact",
        "c-1",
        {
            "mobilephone": None,
            "telephone1": "(415) 555-0123",
            "firstname": "Alice",
            "jobtitle": None,
        },
        name="Alice Nguyen",
        owner_id="user-2",
    )
    service = SendService(
        configurations=ConfigurationCache(directory),
        sessions=sessions,
        resolver=resolver,
        records=records,
        templates=catalog,
        outbox=outbox,
        record_types=lambda _sender: SPECS,
    )
    yield World(service, outbox, records, catalog, sessions, resolver, directory)
    outbox.close()


def _code(world: World, order: SendOrder) -> str:
    with pytest.raises(ConnectorError) as caught:
        world.service.send(order)
    return caught.value.code


def test_regarding_gives_the_number_from_the_record_type_columns_in_order(world: World) -> None:
    answer = world.service.send(
        SendOrder(body="Hi", regarding=CONTACT, from_number=US.sender_number)
    )
    assert answer["to"] == ALICE and answer["from"] == US.sender_number
    session = world.sessions.get(answer["session_id"])
    assert session is not None
    assert (session.regarding_table, session.regarding_id) == ("contact", "c-1")
    assert world.resolver.records[ALICE] == CONTACT  # the record is the number's latest


def test_sender_choice_last_talked_then_owner_then_country(world: World) -> None:
    # The record's owner (user-2) owns the UK desk: chosen although the number is American.
    first = world.service.send(SendOrder(body="Hi", regarding=CONTACT))
    assert first["configuration_id"] == "cfg-uk"
    # Now the UK desk talked with the number last: it stays the sender without a record.
    again = world.service.send(SendOrder(body="Again", to=ALICE))
    assert again["configuration_id"] == "cfg-uk"
    # A new American number nobody talked to: the single configuration for its country.
    other = world.service.send(SendOrder(body="Hi", to="+1 415 555 0199"))
    assert other["configuration_id"] == "cfg-us"


def test_two_configurations_for_one_country_are_ambiguous(world: World) -> None:
    world.directory.configurations.append(
        Configuration(
            name="US 2",
            provider=Provider.SIMULATOR,
            sender_number="+14155550111",
            id="cfg-us2",
            default_country="US",
        )
    )
    world.service.configurations.invalidate()  # type: ignore[attr-defined]
    assert _code(world, SendOrder(body="Hi", to="+14155550177")) == "sender_ambiguous"


def test_templates_render_against_the_record_and_the_sender(world: World) -> None:
    world.templates.add(Template("T", "Hi {firstname}, {sender.name} here", id="t-1"))
    answer = world.service.send(
        SendOrder(template_id="t-1", regarding=CONTACT, from_number=US.sender_number)
    )
    stored = world.outbox.get(answer["id"])
    assert stored is not None and stored.body == "Hi Alice, US desk here"
    assert stored.template_id == "t-1"


def test_a_missing_template_value_sends_nothing(world: World) -> None:
    world.templates.add(Template("T", "Dear {jobtitle}", id="t-2"))
    order = SendOrder(template_id="t-2", regarding=CONTACT, from_number=US.sender_number)
    assert _code(world, order) == "template_value_missing"
    assert world.outbox.senders_due(1e12) == []


@pytest.mark.parametrize(
    ("order", "code"),
    [
        (SendOrder(body="x", to="12"), "invalid_phone_number"),
        (SendOrder(body="x", to="+1 800 555 0100"), "number_not_mobile"),
        (SendOrder(body=" ", to=ALICE), "body_empty"),
        (SendOrder(body="x" * 1601, to=ALICE), "body_too_long"),
        (SendOrder(body="x", to=ALICE, from_number="+15550000000"), "unknown_sender"),
        (SendOrder(body="x", to=ALICE, configuration_id="nope"), "unknown_sender"),
        (SendOrder(template_id="missing", regarding=CONTACT), "unknown_template"),
        (SendOrder(body="x", regarding=RecordRef("contact", "gone")), "regarding_not_found"),
        (SendOrder(body="x", to=ALICE, media_urls=("http://x/a.png",)), "media_url_invalid"),
        (SendOrder(body="x", template_id="t"), "body_and_template"),
    ],
)
def test_bad_input_has_a_stable_code_and_stores_nothing(
    world: World, order: SendOrder, code: str
) -> None:
    assert _code(world, order) == code
    assert world.outbox.senders_due(1e12) == []


def test_a_record_without_a_phone_is_refused(world: World) -> None:
    world.records.put("contact", "c-2", {"mobilephone": None, "telephone1": ""})
    order = SendOrder(body="x", regarding=RecordRef("contact", "c-2"))
    assert _code(world, order) == "regarding_without_phone"


def test_a_blocked_number_is_refused_at_the_gate(world: World) -> None:
    world.directory.blocked["cfg-us"] = {ALICE}
    world.service.configurations.invalidate()  # type: ignore[attr-defined]
    with pytest.raises(RefusedError) as caught:
        world.service.send(SendOrder(body="x", to=ALICE, from_number=US.sender_number))
    assert caught.value.code == "number_blocked"


def test_a_send_about_another_record_opens_a_session_for_it(world: World) -> None:
    first = world.service.send(SendOrder(body="a", to=ALICE, from_number=US.sender_number))
    lead = RecordRef("lead", "l-9")
    world.records.put("lead", "l-9", {"mobilephone": ALICE})
    second = world.service.send(SendOrder(body="b", regarding=lead, from_number=US.sender_number))
    assert first["session_id"] != second["session_id"]
    current = world.sessions.current("cfg-us", ALICE)
    assert current is not None and current.regarding_id == "l-9"
    same = world.service.send(SendOrder(body="c", to=ALICE, from_number=US.sender_number))
    assert same["session_id"] == second["session_id"]


def test_the_sender_hands_each_message_once_and_records_failures(world: World) -> None:
    ok = world.service.send(SendOrder(body="ok", to=ALICE, from_number=US.sender_number))
    bad = world.service.send(SendOrder(body="bad", to="+15005550001", from_number=US.sender_number))
    stop = world.service.send(
        SendOrder(body="stop", to="+15005550004", from_number=US.sender_number)
    )
    sender = world.sender()
    for _ in range(4):  # one message per cycle at the default rate of 1 per second
        sender.run_once()
    assert [r.body for r, _ in world.provider.sent] == ["ok"]
    sent = world.outbox.get(ok["id"])
    assert sent is not None and sent.provider_id and sent.status is MessageStatus.QUEUED
    failed = world.outbox.get(bad["id"])
    assert failed is not None and failed.status is MessageStatus.FAILED
    assert failed.failure is not None and failed.failure.code == "21211"
    assert failed.failure.category is FailureCategory.INVALID_RECIPIENT
    opted = world.outbox.get(stop["id"])
    assert opted is not None and opted.failure is not None
    assert opted.failure.category is FailureCategory.OPTED_OUT  # 21610, for the consent ledger


def test_a_message_refused_before_reaching_the_provider_tells_its_status(world: World) -> None:
    """The recheck path ended messages failed without a status event, so a subscriber to
    "When a message's status changes" never heard of a send that STOP stopped in the queue."""
    answer = world.service.send(SendOrder(body="hi", to=ALICE, from_number=US.sender_number))
    stopped = Failure(FailureCategory.OPTED_OUT, "the recipient opted out", "consent_opted_out")
    told: list[OutboundMessage] = []
    sender = replace(world.sender(), recheck=lambda _m: stopped, on_status=told.extend)
    assert sender.run_once().failed == 1
    assert world.provider.sent == []
    stored = world.outbox.get(answer["id"])
    assert stored is not None and stored.status is MessageStatus.FAILED
    assert told == [stored]
    assert sender.run_once().failed == 0 and told == [stored]  # ended: told once


def test_a_provider_refusal_tells_its_status_once(world: World) -> None:
    answer = world.service.send(
        SendOrder(body="x", to="+15005550001", from_number=US.sender_number)
    )
    told: list[OutboundMessage] = []
    sender = replace(world.sender(), on_status=told.extend)
    assert sender.run_once().failed == 1
    stored = world.outbox.get(answer["id"])
    assert stored is not None and stored.failure is not None
    assert told == [stored]


def test_a_failing_status_hook_never_holds_the_send_back(world: World) -> None:
    answer = world.service.send(
        SendOrder(body="x", to="+15005550001", from_number=US.sender_number)
    )

    def broken(_messages: object) -> None:
        raise RuntimeError("subscriptions store down")

    assert replace(world.sender(), on_status=broken).run_once().failed == 1
    assert world.outbox.get(answer["id"]).status is MessageStatus.FAILED  # type: ignore[union-attr]


def test_transient_refusals_wait_and_are_sent_later(world: World) -> None:
    answer = world.service.send(SendOrder(body="later", to=ALICE, from_number=US.sender_number))
    world.provider.refuse_next.append(20429)
    cycle = world.sender().run_once()
    assert cycle.retried == 1 and cycle.next_due is not None
    assert world.outbox.get(answer["id"]).status is MessageStatus.QUEUED  # type: ignore[union-attr]
    claimed = world.outbox.claim_sends("cfg-us", 5, lease_seconds=5, now=cycle.next_due + 1)
    assert len(claimed) == 1 and not claimed[0].uncertain  # 429: Twilio never took it


def test_a_send_the_provider_took_before_the_worker_died_is_not_sent_again(
    world: World,
) -> None:
    answer = world.service.send(SendOrder(body="once", to=ALICE, from_number=US.sender_number))
    [claimed] = world.outbox.claim_sends("cfg-us", 5, lease_seconds=1, now=1e10)
    assert world.outbox.start_attempt(claimed, lease_seconds=1, now=1e10)
    message = world.outbox.get(answer["id"])
    assert message is not None
    world.provider.send(SendRequest(answer["id"], ALICE, "once", from_number=US.sender_number))
    # ... the worker is killed here, before it marks the message handed.
    sender = world.sender()
    sender.clock = lambda: 1e10 + 120  # the lease has run out
    sender.run_once()
    assert [r.body for r, _ in world.provider.sent] == ["once"]
    recovered = world.outbox.get(answer["id"])
    assert recovered is not None and recovered.provider_id is not None


def test_category_comes_from_the_template_or_the_order(world: World) -> None:
    world.templates.add(Template("Offer", "Deals!", id="t-3", category=MessageCategory.COMMERCIAL))
    answer = world.service.send(
        SendOrder(template_id="t-3", to=ALICE, from_number=US.sender_number)
    )
    assert world.outbox.get(answer["id"]).category is MessageCategory.COMMERCIAL  # type: ignore[union-attr]


def test_session_ids_are_derived_from_the_message_that_opened_them(world: World) -> None:
    answer = world.service.send(SendOrder(body="x", to=ALICE, from_number=US.sender_number))
    assert answer["session_id"] == derived_id("session", "cfg-us", ALICE, answer["id"])


def test_dataverse_down_sends_still_go_out_and_dataverse_catches_up_at_the_highest(
    world: World,
) -> None:
    writer = FakeOutboundWriter(down=True)
    sync = OutboundSync(world.outbox, writer, world.sessions)
    answer = world.service.send(SendOrder(body="hi", to=ALICE, from_number=US.sender_number))
    world.sender().run_once()
    assert [r.body for r, _ in world.provider.sent] == ["hi"]  # sent while Dataverse is down
    assert sync.run_once().failed == 1
    world.outbox.apply(answer["id"], MessageStatus.DELIVERED, 1e10, provider_id="SMx")
    world.outbox.apply(answer["id"], MessageStatus.SENT, 1e10)  # late and stale
    writer.down = False
    due = world.outbox.next_sync_due()
    assert due is not None
    items = world.outbox.claim_unsynced(10, now=due + 1)
    assert writer.write_outbound_many([(i.message, None) for i in items]) == [None]
    world.outbox.mark_synced(items)
    assert writer.rows[answer["id"]].status is MessageStatus.DELIVERED  # one write, the highest
    assert world.outbox.claim_unsynced(10, now=due + 2) == []


def test_provider_down_messages_wait_queued_with_the_reason(world: World) -> None:
    answer = world.service.send(SendOrder(body="wait", to=ALICE, from_number=US.sender_number))
    world.provider = Unreachable()
    cycle = world.sender().run_once()
    waiting = world.outbox.get(answer["id"])
    assert waiting is not None and waiting.status is MessageStatus.QUEUED
    assert "unavailable" in (world.outbox.last_error(answer["id"]) or "")
    assert cycle.next_due is not None
    [again] = world.outbox.claim_sends("cfg-us", 5, lease_seconds=5, now=cycle.next_due + 1)
    assert again.uncertain  # a network failure: the next try asks the provider first


class Unreachable(FakeSmsProvider):
    """A provider whose every call fails as a refused connection would."""

    def send(self, request: SendRequest) -> SendResult:
        raise unreachable_error(ConnectionError("connection refused"))


def test_a_session_that_changes_under_a_send_is_read_again_not_overwritten(world: World) -> None:
    first = world.service.send(SendOrder(body="Hi", to=ALICE, from_number=US.sender_number))
    sessions = world.service.sessions

    class Racing:
        """The pair's session as read, while another writer changes it meanwhile (once)."""

        raced = False

        def __getattr__(self, name: str) -> object:
            return getattr(sessions, name)

        def current(self, configuration_id: str, phone: str) -> SessionState | None:
            read = sessions.current(configuration_id, phone)
            if not self.raced and read is not None:
                self.raced = True
                assert sessions.save(replace(read, unread=read.unread + 1), read)
            return read

    world.service.sessions = cast("SessionStore", Racing())
    again = world.service.send(SendOrder(body="Again", to=ALICE, from_number=US.sender_number))
    assert again["session_id"] == first["session_id"]
    stored = world.sessions.get(first["session_id"])
    assert stored is not None and stored.unread == 1  # the other writer's change is kept
    assert world.outbox.get(again["id"]) is not None


def test_the_event_loop_path_answers_as_the_threaded_one(world: World) -> None:
    order = SendOrder(body="Hi", to=ALICE, from_number=US.sender_number)
    world.service.configurations.snapshot()  # loaded: the order needs no Dataverse read
    assert world.service.answers_locally(order)
    assert not world.service.answers_locally(SendOrder(body="Hi", regarding=CONTACT))
    answer = asyncio.run(world.service.send_async(order, idempotency_key="k"))
    assert asyncio.run(world.service.send_async(order, idempotency_key="k")) == answer
    assert world.service.send(order, idempotency_key="k") == answer
    assert world.outbox.counts()["waiting"] == 1
