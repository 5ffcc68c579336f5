"""Subscriptions and event deliveries: the real store on SQLite, a fake poster, a fake clock.

At least once and in order per conversation, signed, retried with backoff honouring
Retry-After for 24 hours, dropped after that or on another 4xx, and 410 removes the
subscription; an event recorded twice is delivered once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from connector.domain.conversation import InboundWrite, ReceivedMessage, SessionState
from connector.domain.events import (
    EventType,
    PostAnswer,
    Subscription,
    Verdict,
    next_try,
    retry_after_seconds,
    verdict,
    verify,
)
from connector.domain.outbound import OutboundMessage
from connector.domain.status import MessageStatus
from connector.errors import ConfigurationError, InvalidInputError, NotFoundError
from connector.secret_box import SecretBox
from connector.services.events import EventService
from connector.state.db import StateStore
from connector.state.subscriptions import Subscriptions, subscriptions_table
from connector.testing.event_poster import FakeEventPoster

KEYS = [Fernet.generate_key().decode()]


@dataclass
class Clock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    service: EventService
    poster: FakeEventPoster
    clock: Clock
    counted: list[str]
    store: StateStore

    def stored(self, subscription_id: str) -> tuple[str, str]:
        """The (callback_url, secret) columns of a subscription's row, as stored."""
        c = subscriptions_table.c
        with self.store.engine.connect() as conn:
            row = conn.execute(
                select(c.callback_url, c.secret).where(c.id == subscription_id)
            ).one()
        return str(row.callback_url), str(row.secret)

    def deliver(self) -> float | None:
        return self.service.deliver_once()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    poster, clock, counted = FakeEventPoster(), Clock(), list[str]()
    subscriptions = Subscriptions(store, SecretBox(KEYS))
    service = EventService(subscriptions, poster, count=counted.append, clock=clock)
    yield World(service, poster, clock, counted, store)
    store.close()


def inbound(provider_id: str, session: str = "s-1", configuration: str = "cfg-1") -> InboundWrite:
    state = SessionState(
        id=session, configuration_id=configuration, phone="+14155550123", started_at=0, expires_at=1
    )
    message = ReceivedMessage(
        provider_id, "AC1", "+14155550123", "+14155550100", f"text {provider_id}", 1.0
    )
    return InboundWrite(state, message, "contact", "c-1")


def outbound(status: MessageStatus) -> OutboundMessage:
    message = OutboundMessage(
        id="m-1",
        configuration_id="cfg-1",
        to_number="+14155550123",
        from_number="+14155550100",
        body="Hi",
        session_id="s-9",
        created_at=1.0,
    )
    return replace(message, status=status)


def test_a_received_message_reaches_its_subscriber_signed_with_record_and_session(
    world: World,
) -> None:
    sub = world.service.subscribe(EventType.SMS_RECEIVED, "https://flow.example/hook?sig=x")
    world.service.received([inbound("SM1")])
    world.service.received([inbound("SM1")])  # the same message told again: one event
    assert world.deliver() is None
    ((url, body, headers),) = world.poster.posts
    assert url == "https://flow.example/hook?sig=x"
    event = json.loads(body)
    assert event["type"] == "sms.received" and headers["X-Connector-Event-Id"] == event["id"]
    assert event["data"]["regarding"] == {"table": "contact", "id": "c-1"}
    assert event["data"]["session_id"] == "s-1" and event["data"]["body"] == "text SM1"
    assert verify(
        sub.secret, headers["X-Connector-Timestamp"], body, headers["X-Connector-Signature"]
    )
    assert world.counted == ["delivered"]


def test_the_configuration_filter_and_the_event_type_choose_the_subscribers(world: World) -> None:
    world.service.subscribe(EventType.SMS_RECEIVED, "https://a.example/", configuration_id="cfg-2")
    world.service.subscribe(EventType.STATUS_CHANGED, "https://b.example/")
    world.service.received([inbound("SM1", configuration="cfg-1")])
    world.service.received([inbound("SM2", configuration="cfg-2")])
    world.service.status_changed([outbound(MessageStatus.SENT)])
    world.deliver()
    sent = sorted((url, json.loads(body)["type"]) for url, body, _ in world.poster.posts)
    assert sent == [
        ("https://a.example/", "sms.received"),
        ("https://b.example/", "message.status_changed"),
    ]


