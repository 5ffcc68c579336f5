"""Consent: the local ledger, keywords on inbound, double opt-in, and the send path's gates
(a real outbox, session mirror and consent ledger on SQLite; fakes for Dataverse and the
provider)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connector.domain.consent import (
    ConsentChange,
    ConsentMethod,
    ConsentStatus,
    Evidence,
    change_id,
)
from connector.domain.conversation import ReceivedMessage
from connector.domain.model import (
    Configuration,
    Keyword,
    KeywordAction,
    MessageCategory,
    Provider,
)
from connector.domain.outbound import OutboundMessage
from connector.domain.phone_records import RecordTypeSpec
from connector.domain.routing import RecordRef
from connector.domain.status import FailureCategory, MessageStatus
from connector.errors import ConnectorError, InvalidInputError, UnprocessableError
from connector.services.consent import ConsentService
from connector.services.outbound import SendOrder, SendOrigin, SendService
from connector.services.outbox_sender import OutboxSender
from connector.state.caches import ConfigurationCache
from connector.state.consent import ConsentLedger
from connector.state.db import StateStore
from connector.state.outbox import Outbox
from connector.state.session_mirror import SessionCache
from connector.testing.conversations import FakeConfigurationDirectory, TableResolver
from connector.testing.fake_sms import FakeSmsProvider
from connector.testing.send_rate import FakeSendRate
from connector.testing.templates import FakeRecordReader, FakeTemplateCatalog

NOON = datetime(2026, 6, 1, 16, 0, tzinfo=UTC).timestamp()  # 12:00 in New York
A = Configuration(
    name="Acme",
    provider=Provider.SIMULATOR,
    sender_number="+14155550100",
    id="cfg-a",
    owner_id="user-1",
    default_country="US",
    quiet_hours="21:00-08:00",
    time_zone="America/New_York",
)
B = replace(A, name="Acme West", sender_number="+14155550111", id="cfg-b")
ALICE = "+14155550123"
CONTACT = RecordRef("contact", "c-1")
SPECS = (
    RecordTypeSpec(
        "contact",
        "contacts",
        "contactid",
        "fullname",
        ("mobilephone",),
        compliance_column="new_allowsms",
    ),
)


@dataclass
class World:
    ledger: ConsentLedger
    consent: ConsentService
    sender: SendService
    outbox: Outbox
    records: FakeRecordReader
    keywords: list[Keyword]
    clock: list[float]
    provider: FakeSmsProvider

    def now(self) -> float:
        return self.clock[0]

    def inbound(
        self, body: str, *, sid: str = "SM1", to: Configuration = A, provider: str | None = None
    ) -> tuple[str | None, str | None]:
        message = ReceivedMessage(
            provider_id=sid,
            account_id="AC1",
            from_number=ALICE,
            to_number=to.sender_number,
            body=body,
            received_at=self.now(),
        )
        outcome = self.consent.on_received(to, message, provider)
        return outcome.keyword, outcome.review_reason

    def send(
        self, category: MessageCategory, *, to: Configuration = A, **extra: object
    ) -> dict[str, Any]:
        order = SendOrder(body="Hello", to=ALICE, configuration_id=to.id, category=category)
        return self.sender.send(replace(order, **extra))  # type: ignore[arg-type]

    def refusal(self, category: MessageCategory, *, to: Configuration = A) -> str:
        with pytest.raises(ConnectorError) as caught:
            self.send(category, to=to)
        return caught.value.code

    def automatic_bodies(self) -> list[str]:
        return [m.body for m in self._all() if m.automatic]

    def _all(self) -> list[OutboundMessage]:
        with self.outbox.store.engine.connect() as conn:
            from sqlalchemy import select

            from connector.state.outbox_table import message_from_json, outbox_table

            rows = conn.execute(select(outbox_table.c.message)).scalars()
            return [message_from_json(str(r)) for r in rows]

    def deliver_due(self) -> list[str]:
        """Run the sender once at the current time; the bodies the provider got."""
        before = len(self.provider.sent)
        sender = OutboxSender(
            self.outbox,
            self.provider,
            self.sender.configurations,
            FakeSendRate(),
            recheck=self.consent.still_allowed,
            on_failed=self.consent.provider_refused,
            clock=self.now,
            sleep=lambda _s: None,
        )
        while sender.run_once().sent:
            pass
        return [request.body for request, _ in self.provider.sent[before:]]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    outbox, ledger = Outbox(store), ConsentLedger(store)
    clock = [NOON]
    directory = FakeConfigurationDirectory(configurations=[A, B])
    configurations = ConfigurationCache(directory)
    keywords: list[Keyword] = []
    records = FakeRecordReader()
    consent = ConsentService(
        ledger, configurations, lambda _c: list(keywords), clock=lambda: clock[0]
    )
    sender = SendService(
        configurations=configurations,
        sessions=SessionCache(store),
        resolver=TableResolver(),
        records=records,
        templates=FakeTemplateCatalog(),
        outbox=outbox,
        record_types=lambda _sender: SPECS,
        consent=consent.refused,
        clock=lambda: clock[0],
    )
    consent.sender = sender
    yield World(ledger, consent, sender, outbox, records, keywords, clock, FakeSmsProvider())
    outbox.close()
    ledger.close()


# -- the ledger ---------------------------------------------------------------------------


def _change(status: ConsentStatus, at: float, cause: str = "x") -> ConsentChange:
    purpose = MessageCategory.COMMERCIAL
    return ConsentChange(
        id=change_id(cause, ALICE, "cfg-a", purpose),
        phone=ALICE,
        configuration_id="cfg-a",
        purpose=purpose,
        status=status,
        method=ConsentMethod.API,
        evidence=Evidence(at=at, source="test", text=cause),
    )


def test_ledger_records_each_change_once_and_keeps_the_history(world: World) -> None:
    ledger = world.ledger
    first = _change(ConsentStatus.OPTED_IN, 10.0, "one")
    assert ledger.apply([first]) == [first]
    assert ledger.apply([first]) == []  # the same cause again
    second = _change(ConsentStatus.OPTED_OUT, 20.0, "two")
    ledger.apply([second])
    assert ledger.current(ALICE, "cfg-a")[MessageCategory.COMMERCIAL].status is (
        ConsentStatus.OPTED_OUT
    )
    assert [c.status for c in ledger.history(ALICE)] == [
        ConsentStatus.OPTED_IN,
        ConsentStatus.OPTED_OUT,
    ]
    late = _change(ConsentStatus.OPTED_IN, 15.0, "late")  # older evidence, applied later
    ledger.apply([late])
    assert ledger.current(ALICE, "cfg-a")[MessageCategory.COMMERCIAL].id == second.id
    assert len(ledger.history(ALICE)) == 3


def test_ledger_hands_unsynced_changes_out_until_marked_and_backs_off_failures(
    world: World,
) -> None:
    ledger = world.ledger
    one, two = _change(ConsentStatus.OPTED_IN, 1.0, "1"), _change(ConsentStatus.OPTED_OUT, 2.0, "2")
    ledger.apply([one, two])
    assert [c.id for c in ledger.unsynced(100.0)] == [one.id, two.id]
    ledger.mark_synced([one.id])
    ledger.sync_failed({two.id: RuntimeError("503")}, now=100.0)
    assert ledger.unsynced(100.0) == []
    assert [c.id for c in ledger.unsynced(103.0)] == [two.id]
    assert ledger.counts() == {"changes": 2, "unsynced": 1}
    pulled = _change(ConsentStatus.PENDING, 3.0, "3")
    ledger.apply([pulled], synced=True)
    assert pulled.id not in {c.id for c in ledger.unsynced(1000.0)}


# -- keywords ---------------------------------------------------------------------------------


def test_stop_refuses_every_later_send_and_is_confirmed_once(world: World) -> None:
    for _ in range(3):  # the webhook delivered three times
        assert world.inbound(" Stop. ", sid="SMstop") == ("STOP", None)
    assert world.refusal(MessageCategory.TRANSACTIONAL) == "consent_opted_out"
    assert world.refusal(MessageCategory.COMMERCIAL) == "consent_opted_out"
    replies = world.automatic_bodies()
    assert len(replies) == 1 and "unsubscribed" in replies[0]
    history = world.ledger.history(ALICE)
    assert {(c.purpose, c.status, c.method) for c in history} == {
        (MessageCategory.TRANSACTIONAL, ConsentStatus.OPTED_OUT, ConsentMethod.KEYWORD),
        (MessageCategory.COMMERCIAL, ConsentStatus.OPTED_OUT, ConsentMethod.KEYWORD),
    }
    assert all(c.evidence.message_id == "SMstop" and c.evidence.text == " Stop. " for c in history)


def test_the_stop_confirmation_goes_out_although_the_number_is_opted_out(world: World) -> None:
    world.inbound("STOP")
    assert world.deliver_due() == world.automatic_bodies()


def test_start_restores_transactional_but_not_a_commercial_opt_in_never_given(
    world: World,
) -> None:
    world.inbound("STOP", sid="SM1")
    world.clock[0] += 60
    assert world.inbound("start", sid="SM2") == ("START", None)
    assert world.send(MessageCategory.TRANSACTIONAL)["status"] == "queued"
    assert world.refusal(MessageCategory.COMMERCIAL) == "consent_opted_out"
    assert len(world.automatic_bodies()) == 2  # the STOP and START confirmations


def test_start_restores_a_commercial_opt_in_given_before_the_stop(world: World) -> None:
    world.consent.request_opt_in(ALICE, "cfg-a", MessageCategory.COMMERCIAL, "web form")
    world.inbound("YES", sid="SM1")
    world.inbound("STOP", sid="SM2")
    world.inbound("UNSTOP", sid="SM3")
    assert world.send(MessageCategory.COMMERCIAL)["status"] == "queued"


def test_double_opt_in_sends_the_request_once_and_yes_opts_in(world: World) -> None:
    assert world.refusal(MessageCategory.COMMERCIAL) == "consent_missing"
    first = world.consent.request_opt_in(ALICE, "cfg-a", MessageCategory.COMMERCIAL, "web form")
    again = world.consent.request_opt_in(ALICE, "cfg-a", MessageCategory.COMMERCIAL, "web form")
    assert first["status"] == "pending" and first["confirmation_sent"]
    assert not again["confirmation_sent"]
    requests = world.automatic_bodies()
    assert len(requests) == 1 and "reply YES" in requests[0]
    assert world.refusal(MessageCategory.COMMERCIAL) == "consent_missing"  # pending is not yes
    world.clock[0] += 3600
    assert world.inbound("Yes!", sid="SMyes") == ("YES", None)
    assert world.send(MessageCategory.COMMERCIAL)["status"] == "queued"
    held = world.ledger.current(ALICE, "cfg-a")[MessageCategory.COMMERCIAL]
    assert held.status is ConsentStatus.OPTED_IN and held.evidence.message_id == "SMyes"


def test_yes_after_the_expiry_does_not_opt_in_and_is_flagged(world: World) -> None:
    world.consent.request_opt_in(ALICE, "cfg-a", MessageCategory.COMMERCIAL, "web form")
    world.clock[0] += 73 * 3600
    keyword, review = world.inbound("YES", sid="SMlate")
    assert keyword == "YES" and review is not None and "expired" in review
    assert world.refusal(MessageCategory.COMMERCIAL) == "consent_missing"


def test_a_message_that_mentions_stop_is_flagged_and_changes_nothing(world: World) -> None:
    keyword, review = world.inbound("please stop texting me")
    assert keyword is None and review is not None
    assert world.ledger.history(ALICE) == []
    assert world.automatic_bodies() == []


def test_help_answers_with_the_configuration_text_even_when_opted_out(world: World) -> None:
    world.inbound("STOP", sid="SM1")
    helped = replace(A, help_text="Acme support: 800-555-0100. Reply STOP to opt out.")
    world.consent.on_received(
        helped,
        ReceivedMessage("SM2", "AC1", ALICE, A.sender_number, "help", world.now()),
        None,
    )
    assert world.automatic_bodies()[-1].startswith("Acme support")


def test_an_admin_auto_reply_keyword_answers_with_its_text(world: World) -> None:
    world.keywords.append(
        Keyword("HOURS", KeywordAction.AUTO_REPLY, "Open 9-5", configuration_id="cfg-a")
    )
    assert world.inbound("hours", sid="SM1") == ("HOURS", None)
    assert world.automatic_bodies() == ["Open 9-5"]


def test_provider_handled_opt_out_is_recorded_without_a_second_confirmation(
    world: World,
) -> None:
    world.inbound("STOP", provider="STOP")
    assert world.automatic_bodies() == []
    assert {c.method for c in world.ledger.history(ALICE)} == {ConsentMethod.PROVIDER}
    assert world.refusal(MessageCategory.TRANSACTIONAL) == "consent_opted_out"


def test_consent_follows_the_sender_not_the_number(world: World) -> None:
    world.consent.request_opt_in(ALICE, "cfg-a", MessageCategory.COMMERCIAL, "web form")
    world.inbound("YES", sid="SMyes")
    assert world.send(MessageCategory.COMMERCIAL)["status"] == "queued"
    assert world.refusal(MessageCategory.COMMERCIAL, to=B) == "consent_missing"
    world.inbound("STOP", sid="SMstop", to=B)
    assert world.send(MessageCategory.TRANSACTIONAL)["status"] == "queued"


# -- the send path's gates --------------------------------------------------------------------


def test_blocked_comes_before_consent(world: World) -> None:
    world.inbound("STOP")
    world.sender.configurations.note_blocked("cfg-a", ALICE)
    assert world.refusal(MessageCategory.TRANSACTIONAL) == "number_blocked"


def test_the_compliance_column_must_be_true_on_the_regarding_record(world: World) -> None:
    world.records.put("contact", "c-1", {"mobilephone": ALICE, "new_allowsms": False})
    order = SendOrder(body="Hi", regarding=CONTACT, configuration_id="cfg-a")
    with pytest.raises(ConnectorError) as caught:
        world.sender.send(order)
    assert caught.value.code == "compliance_blocked"
    world.records.put("contact", "c-1", {"mobilephone": ALICE, "new_allowsms": None})
    with pytest.raises(ConnectorError):
        world.sender.send(order)
    world.records.put("contact", "c-1", {"mobilephone": ALICE, "new_allowsms": True})
    assert world.sender.send(order)["status"] == "queued"


def test_commercial_send_in_quiet_hours_waits_for_the_morning_and_goes_once(
    world: World,
) -> None:
    world.consent.request_opt_in(ALICE, "cfg-a", MessageCategory.COMMERCIAL, "web form")
    world.inbound("YES", sid="SMyes")
    world.deliver_due()  # the opt-in request and the confirmation
    world.clock[0] = datetime(2026, 6, 2, 2, 0, tzinfo=UTC).timestamp()  # 22:00 in New York
    answer = world.send(MessageCategory.COMMERCIAL)
    morning = datetime(2026, 6, 2, 12, 0, tzinfo=UTC).timestamp()  # 08:00 in New York
    assert answer["status"] == "scheduled" and answer["send_at"] == morning
    assert world.deliver_due() == []
    world.clock[0] = morning
    assert world.deliver_due() == ["Hello"]
    assert world.deliver_due() == []


def test_an_agent_reply_in_an_open_conversation_is_not_held_for_quiet_hours(
    world: World,
) -> None:
    world.clock[0] = datetime(2026, 6, 2, 2, 0, tzinfo=UTC).timestamp()
    automated = world.send(MessageCategory.TRANSACTIONAL)
    assert automated["status"] == "scheduled"  # an automation opened the conversation
    reply = world.send(MessageCategory.TRANSACTIONAL, origin=SendOrigin.AGENT)
    assert reply["status"] == "queued" and reply["send_at"] is None


def test_a_stop_while_a_message_waits_stops_that_message(world: World) -> None:
    world.clock[0] = datetime(2026, 6, 2, 2, 0, tzinfo=UTC).timestamp()
    queued = world.send(MessageCategory.TRANSACTIONAL)
    world.inbound("STOP")
    world.clock[0] = datetime(2026, 6, 2, 12, 0, tzinfo=UTC).timestamp()
    bodies = world.deliver_due()
    assert "Hello" not in bodies
    ended = world.outbox.get(queued["id"])
    assert ended is not None and ended.status is MessageStatus.FAILED
    assert ended.failure is not None and ended.failure.category is FailureCategory.OPTED_OUT


def test_a_21610_refusal_marks_the_number_opted_out(world: World) -> None:
    world.send(MessageCategory.TRANSACTIONAL)
    world.provider.refuse_next.append(21610)
    world.deliver_due()
    held = world.ledger.current(ALICE, "cfg-a")
    assert {c.status for c in held.values()} == {ConsentStatus.OPTED_OUT}
    assert {c.method for c in held.values()} == {ConsentMethod.PROVIDER}
    assert world.refusal(MessageCategory.TRANSACTIONAL) == "consent_opted_out"


# -- requests ---------------------------------------------------------------------------------


def test_requests_with_bad_input_write_nothing(world: World) -> None:
    with pytest.raises(InvalidInputError):
        world.consent.request_opt_in("12", "cfg-a", MessageCategory.COMMERCIAL, "form")
    with pytest.raises(UnprocessableError) as caught:
        world.consent.request_opt_in(ALICE, "nope", MessageCategory.COMMERCIAL, "form")
    assert caught.value.code == "unknown_configuration"
    assert world.ledger.history(ALICE) == [] and world.automatic_bodies() == []


def test_an_opt_out_from_another_channel_and_the_status_view(world: World) -> None:
    view = world.consent.record_opt_out(
        "(415) 555-0123", "cfg-a", MessageCategory.COMMERCIAL, "call centre"
    )
    assert view["phone"] == ALICE
    assert [(c["purpose"], c["status"]) for c in view["consents"]] == [("commercial", "opted_out")]
    assert view["history"][0]["evidence"]["source"] == "call centre"
    assert world.send(MessageCategory.TRANSACTIONAL)["status"] == "queued"
    assert world.refusal(MessageCategory.COMMERCIAL) == "consent_opted_out"
