"""Outbound messages as the core sees them (pure, no I/O).

An :class:`OutboundMessage` is one text the connector was asked to send: who to, from which
configuration, what (already rendered), regarding which record, in which conversation session,
and how far it got. Its status only moves forward (:func:`connector.domain.status.supersedes`);
:meth:`OutboundMessage.with_status` applies one piece of news and says whether it changed
anything, so repeated and out-of-order callbacks are harmless.

A failure carries the provider's code, a :class:`~connector.domain.status.FailureCategory`
and a plain reason with what to do, e.g. Twilio 21211: "The number is not a valid phone
number. Store it in E.164, e.g. +14155550123."
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from connector.domain.model import MessageCategory
from connector.domain.segments import Encoding
from connector.domain.status import FailureCategory, MessageStatus, supersedes

MAX_BODY_CHARACTERS = 1600
MAX_MEDIA_URLS = 10


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a message did not reach the handset."""

    category: FailureCategory
    reason: str
    code: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready."""
        return {"category": self.category.value, "reason": self.reason, "code": self.code}


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to send (or sent), as the outbox and Dataverse hold it.

    ``id`` is the connector's own id: the ``smsc_message`` activity id and the key of the
    status callback URL. Times are epoch seconds. ``automatic`` marks a reply the connector
    sent by itself (a keyword's confirmation, a double opt-in request), kept out of the
    conversation's view; ``created_in_crm`` a message whose row was created in Dataverse (by
    a flow or workflow): its row keeps the subject and owner it was given.
    """

    id: str
    configuration_id: str
    to_number: str
    from_number: str | None
    body: str
    session_id: str
    created_at: float
    category: MessageCategory = MessageCategory.TRANSACTIONAL
    messaging_service_id: str | None = None
    template_id: str | None = None
    regarding_table: str | None = None
    regarding_id: str | None = None
    media_urls: tuple[str, ...] = ()
    send_at: float | None = None
    segments: int = 0
    encoding: Encoding = Encoding.GSM7
    ucs2_characters: tuple[str, ...] = ()
    owner_id: str | None = None
    owner_is_team: bool = False
    sender_user: str | None = None
    """The message's From party: the sending user, or the configuration's owner."""
    automatic: bool = False
    created_in_crm: bool = False
    status: MessageStatus = MessageStatus.QUEUED
    provider_id: str | None = None
    failure: Failure | None = None
    sent_at: float | None = None
    delivered_at: float | None = None
    updated_at: float = 0.0

    def with_status(
        self,
        status: MessageStatus,
        at: float,
        *,
        provider_id: str | None = None,
        failure: Failure | None = None,
    ) -> OutboundMessage | None:
        """The message after ``status`` arrived at ``at``; None when it is stale news.

        A provider id is kept once known (the first one wins). ``sent_at`` is set by the
        first status at or past ``sent``, ``delivered_at`` by ``delivered``.
        """
        known_id = self.provider_id or provider_id
        if not supersedes(self.status, status):
            if known_id != self.provider_id:
                return replace(self, provider_id=known_id, updated_at=at)
            return None
        sent_at = self.sent_at
        if sent_at is None and status in _SENT_OR_LATER:
            sent_at = at
        delivered_at = self.delivered_at
        if status is MessageStatus.DELIVERED and delivered_at is None:
            delivered_at = at
        return replace(
            self,
            status=status,
            provider_id=known_id,
            failure=failure if failure is not None else self.failure,
            sent_at=sent_at,
            delivered_at=delivered_at,
            updated_at=at,
        )


_SENT_OR_LATER = frozenset(
    {
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.READ,
    }
)