def test_failures_are_retried_with_backoff_and_a_conversation_keeps_its_order(
    world: World,
) -> None:
    world.service.subscribe(EventType.SMS_RECEIVED, "https://flow.example/")
    world.poster.answers = [PostAnswer(500), PostAnswer(None, error="Timeout")]
    world.service.received([inbound("SM1"), inbound("SM2"), inbound("SM3", session="s-2")])
    due = world.deliver()
    # SM1 failed and waits; SM2 waits behind it; SM3 (another conversation) is tried anyway
    assert [json.loads(b)["data"]["provider_message_id"] for _, b, _ in world.poster.posts] == [
        "SM1",
        "SM3",
    ]
    assert due == world.clock.now + 5
    world.clock.now = due
    assert (world.deliver() or 0) <= world.clock.now  # SM1 went: SM2 is due at once
    world.deliver()
    order = [json.loads(b)["data"]["provider_message_id"] for _, b, _ in world.poster.posts]
    assert order == ["SM1", "SM3", "SM1", "SM3", "SM2"]
    assert world.counted.count("retried") == 2 and world.deliver() is None


def test_retry_after_is_honoured(world: World) -> None:
    world.service.subscribe(EventType.SMS_RECEIVED, "https://flow.example/")
    world.poster.answers = [PostAnswer(429, retry_after="120")]
    world.service.received([inbound("SM1")])
    assert world.deliver() == world.clock.now + 120


def test_a_delivery_is_dropped_after_24_hours_or_on_a_client_error(world: World) -> None:
    world.service.subscribe(EventType.SMS_RECEIVED, "https://flow.example/")
    world.poster.answers = [PostAnswer(503)] * 40
    world.service.received([inbound("SM1")])
    started = world.clock.now
    while (due := world.deliver()) is not None:
        world.clock.now = due
    assert world.clock.now - started <= 24 * 3600
    assert world.counted[-1] == "dropped"
    world.poster.answers = [PostAnswer(400)]
    world.service.received([inbound("SM2")])
    assert world.deliver() is None and world.counted[-1] == "dropped"


def test_410_gone_removes_the_subscription(world: World) -> None:
    sub = world.service.subscribe(EventType.SMS_RECEIVED, "https://flow.example/")
    world.poster.answers = [PostAnswer(410)]
    world.service.received([inbound("SM1"), inbound("SM2")])
    world.deliver()
    assert len(world.poster.posts) == 1 and world.counted == ["gone"]
    with pytest.raises(NotFoundError):
        world.service.unsubscribe(sub.id)


def test_after_unsubscribing_nothing_is_delivered(world: World) -> None:
    sub = world.service.subscribe(EventType.SMS_RECEIVED, "https://flow.example/")
    world.service.unsubscribe(sub.id)
    world.service.received([inbound("SM1")])
    assert world.deliver() is None and world.poster.posts == []


def test_secret_and_callback_url_are_stored_encrypted_and_deliveries_still_verify(
    world: World,
) -> None:
    url = "https://flow.example/hook?sig=flow-trigger-signature"
    secret = "a-subscriber-chosen-secret-0123"
    sub = world.service.subscribe(EventType.SMS_RECEIVED, url, secret=secret)
    stored_url, stored_secret = world.stored(sub.id)
    assert secret not in stored_secret and "flow-trigger-signature" not in stored_url
    assert SecretBox(KEYS).decrypt(stored_secret) == secret
    world.service.received([inbound("SM1")])
    assert world.deliver() is None
    ((posted_to, body, headers),) = world.poster.posts
    assert posted_to == url
    assert verify(secret, headers["X-Connector-Timestamp"], body, headers["X-Connector-Signature"])


