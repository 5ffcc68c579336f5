"""Subscriptions: webhook triggers for Power Automate and event callbacks for other systems.

API key required. ``POST /api/v1/subscriptions`` registers a callback URL for one event
(``sms.received``, optionally for one configuration, or ``message.status_changed``) and
answers ``201`` with a ``Location`` header; ``DELETE`` on that location unsubscribes. The two
trigger routes (``/api/v1/subscriptions/sms-received`` and ``.../status-changed``) are the same
with the event fixed by the path: Power Automate's "When an SMS is received" and "When a
message's status changes" call them when a flow is turned on. Each delivery is a POST of the
event's JSON, signed with the subscription's secret (returned once, in the ``201`` answer):
``X-Connector-Signature: sha256=HMAC-SHA256(secret, X-Connector-Timestamp + "." + body)``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from connector.api.deps import require_connector_key, services
from connector.api.problems import NotEnabledError
from connector.domain.events import EventType as Kind
from connector.domain.events import Subscription
from connector.services.events import MAX_URL_LENGTH, EventService

EventName = Literal["sms.received", "message.status_changed"]
CALLBACK: JsonDict = {"x-ms-notification-url": True, "x-ms-visibility": "internal"}
CONFIGURATION_VALUES: JsonDict = {
    "x-ms-dynamic-values": {
        "operationId": "listConfigurations",
        "value-collection": "value",
        "value-path": "id",
        "value-title": "name",
    }
}


class SubscribeBody(BaseModel):
    """A callback URL for one event."""

    model_config = ConfigDict(extra="forbid")

    event: EventName = Field(title="Event")
    callback_url: str = Field(
        min_length=8, max_length=MAX_URL_LENGTH, title="Callback URL", pattern=r"^https?://"
    )
    configuration_id: uuid.UUID | None = Field(
        default=None,
        title="Sender configuration",
        description="Only this configuration's events (default: every configuration)",
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        title="Secret",
        description="Signs each delivery; default: one is made and returned",
    )


class TriggerBody(BaseModel):
    """What Power Automate sends when a flow with the trigger is turned on."""

    model_config = ConfigDict(extra="forbid")

    callback_url: str = Field(
        min_length=8,
        max_length=MAX_URL_LENGTH,
        title="Callback URL",
        pattern=r"^https?://",
        description="Where events are posted (filled in by Power Automate)",
        json_schema_extra=CALLBACK,
    )
    configuration_id: uuid.UUID | None = Field(
        default=None,
        title="Sender configuration",
        description="Only this sender's messages (default: every sender)",
        json_schema_extra=CONFIGURATION_VALUES,
    )


class SubscriptionView(BaseModel):
    """A stored subscription (the secret is shown once, here)."""

    id: str = Field(title="Subscription ID")
    event: EventName = Field(title="Event")
    configuration_id: str | None = Field(title="Sender configuration")
    secret: str = Field(title="Secret", description="Signs each delivery")


class Regarding(BaseModel):
    """The CRM record a message is about."""

    table: str = Field(title="Table")
    id: str = Field(title="Record ID")


class FailureInfo(BaseModel):
    """Why a message did not arrive."""

    category: str = Field(title="Failure category")
    reason: str = Field(title="Failure reason")
    code: str | None = Field(title="Provider error code")


class ReceivedData(BaseModel):
    """A customer's message, as written to Dataverse."""

    message_id: str = Field(title="Message ID")
    provider_message_id: str = Field(title="Provider message ID")
    from_: str = Field(alias="from", title="From")
    to: str = Field(title="To")
    body: str = Field(title="Message")
    media_count: int = Field(title="Attachments")
    received_at: str = Field(title="Received")
    configuration_id: str = Field(title="Sender configuration")
    session_id: str = Field(title="Conversation ID")
    regarding: Regarding | None = Field(title="Regarding")
    keyword: str | None = Field(title="Keyword")
    blocked: bool = Field(title="Blocked")


class StatusData(BaseModel):
    """An outbound message's new status."""

    message_id: str = Field(title="Message ID")
    status: str = Field(title="Status")
    to: str = Field(title="To")
    from_: str | None = Field(alias="from", title="From")
    configuration_id: str = Field(title="Sender configuration")
    session_id: str = Field(title="Conversation ID")
    regarding: Regarding | None = Field(title="Regarding")
    provider_message_id: str | None = Field(title="Provider message ID")
    failure: FailureInfo | None = Field(title="Failure")


