"""Subscriptions and the delivery of events to them (webhook triggers).

:class:`EventService` records subscriptions (``POST /api/v1/subscriptions``: Power Automate's
webhook triggers and other systems), turns what the worker did into events for every
matching subscription, and delivers them. Recording happens in the worker (after an inbound
message's Dataverse write, after a status change), never on a webhook's answer or in the
Dataverse write; delivery is a worker task of its own (:meth:`EventService.deliver_once`),
so a slow subscriber slows nobody else.

At least once, in order per conversation: a delivery row is deleted only after the
subscriber answered 2xx, and only the oldest pending delivery of a conversation is tried.
A 5xx, a 429 or no answer (timeout, refused connection) is retried with exponential backoff
honouring Retry-After, for 24 hours; after that, or on another 4xx, it is dropped with a
log line and a metric; 410 Gone drops it and removes the subscription.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from connector.domain.conversation import InboundWrite
from connector.domain.events import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Delivery,
    Event,
    EventType,
    PostAnswer,
    Subscription,
    Verdict,
    next_try,
    received_event,
    retry_after_seconds,
    signature,
    status_event,
    verdict,
)
from connector.domain.outbound import OutboundMessage
from connector.errors import InvalidInputError, NotFoundError
from connector.log_config import get_logger

log = get_logger(__name__)
_T = TypeVar("_T")

MAX_URL_LENGTH = 2000


class SubscriptionStore(Protocol):
    """Where subscriptions and pending deliveries live (``connector.state.subscriptions``)."""

    def add(self, subscription: Subscription) -> None: ...

    def get(self, subscription_id: str) -> Subscription | None: ...

    def remove(self, subscription_id: str) -> bool: ...

    def matching(self, event: str, configuration_id: str) -> list[Subscription]: ...

    def enqueue(self, pairs: Sequence[tuple[Event, Subscription]], now: float) -> int: ...

    def claim(
        self, limit: int, *, lease_seconds: float, now: float | None = None
    ) -> list[Delivery]: ...

    def delivered(self, delivery: Delivery) -> None: ...

    def retry(self, delivery: Delivery, due_at: float, error: str) -> None: ...

    def next_due(self) -> float | None: ...


class EventPoster(Protocol):
    """POSTs one delivery to a subscriber (``connector.event_hooks.http``)."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> PostAnswer: ...


@dataclass
class EventService:
    """Subscriptions, event recording and delivery (see the module docstring)."""

    store: SubscriptionStore
    poster: EventPoster
    nudge: Callable[[], None] = field(default=lambda: None)
    count: Callable[[str], None] = field(default=lambda _outcome: None)
    batch_size: int = 20
    lease_seconds: float = 60.0
    clock: Callable[[], float] = time.time
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))

    # -- subscriptions --------------------------------------------------------------------
    def subscribe(
        self,
        event: EventType,
        callback_url: str,
        *,
        configuration_id: str | None = None,
        secret: str | None = None,
    ) -> Subscription:
        """Store a subscription (a secret is made when none is given)."""
        if not callback_url.lower().startswith(("https://", "http://")):
            raise InvalidInputError(
                "the callback URL must be http or https", code="callback_url_invalid"
            )
        if len(callback_url) > MAX_URL_LENGTH:
            raise InvalidInputError("the callback URL is too long", code="callback_url_invalid")
        subscription = Subscription(
            id=self.new_id(),
            event=event.value,
            callback_url=callback_url,
            secret=secret or secrets.token_urlsafe(32),
            configuration_id=configuration_id,
            created_at=self.clock(),
        )
        self.store.add(subscription)
        log.info("events.subscribed", subscription_id=subscription.id, kind=event.value)
        return subscription

    def unsubscribe(self, subscription_id: str) -> None:
        """Remove a subscription and its pending deliveries."""
        if not self.store.remove(subscription_id):
            raise NotFoundError(
                f"no subscription {subscription_id}", details={"id": subscription_id}
            )
        log.info("events.unsubscribed", subscription_id=subscription_id)

    # -- recording ----------------------------------------------------------------------
    def received(self, writes: Iterable[InboundWrite]) -> None:
        """Record ``sms.received`` for messages written to Dataverse."""
        items = ((write.session.configuration_id, write) for write in writes)
        self._record(EventType.SMS_RECEIVED, items, received_event)

    def status_changed(self, messages: Iterable[OutboundMessage]) -> None:
        """Record ``message.status_changed`` for messages that moved forward."""
        items = ((message.configuration_id, message) for message in messages)
        self._record(EventType.STATUS_CHANGED, items, status_event)

    def _record(
        self, kind: EventType, items: Iterable[tuple[str, _T]], event_of: Callable[[_T], Event]
    ) -> None:
        """Store a delivery of each item's event for every subscription to ``kind`` for its
        configuration: the subscriptions are looked up once per configuration of the batch
        (a claimed batch of 50 messages of one configuration is one lookup, not 50), and an
        event is only built when someone subscribed to it."""
        matching: dict[str, list[Subscription]] = {}
        pairs: list[tuple[Event, Subscription]] = []
        for configuration_id, item in items:
            if configuration_id not in matching:
                matching[configuration_id] = self.store.matching(kind.value, configuration_id)
            if matching[configuration_id]:
                event = event_of(item)
                pairs.extend((event, sub) for sub in matching[configuration_id])
        if pairs and self.store.enqueue(pairs, self.clock()):
            self.nudge()

    # -- delivering -----------------------------------------------------------------------
    def deliver_once(self) -> float | None:
        """Try the due deliveries (each the oldest of its conversation); when the next one
        is due (epoch seconds), or None when none is pending."""
        claimed = self.store.claim(
            self.batch_size, lease_seconds=self.lease_seconds, now=self.clock()
        )
        for delivery in claimed:
            self._deliver(delivery)
        return self.store.next_due()

    def _deliver(self, delivery: Delivery) -> None:
        sub = delivery.subscription
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: delivery.event_id,
            EVENT_TYPE_HEADER: delivery.event_type,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(sub.secret, timestamp, delivery.body),
        }
        answer = self.poster.post(sub.callback_url, delivery.body, headers)
        outcome = verdict(answer.status)
        fields = {
            "subscription_id": sub.id,
            "event_id": delivery.event_id,
            "status": answer.status,
            "attempt": delivery.attempts + 1,
        }
        if outcome is Verdict.DELIVERED:
            self.store.delivered(delivery)
            self.count("delivered")
            return
        if outcome is Verdict.GONE:
            self.store.remove(sub.id)
            log.warning("events.subscriber_gone", **fields)
            self.count("gone")
            return
        if outcome is Verdict.RETRY:
            now = self.clock()
            wait = retry_after_seconds(answer.retry_after, now)
            at = next_try(delivery.attempts + 1, delivery.created_at, now, wait)
            if at is not None:
                error = answer.error or f"HTTP {answer.status}"
                self.store.retry(delivery, at, error)
                log.info("events.retry", delay=round(at - now, 1), **fields)
                self.count("retried")
                return
        self.store.delivered(delivery)  # dropped: nothing more will be tried
        log.warning("events.dropped", error=answer.error, **fields)
        self.count("dropped")