def test_a_subscription_stored_in_the_clear_still_delivers_and_is_encrypted_on_read(
    world: World,
) -> None:
    sub = world.service.subscribe(EventType.SMS_RECEIVED, "https://flow.example/old")
    c = subscriptions_table.c
    with world.store.engine.begin() as conn:  # as the store wrote it before encryption
        conn.execute(
            update(subscriptions_table)
            .where(c.id == sub.id)
            .values(callback_url="https://flow.example/old", secret=sub.secret)
        )
    world.service.received([inbound("SM1")])
    world.deliver()
    ((posted_to, body, headers),) = world.poster.posts
    assert posted_to == "https://flow.example/old"
    assert verify(
        sub.secret, headers["X-Connector-Timestamp"], body, headers["X-Connector-Signature"]
    )
    stored_url, stored_secret = world.stored(sub.id)
    assert stored_secret != sub.secret and SecretBox(KEYS).decrypt(stored_secret) == sub.secret
    assert stored_url != "https://flow.example/old"


def test_without_secret_keys_no_subscription_is_stored() -> None:
    store = StateStore.from_url("sqlite://")
    service = EventService(Subscriptions(store, SecretBox([])), FakeEventPoster())
    with pytest.raises(ConfigurationError, match="CONNECTOR_SECRET_KEYS"):
        service.subscribe(EventType.SMS_RECEIVED, "https://flow.example/")
    service.received([inbound("SM1")])  # nobody subscribed: nothing to decrypt, no error
    store.close()


def test_a_callback_url_must_be_http() -> None:
    subscriptions = Subscriptions(StateStore.from_url("sqlite://"), SecretBox(KEYS))
    service = EventService(subscriptions, FakeEventPoster())
    with pytest.raises(InvalidInputError):
        service.subscribe(EventType.SMS_RECEIVED, "file:///etc/passwd")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (None, Verdict.RETRY),
        (429, Verdict.RETRY),
        (502, Verdict.RETRY),
        (410, Verdict.GONE),
        (404, Verdict.DROP),
        (301, Verdict.DROP),
    ],
)
def test_what_an_answer_means(status: int | None, expected: Verdict) -> None:
    assert verdict(status) is expected


def test_backoff_doubles_and_stops_after_a_day() -> None:
    assert next_try(1, 0.0, 0.0, None) == 5.0
    assert next_try(2, 0.0, 0.0, None) == 10.0
    assert next_try(20, 0.0, 0.0, None) == 3600.0
    assert next_try(1, 0.0, 0.0, 60.0) == 60.0
    assert next_try(3, 0.0, 24 * 3600.0, None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert retry_after_seconds("soon", 0.0) is None


class CountedSubscriptions(Subscriptions):
    """The real store, counting its subscriber lookups."""

    lookups = 0

    def matching(self, event: str, configuration_id: str) -> list[Subscription]:
        self.lookups += 1
        return super().matching(event, configuration_id)


def test_a_batch_looks_its_subscribers_up_once_per_configuration(world: World) -> None:
    store = CountedSubscriptions(world.store, SecretBox(KEYS))
    service = EventService(store, world.poster, clock=world.clock)
    service.subscribe(EventType.SMS_RECEIVED, "https://all.example/")
    service.subscribe(EventType.SMS_RECEIVED, "https://two.example/", configuration_id="cfg-2")
    batch = [
        inbound(f"SM{n}", session=f"s-{n}", configuration=f"cfg-{n % 2 + 1}") for n in range(6)
    ]
    service.received(batch)
    assert store.lookups == 2
    while service.deliver_once() is not None:
        pass
    sent = sorted(
        (url, json.loads(body)["data"]["session_id"]) for url, body, _ in world.poster.posts
    )
    odd = [("https://two.example/", f"s-{n}") for n in (1, 3, 5)]
    assert sent == sorted([("https://all.example/", f"s-{n}") for n in range(6)] + odd)


def test_a_subscription_added_between_batches_gets_the_next_batchs_events(world: World) -> None:
    world.service.subscribe(EventType.SMS_RECEIVED, "https://first.example/")
    world.service.received([inbound("SM1")])
    world.service.subscribe(EventType.SMS_RECEIVED, "https://second.example/")
    world.service.received([inbound("SM2")])
    while world.deliver() is not None:
        pass
    sent = sorted((url, json.loads(body)["data"]["body"]) for url, body, _ in world.poster.posts)
    assert sent == [
        ("https://first.example/", "text SM1"),
        ("https://first.example/", "text SM2"),
        ("https://second.example/", "text SM2"),
    ]