class ReceivedEvent(BaseModel):
    """The body of an ``sms.received`` delivery."""

    id: str = Field(title="Event ID", description="The same on a repeated delivery")
    type: Literal["sms.received"] = Field(title="Event type")
    occurred_at: str = Field(title="Occurred")
    data: ReceivedData = Field(title="Message")


class StatusEvent(BaseModel):
    """The body of a ``message.status_changed`` delivery."""

    id: str = Field(title="Event ID", description="The same on a repeated delivery")
    type: Literal["message.status_changed"] = Field(title="Event type")
    occurred_at: str = Field(title="Occurred")
    data: StatusData = Field(title="Message")


async def event_service(request: Request) -> EventService:
    """Subscriptions and events."""
    wired = (await services(request)).events
    if wired is None:
        raise NotEnabledError("subscriptions are not enabled in this process")
    return wired


EventsDep = Annotated[EventService, Depends(event_service)]
router = APIRouter(tags=["subscriptions"], dependencies=[Depends(require_connector_key)])
CREATED = {
    "description": "Subscribed",
    "headers": {"Location": {"description": "The subscription (DELETE it to unsubscribe)"}},
}


def _created(request: Request, subscription: Subscription) -> JSONResponse:
    view = SubscriptionView(
        id=subscription.id,
        event=subscription.event,
        configuration_id=subscription.configuration_id,
        secret=subscription.secret,
    )
    location = str(request.url_for("delete_subscription", subscription_id=subscription.id))
    return JSONResponse(view.model_dump(), status_code=201, headers={"Location": location})


def _configuration(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


@router.post(
    "/api/v1/subscriptions",
    status_code=201,
    response_model=SubscriptionView,
    operation_id="createSubscription",
    summary="Subscribe to events",
    responses={201: CREATED},
)
def create_subscription(body: SubscribeBody, request: Request, events: EventsDep) -> Any:
    """Register a callback URL for one event; every matching event is posted to it."""
    subscription = events.subscribe(
        Kind(body.event),
        body.callback_url,
        configuration_id=_configuration(body.configuration_id),
        secret=body.secret,
    )
    return _created(request, subscription)


@router.post(
    "/api/v1/subscriptions/sms-received",
    status_code=201,
    response_model=SubscriptionView,
    operation_id="whenSmsReceived",
    summary="When an SMS is received",
    responses={201: CREATED},
)
def when_sms_received(body: TriggerBody, request: Request, events: EventsDep) -> Any:
    """Triggers when a customer's text has been written to Dataverse, with its record and
    conversation."""
    subscription = events.subscribe(
        Kind.SMS_RECEIVED, body.callback_url, configuration_id=_configuration(body.configuration_id)
    )
    return _created(request, subscription)


@router.post(
    "/api/v1/subscriptions/status-changed",
    status_code=201,
    response_model=SubscriptionView,
    operation_id="whenStatusChanges",
    summary="When a message's status changes",
    responses={201: CREATED},
)
def when_status_changes(body: TriggerBody, request: Request, events: EventsDep) -> Any:
    """Triggers when a sent message moves on: sent, delivered, undelivered or failed."""
    subscription = events.subscribe(
        Kind.STATUS_CHANGED,
        body.callback_url,
        configuration_id=_configuration(body.configuration_id),
    )
    return _created(request, subscription)


@router.delete(
    "/api/v1/subscriptions/{subscription_id}",
    status_code=204,
    operation_id="deleteSubscription",
    summary="Unsubscribe",
    response_class=Response,
    responses={404: {"description": "No such subscription"}},
)
def delete_subscription(
    subscription_id: Annotated[uuid.UUID, Path(title="Subscription ID")], events: EventsDep
) -> Response:
    """Stop posting events to the subscription's callback URL."""
    events.unsubscribe(str(subscription_id))
    return Response(status_code=204)


NOTIFICATIONS: dict[str, type[BaseModel]] = {
    "whenSmsReceived": ReceivedEvent,
    "whenStatusChanges": StatusEvent,
}
"""What each trigger's callback receives (the Power Automate export's notification content)."""
