"""Sending: ``POST /api/v1/messages``, ``GET /api/v1/messages/{id}``, template previews.

API key required. A send answers ``202`` once the message is durably in the outbox, with its
id, status ``queued``, segment count, encoding and the characters that forced UCS-2. The
``Idempotency-Key`` header makes a retried request safe: the same key and body give the same
answer and send once; the same key with another body is ``422 idempotency_conflict``. Bad
input is problem+json with a stable code and changes nothing.

A send that needs no Dataverse read (no template, no regarding record, the configurations in
memory) runs on the event loop and awaits the outbox's group commit: no thread is held while
the commit is flushed, and no thread hop (each a wait for the GIL under load) is paid. Any
other send runs in the thread pool.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from connector.api.deps import OutboxDep, SenderDep, require_connector_key
from connector.domain.model import MessageCategory
from connector.domain.outbound import MAX_MEDIA_URLS, OutboundMessage
from connector.domain.routing import RecordRef
from connector.services.outbound import SendOrder, SendOrigin, not_found

TABLE_NAME = r"^[a-z][a-z0-9_]{0,63}$"


class Regarding(BaseModel):
    """A CRM record: its table's logical name and its id."""

    table: str = Field(pattern=TABLE_NAME, examples=["contact"])
    id: uuid.UUID

    def ref(self) -> RecordRef:
        """As the core names a record."""
        return RecordRef(self.table, str(self.id))


