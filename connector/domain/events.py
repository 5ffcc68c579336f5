"""Events for subscribers (Power Automate triggers, other systems), the pure part.

Two events: ``sms.received`` (a customer's message, once it is written to Dataverse) and
``message.status_changed`` (an outbound message moved forward). Each has an id derived from
what caused it, so the same message read again after a crash makes the same event and a
subscriber can drop a repeat. A delivery is signed: ``X-Connector-Signature`` is
``sha256=`` and the hex HMAC-SHA256, with the subscription's secret, of the
``X-Connector-Timestamp`` value, a dot and the body (:func:`signature`). What a delivery's
answer means (:func:`verdict`) and when to try again (:func:`next_try`) are decided here.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from connector.domain.conversation import InboundWrite, derived_id
from connector.domain.outbound import OutboundMessage

RETRY_WINDOW_SECONDS = 24 * 3600.0
"""How long a delivery is retried before it is dropped."""
FIRST_BACKOFF_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 3600.0
SIGNATURE_HEADER = "X-Connector-Signature"
TIMESTAMP_HEADER = "X-Connector-Timestamp"
EVENT_ID_HEADER = "X-Connector-Event-Id"
EVENT_TYPE_HEADER = "X-Connector-Event"


class EventType(enum.StrEnum):
    """What a subscription listens to."""

    SMS_RECEIVED = "sms.received"
    STATUS_CHANGED = "message.status_changed"


class Verdict(enum.StrEnum):
    """What a delivery attempt's answer means."""

    DELIVERED = "delivered"
    RETRY = "retry"
    DROP = "drop"
    GONE = "gone"
    """410: the subscriber is gone for good (its subscription is removed)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event: its id, type, the conversation it belongs to (deliveries keep its order)
    and the JSON body subscribers get."""

    id: str
    type: EventType
    conversation: str
    configuration_id: str
    body: dict[str, Any]

    def encoded(self) -> bytes:
        """The body as sent (compact JSON, UTF-8)."""
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode()


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


def received_event(write: InboundWrite) -> Event:
    """The ``sms.received`` event of a message written to Dataverse."""
    message = write.message
    event_id = derived_id("event", EventType.SMS_RECEIVED.value, write.message_id)
    regarding = None
    if write.regarding_table and write.regarding_id:
        regarding = {"table": write.regarding_table, "id": write.regarding_id}
    data = {
        "message_id": write.message_id,
        "provider_message_id": message.provider_id,
        "from": message.from_number,
        "to": message.to_number,
        "body": message.body,
        "media_count": len(message.media),
        "received_at": _iso(message.received_at),
        "configuration_id": write.session.configuration_id,
        "session_id": write.session.id,
        "regarding": regarding,
        "keyword": write.keyword,
        "blocked": write.blocked,
    }
    body = {
        "id": event_id,
        "type": EventType.SMS_RECEIVED.value,
        "occurred_at": _iso(message.received_at),
        "data": data,
    }
    return Event(
        event_id, EventType.SMS_RECEIVED, write.session.id, write.session.configuration_id, body
    )


def status_event(message: OutboundMessage) -> Event:
    """The ``message.status_changed`` event of a message that moved to its status."""
    status = message.status.value
    event_id = derived_id("event", EventType.STATUS_CHANGED.value, message.id, status)
    regarding = None
    if message.regarding_table and message.regarding_id:
        regarding = {"table": message.regarding_table, "id": message.regarding_id}
    failure = None
    if message.failure is not None:
        failure = {
            "category": message.failure.category.value,
            "reason": message.failure.reason,
            "code": message.failure.code,
        }
    data = {
        "message_id": message.id,
        "status": status,
        "to": message.to_number,
        "from": message.from_number,
        "configuration_id": message.configuration_id,
        "session_id": message.session_id,
        "regarding": regarding,
        "provider_message_id": message.provider_id,
        "failure": failure,
    }
    body = {
        "id": event_id,
        "type": EventType.STATUS_CHANGED.value,
        "occurred_at": _iso(message.updated_at or message.created_at),
        "data": data,
    }
    return Event(
        event_id, EventType.STATUS_CHANGED, message.session_id, message.configuration_id, body
    )


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Connector-Signature`` value of a delivery."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, presented: str) -> bool:
    """Whether ``presented`` is the signature of ``body`` (for subscribers and tests)."""
    return hmac.compare_digest(signature(secret, timestamp, body), presented)


def verdict(status: int | None) -> Verdict:
    """What an answer means (``None``: no answer, a timeout or a refused connection)."""
    if status is None or status == 429 or status >= 500:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 410:
        return Verdict.GONE
    return Verdict.DROP


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header as seconds from ``now`` (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def next_try(
    attempts: int, created_at: float, now: float, retry_after: float | None
) -> float | None:
    """When to try a failed delivery again (exponential backoff from 5 s, at most an hour,
    never sooner than ``Retry-After``), or None: the retry window is over, drop it.
    ``attempts`` counts the attempts made, the failed one included."""
    delay = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2.0 ** max(0, attempts - 1))
    delay = max(delay, retry_after or 0.0)
    at = now + delay
    if at - created_at > RETRY_WINDOW_SECONDS:
        return None
    return at


@dataclass(frozen=True, slots=True)
class Subscription:
    """One subscriber: event type, URL, secret, optional configuration filter."""

    id: str
    event: str
    callback_url: str
    secret: str
    configuration_id: str | None
    created_at: float

    def __repr__(self) -> str:  # the secret and the URL (it may carry a signature) stay out
        return f"Subscription(id={self.id!r}, event={self.event!r})"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A leased delivery: the event's id and body, where it goes, how often it was tried."""

    seq: int
    event_id: str
    event_type: str
    body: bytes
    created_at: float
    attempts: int
    token: str
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class PostAnswer:
    """What a subscriber answered: its HTTP status (None: no answer, with ``error``), and
    its ``Retry-After`` header."""

    status: int | None
    retry_after: str | None = None
    error: str | None = None
