"""Consent: ``POST /api/v1/consent/opt-in`` (double opt-in), ``POST /api/v1/consent/opt-out``,
``GET /api/v1/consent?phone=``.

API key required. An opt-in request records *pending* and sends the confirmation asking for
YES (not again while one is pending, not at all when already opted in); the YES reply makes it
*opted in* within the configuration's expiry. An opt-out records a refusal given elsewhere (a
call, a form) for one purpose or, without ``purpose``, for all. The status lists the current
state per sender and purpose and every change with its evidence. An ``Idempotency-Key``
header makes a retried request record its change once. Bad input (malformed phone, unknown
purpose or configuration) is problem+json and writes nothing.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, ConfigDict, Field

from connector.api.deps import ConsentDep, require_api_key
from connector.domain.consent import ConsentMethod
from connector.domain.model import MessageCategory

Purpose = Literal["transactional", "commercial"]
Method = Literal["api", "form", "import", "administrator"]


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


router = APIRouter(tags=["consent"], dependencies=[Depends(require_api_key)])


@router.post(
    "/api/v1/consent/opt-in",
    status_code=202,
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
) -> dict[str, Any]:
    """Pending until the person replies YES; the confirmation is sent once."""
    return consent.request_opt_in(
        body.phone,
        str(body.configuration_id),
        MessageCategory(body.purpose),
        body.source,
        method=ConsentMethod(body.method),
        request_key=idempotency_key,
        expires_in_minutes=body.expires_in_minutes,
    )


@router.post(
    "/api/v1/consent/opt-out",
    operation_id="recordOptOut",
    summary="Record an opt-out",
    responses={400: {"description": "Malformed phone number"}, 422: {"description": "Unknown"}},
)
def record_opt_out(
    body: OptOutBody,
    consent: ConsentDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """The number is opted out (of one purpose, or all) for that sender at once."""
    return consent.record_opt_out(
        body.phone,
        str(body.configuration_id),
        MessageCategory(body.purpose) if body.purpose else None,
        body.source,
        method=ConsentMethod(body.method),
        request_key=idempotency_key,
    )


@router.get("/api/v1/consent", operation_id="getConsent", summary="Get a number's consent")
def get_consent(
    consent: ConsentDep, phone: Annotated[str, Query(min_length=1, max_length=64)]
) -> dict[str, Any]:
    """The state per sender and purpose, and every change with its evidence."""
    return consent.status(phone)
