"""Consent: ``POST /api/v1/consent/opt-in`` (double opt-in), ``POST /api/v1/consent/opt-out``,
``GET /api/v1/consent?phone=``.

API key required. An opt-in request records *pending* and sends the confirmation asking for
YES (not again while one is pending, not at all when already opted in); the YES reply makes it
*opted in* within the configuration's expiry. An opt-out records a refusal given elsewhere (a
call, a form) for one purpose or, without ``purpose``, for all. The status lists the current
state per sender and purpose and every change with its evidence. An ``Idempotency-Key``
header makes a retried request record its change once. Bad input (malformed phone, unknown
purpose or configuration) is problem+json and writes nothing.

The answers are declared (:class:`ConsentStatusView`, :class:`OptInView`), so
``/openapi.json`` and the Power Automate connector describe them field by field; the service
builds them as plain dicts (:mod:`connector.services.consent`) and the routes validate them.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, ConfigDict, Field

from connector.api.deps import ConsentDep, require_connector_key
from connector.domain.consent import ConsentMethod
from connector.domain.model import MessageCategory

Purpose = Literal["transactional", "commercial"]
Method = Literal["api", "form", "import", "administrator"]
"""How a caller of the API says a change came about."""
AnyMethod = Literal["keyword", "api", "form", "import", "administrator", "provider"]
"""How any change came about (keywords and provider refusals too)."""
Status = Literal["opted_in", "opted_out", "pending"]


class OptInBody(BaseModel):
    """Ask a number to confirm it wants messages from one sender for one purpose."""

    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=1, max_length=64, examples=["+14155550123"])
    configuration_id: uuid.UUID
    purpose: Purpose = "commercial"
    source: str = Field(
        min_length=1, max_length=200, description="Where the request came from (a form's URL)"
    )
    method: Method = "api"
    expires_in_minutes: int | None = Field(
        default=None,
        ge=1,
        le=525600,
        description="How long the YES may take; default: the configuration's opt-in expiry",
    )


class OptOutBody(BaseModel):
    """Record an opt-out given through another channel."""

    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=1, max_length=64)
    configuration_id: uuid.UUID
    purpose: Purpose | None = Field(default=None, description="Leave out for every purpose")
    source: str = Field(min_length=1, max_length=200)
    method: Method = "api"


class EvidenceView(BaseModel):
    """What shows a change was asked for."""

    at: float = Field(title="At", description="When the change was asked for (Unix seconds)")
    source: str = Field(title="Source", description="Where it came from (a form, a call...)")
    message_id: str | None = Field(
        default=None, title="Message ID", description="The SMS that asked for it, if one did"
    )
    text: str | None = Field(default=None, title="Text", description="What was said or sent")


class ConsentView(BaseModel):
    """Where a number stands with one sender for one purpose."""

    configuration_id: str = Field(title="Sender configuration")
    purpose: Purpose = Field(title="Purpose")
    status: Status = Field(title="Consent status")
    expired: bool = Field(
        title="Expired", description="A pending request whose time for a YES has passed"
    )
    method: AnyMethod = Field(title="Method", description="How the change came about")
    since: float = Field(title="Since", description="When it took effect (Unix seconds)")
    expires_at: float | None = Field(
        default=None, title="Expires at", description="Until when a YES counts (pending only)"
    )
    evidence: EvidenceView = Field(title="Evidence")


class ConsentChangeView(BaseModel):
    """One change in a number's consent history."""

    id: str = Field(title="Change ID")
    configuration_id: str = Field(title="Sender configuration")
    purpose: Purpose = Field(title="Purpose")
    status: Status = Field(title="Consent status")
    method: AnyMethod = Field(title="Method", description="How the change came about")
    expires_at: float | None = Field(
        default=None, title="Expires at", description="Until when a YES counts (pending only)"
    )
    evidence: EvidenceView = Field(title="Evidence")


class ConsentStatusView(BaseModel):
    """A number's consent with every sender and purpose, and its whole history."""

    phone: str = Field(title="Phone", description="The number in E.164")
    consents: list[ConsentView] = Field(title="Consents", description="The current states")
    history: list[ConsentChangeView] = Field(title="History", description="Every change")


class OptInView(ConsentView):
    """Where the number stands for the purpose asked about, after an opt-in request."""

    phone: str = Field(title="Phone", description="The number in E.164")
    confirmation_sent: bool = Field(
        title="Confirmation sent",
        description="Whether a message asking for YES went out (not when already opted in or "
        "a request is still pending)",
    )


router = APIRouter(tags=["consent"], dependencies=[Depends(require_connector_key)])


@router.post(
    "/api/v1/consent/opt-in",
    status_code=202,
    response_model=OptInView,
    operation_id="requestOptIn",
    summary="Ask for a double opt-in",
    responses={
        400: {"description": "Malformed phone number"},
        409: {"description": "The number is blocked for this sender"},
        422: {"description": "Unknown configuration or purpose"},
    },
)
def request_opt_in(
    body: OptInBody,
    consent: ConsentDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> OptInView:
    """Pending until the person replies YES; the confirmation is sent once."""
    state = consent.request_opt_in(
        body.phone,
        str(body.configuration_id),
        MessageCategory(body.purpose),
        body.source,
        method=ConsentMethod(body.method),
        request_key=idempotency_key,
        expires_in_minutes=body.expires_in_minutes,
    )
    return OptInView.model_validate(state)


@router.post(
    "/api/v1/consent/opt-out",
    response_model=ConsentStatusView,
    operation_id="recordOptOut",
    summary="Record an opt-out",
    responses={
        400: {"description": "Malformed phone number"},
        422: {"description": "Unknown configuration or purpose"},
    },
)
def record_opt_out(
    body: OptOutBody,
    consent: ConsentDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ConsentStatusView:
    """The number is opted out (of one purpose, or all) for that sender at once."""
    status = consent.record_opt_out(
        body.phone,
        str(body.configuration_id),
        MessageCategory(body.purpose) if body.purpose else None,
        body.source,
        method=ConsentMethod(body.method),
        request_key=idempotency_key,
    )
    return ConsentStatusView.model_validate(status)


@router.get(
    "/api/v1/consent",
    response_model=ConsentStatusView,
    operation_id="getConsent",
    summary="Get a number's consent",
    responses={400: {"description": "Malformed phone number"}},
)
def get_consent(
    consent: ConsentDep, phone: Annotated[str, Query(min_length=1, max_length=64)]
) -> ConsentStatusView:
    """The state per sender and purpose, and every change with its evidence."""
    return ConsentStatusView.model_validate(consent.status(phone))
