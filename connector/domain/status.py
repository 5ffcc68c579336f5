"""One message-status vocabulary for every provider, its rank, and the failure categories.

Pure code (no I/O, no SDK). Providers report statuses in their own words and send callbacks
out of order and more than once; the connector keeps one status per message that **never
goes backwards**::

    accepted | scheduled  <  queued  <  sending  <  sent  <  delivered | undelivered | failed
                                                                 |
                                                               read        (after delivered)

``canceled`` ends a message that was not sent yet. Among the final statuses the first one
recorded stays: a ``failed`` after ``delivered`` is a provider glitch, not news. ``read``
only follows ``delivered``-class statuses (WhatsApp/RCS read receipts).

Every provider error maps to a :class:`FailureCategory` (what kind of problem, shown to
users) plus whether it is transient (worth trying again later); see :class:`FailureInfo`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MessageStatus(StrEnum):
    """Provider-independent delivery status of one outbound message."""

    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    READ = "read"
    CANCELED = "canceled"
    RECEIVED = "received"


_RANK: dict[MessageStatus, int] = {
    MessageStatus.ACCEPTED: 0,
    MessageStatus.SCHEDULED: 0,
    MessageStatus.QUEUED: 1,
    MessageStatus.SENDING: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.UNDELIVERED: 4,
    MessageStatus.FAILED: 4,
    MessageStatus.CANCELED: 4,
    MessageStatus.READ: 5,
    MessageStatus.RECEIVED: 4,
}

FINAL_STATUSES = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.CANCELED,
        MessageStatus.READ,
        MessageStatus.RECEIVED,
    }
)
FAILED_STATUSES = frozenset({MessageStatus.UNDELIVERED, MessageStatus.FAILED})
_NEVER_READ = FAILED_STATUSES | {MessageStatus.CANCELED, MessageStatus.READ}

# Provider words that are not our own word. Twilio's ``partially_delivered`` has no
# documented meaning yet: it is recorded as ``sent`` (carrier took it, no full confirmation)
# rather than claiming a delivery. ``receiving`` is an inbound state.
_ALIASES: dict[str, MessageStatus] = {
    "partially_delivered": MessageStatus.SENT,
    "receiving": MessageStatus.RECEIVED,
    "cancelled": MessageStatus.CANCELED,
}


def rank(status: MessageStatus) -> int:
    """Position of ``status`` in the order statuses may follow each other."""
    return _RANK[status]


def parse_status(raw: str) -> MessageStatus:
    """The status a provider word names; ``ValueError`` for a word not on the list."""
    word = raw.strip().lower()
    if word in _ALIASES:
        return _ALIASES[word]
    try:
        return MessageStatus(word)
    except ValueError:
        raise ValueError(f"unknown message status {raw!r}") from None


def supersedes(current: MessageStatus | None, incoming: MessageStatus) -> bool:
    """Whether ``incoming`` should replace ``current`` (False for stale or duplicate news)."""
    if current is None:
        return True
    if incoming is MessageStatus.READ:
        return current not in _NEVER_READ
    if current in FINAL_STATUSES:
        return False
    return rank(incoming) > rank(current)


def advance(current: MessageStatus | None, incoming: MessageStatus) -> MessageStatus:
    """The status to keep after ``incoming`` arrives: never earlier than ``current``."""
    if supersedes(current, incoming):
        return incoming
    assert current is not None  # supersedes() is True for a message with no status yet
    return current


class FailureCategory(StrEnum):
    """What kind of problem stopped a message; provider-neutral, shown to users."""

    INVALID_RECIPIENT = "invalid_recipient"
    OPTED_OUT = "opted_out"
    CONSENT_MISSING = "consent_missing"
    INVALID_PARAMETERS = "invalid_parameters"
    CONFIGURATION = "configuration"
    THROTTLED = "throttled"
    CARRIER_FILTERED = "carrier_filtered"
    UNREACHABLE = "unreachable"
    FRAUD_BLOCKED = "fraud_blocked"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class FailureInfo:
    """A provider failure explained: its category, whether to try again, and for people
    a plain-language ``reason`` and ``action`` (what to do about it)."""

    category: FailureCategory
    transient: bool
    reason: str
    action: str

    @property
    def retry_class(self) -> str:
        """``opted_out``, ``transient`` or ``permanent``: how the send path treats it."""
        if self.category is FailureCategory.OPTED_OUT:
            return "opted_out"
        return "transient" if self.transient else "permanent"