class SendBody(BaseModel):
    """One message to send."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    to: str | None = Field(default=None, max_length=64, description="Recipient (E.164 best)")
    body: str | None = Field(default=None, max_length=20000)
    from_number: str | None = Field(default=None, alias="from", max_length=64)
    configuration_id: uuid.UUID | None = None
    regarding: Regarding | None = None
    template_id: uuid.UUID | None = None
    category: Literal["transactional", "commercial"] | None = None
    media_urls: list[Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=list, max_length=MAX_MEDIA_URLS
    )
    send_at: datetime | None = None
    origin: Literal["automation", "agent"] = Field(
        default="automation",
        description="'agent' when a person writes the message: a transactional reply in an "
        "open conversation is then not held for the sender's quiet hours",
    )

    def order(self) -> SendOrder:
        """The send order this body asks for."""
        send_at = None
        if self.send_at is not None:
            when = self.send_at if self.send_at.tzinfo else self.send_at.replace(tzinfo=UTC)
            send_at = when.timestamp()
        return SendOrder(
            body=self.body,
            to=self.to,
            from_number=self.from_number,
            configuration_id=str(self.configuration_id) if self.configuration_id else None,
            regarding=self.regarding.ref() if self.regarding else None,
            template_id=str(self.template_id) if self.template_id else None,
            category=MessageCategory(self.category) if self.category else None,
            media_urls=tuple(self.media_urls),
            send_at=send_at,
            origin=SendOrigin(self.origin),
        )


class QueuedMessage(BaseModel):
    """The answer to a send."""

    id: str
    status: str
    to: str
    from_: str | None = Field(default=None, alias="from")
    configuration_id: str
    session_id: str
    segments: int
    encoding: str
    ucs2_characters: list[str]
    send_at: float | None = None


class FailureView(BaseModel):
    """Why a message did not arrive."""

    category: str
    reason: str
    code: str | None


class MessageView(BaseModel):
    """A message as it stands."""

    id: str
    status: str
    to: str
    from_: str | None = Field(alias="from")
    configuration_id: str
    session_id: str
    regarding: str | None
    template_id: str | None
    category: str
    body: str
    segments: int
    encoding: str
    provider_id: str | None
    failure: FailureView | None
    waiting_reason: str | None = Field(
        default=None, description="Why a queued message is still waiting (a transient error)"
    )
    send_at: str | None = Field(
        default=None, description="When a scheduled message goes out (a send time, quiet hours)"
    )
    automatic: bool = Field(default=False, description="Sent by the connector itself")
    created_at: str
    sent_at: str | None
    delivered_at: str | None
    updated_at: str

    @classmethod
    def of(cls, message: OutboundMessage, waiting: str | None) -> MessageView:
        """The view of ``message``."""
        regarding = None
        if message.regarding_table and message.regarding_id:
            regarding = f"{message.regarding_table}:{message.regarding_id}"
        failure = None
        if message.failure is not None:
            failure = FailureView(
                category=message.failure.category.value,
                reason=message.failure.reason,
                code=message.failure.code,
            )
        return cls.model_validate(
            {
                "id": message.id,
                "status": message.status.value,
                "to": message.to_number,
                "from": message.from_number or message.messaging_service_id,
                "configuration_id": message.configuration_id,
                "session_id": message.session_id,
                "regarding": regarding,
                "template_id": message.template_id,
                "category": message.category.value,
                "body": message.body,
                "segments": message.segments,
                "encoding": message.encoding.value,
                "provider_id": message.provider_id,
                "failure": failure,
                "waiting_reason": waiting,
                "send_at": _iso(message.send_at),
                "automatic": message.automatic,
                "created_at": _iso(message.created_at),
                "sent_at": _iso(message.sent_at),
                "delivered_at": _iso(message.delivered_at),
                "updated_at": _iso(message.updated_at or message.created_at),
            }
        )


class PreviewBody(BaseModel):
    """What to render a template against."""

    model_config = ConfigDict(extra="forbid")

    regarding: Regarding | None = None
    configuration_id: uuid.UUID | None = None


class PreviewView(BaseModel):
    """A rendered template: the text and what it costs to send."""

    body: str
    characters: int
    segments: int
    encoding: str
    ucs2_characters: list[str]
    ucs2_character_names: list[str]


def _iso(seconds: float | None) -> Any:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


router = APIRouter(tags=["messages"], dependencies=[Depends(require_connector_key)])


@router.post(
    "/api/v1/messages",
    status_code=202,
    response_model=QueuedMessage,
    operation_id="sendMessage",
    summary="Send an SMS",
    responses={
        400: {"description": "Bad input (number, body, media)"},
        409: {
            "description": "Refused: number_blocked, consent_opted_out, consent_missing, "
            "compliance_blocked"
        },
        422: {"description": "Unknown sender or template, ambiguous sender, missing value"},
    },
)
async def send_message(
    body: SendBody,
    sender: SenderDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Queue one message; it is sent at the sender's rate and its status follows."""
    order = body.order()
    if sender.answers_locally(order):
        answer = await sender.send_async(order, idempotency_key=idempotency_key)
    else:
        send = partial(sender.send, order, idempotency_key=idempotency_key)
        answer = await run_in_threadpool(send)
    return JSONResponse(answer, status_code=202)


@router.get(
    "/api/v1/messages/{message_id}",
    response_model=MessageView,
    operation_id="getMessage",
    summary="Get a message's status",
)
def get_message(message_id: uuid.UUID, outbox: OutboxDep) -> MessageView:
    """Status, failure category and plain reason, provider id and times of a sent message."""
    message = outbox.get(str(message_id))
    if message is None:
        raise not_found(str(message_id))
    return MessageView.of(message, outbox.last_error(str(message_id)))


@router.post(
    "/api/v1/templates/{template_id}/preview",
    response_model=PreviewView,
    operation_id="previewTemplate",
    summary="Preview a template",
)
def preview_template(template_id: uuid.UUID, body: PreviewBody, sender: SenderDep) -> PreviewView:
    """The template rendered against a record: text, segments, encoding, UCS-2 culprits."""
    rendered = sender.preview(
        str(template_id),
        body.regarding.ref() if body.regarding else None,
        str(body.configuration_id) if body.configuration_id else None,
    )
    return PreviewView.model_validate(rendered.to_dict())
