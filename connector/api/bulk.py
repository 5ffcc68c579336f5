"""Bulk sends: ``POST /api/v1/messages/bulk`` and ``GET /api/v1/bulk/{id}``.

API key required. A bulk send names up to 10,000 recipients (numbers, or regarding records
whose phone columns give the number) and one body or template; it answers ``202`` with the
job id as soon as the job is stored, and the worker sends at the sender's rate. The job's
page shows progress, a count per outcome, the estimated finish and each recipient's outcome
(``queued``, ``sent``, ``delivered``, ``opted_out``, ``consent_missing``, ``blocked``,
``no_number``, ``invalid_number``, ``duplicate``, ``provider_error``; ``failed`` with a
``code`` for other refusals, ``pending`` until the recipient's turn).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from connector.api.deps import require_connector_key, services
from connector.api.messages import Regarding
from connector.api.problems import NotEnabledError
from connector.domain.bulk import MAX_RECIPIENTS, Recipient
from connector.domain.model import MessageCategory
from connector.services.bulk import BulkOrder, BulkService

Outcome = Literal[
    "pending",
    "queued",
    "sent",
    "delivered",
    "opted_out",
    "consent_missing",
    "blocked",
    "no_number",
    "invalid_number",
    "duplicate",
    "provider_error",
    "failed",
]


class BulkRecipient(BaseModel):
    """One recipient: a number, or a regarding record (its phone columns give the number)."""

    model_config = ConfigDict(extra="forbid")

    to: str | None = Field(
        default=None, max_length=64, title="To", description="Phone number (E.164 best)"
    )
    regarding: Regarding | None = Field(
        default=None, title="Regarding", description="A record whose phone number is used"
    )

    @model_validator(mode="after")
    def _one_of(self) -> BulkRecipient:
        if (self.to is None) == (self.regarding is None):
            raise ValueError("give either 'to' or 'regarding'")
        return self

    def recipient(self) -> Recipient:
        """As the core names it."""
        if self.regarding is not None:
            return Recipient(None, self.regarding.table, str(self.regarding.id))
        return Recipient(self.to)


class BulkBody(BaseModel):
    """One message to many: a body or a template, a sender, a category."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    recipients: list[BulkRecipient] = Field(
        min_length=1,
        max_length=MAX_RECIPIENTS,
        title="Recipients",
        description=f"Up to {MAX_RECIPIENTS:,} numbers or regarding records",
    )
    body: str | None = Field(default=None, max_length=1600, title="Message")
    template_id: uuid.UUID | None = Field(default=None, title="Template")
    from_number: str | None = Field(default=None, alias="from", max_length=64, title="From")
    configuration_id: uuid.UUID | None = Field(default=None, title="Sender configuration")
    category: Literal["transactional", "commercial"] | None = Field(
        default=None,
        title="Category",
        description="commercial needs each recipient's opt-in; default: the template's, "
        "else transactional",
    )

    def order(self) -> BulkOrder:
        """What every recipient gets."""
        return BulkOrder(
            body=self.body,
            template_id=str(self.template_id) if self.template_id else None,
            category=MessageCategory(self.category) if self.category else None,
            from_number=self.from_number,
            configuration_id=str(self.configuration_id) if self.configuration_id else None,
        )


class BulkAccepted(BaseModel):
    """A stored bulk job."""

    id: str = Field(title="Job ID")
    status: str = Field(title="Status")
    total: int = Field(title="Recipients")
    duplicates: int = Field(title="Duplicates", description="Recipients given more than once")


class RecipientRef(BaseModel):
    """A regarding record."""

    table: str = Field(title="Table")
    id: str = Field(title="Record ID")


class RecipientView(BaseModel):
    """One recipient's outcome."""

    index: int = Field(title="Index")
    to: str | None = Field(title="To")
    regarding: RecipientRef | None = Field(title="Regarding")
    outcome: Outcome = Field(title="Outcome")
    code: str | None = Field(title="Code", description="Why it was refused (a stable code)")
    message_id: str | None = Field(title="Message ID")


class BulkView(BaseModel):
    """A bulk job's progress."""

    id: str = Field(title="Job ID")
    status: Literal["running", "completed"] = Field(title="Status")
    total: int = Field(title="Recipients")
    processed: int = Field(title="Processed", description="Recipients handed to the send path")
    counts: dict[str, int] = Field(title="Counts", description="Recipients per outcome")
    rate_per_second: float = Field(title="Rate", description="Messages per second")
    created_at: str = Field(title="Created")
    handed_over_at: str | None = Field(title="Handed over")
    estimated_finish: str = Field(title="Estimated finish")
    recipients: list[RecipientView] = Field(title="Recipients")
    next_offset: int | None = Field(title="Next offset", description="For the next page")


async def bulk_service(request: Request) -> BulkService:
    """The bulk sends service."""
    wired = (await services(request)).bulk
    if wired is None:
        raise NotEnabledError("bulk sends are not enabled in this process")
    return wired


BulkDep = Annotated[BulkService, Depends(bulk_service)]
router = APIRouter(tags=["messages"], dependencies=[Depends(require_connector_key)])


@router.post(
    "/api/v1/messages/bulk",
    status_code=202,
    response_model=BulkAccepted,
    operation_id="sendBulk",
    summary="Send an SMS to many",
    responses={
        400: {"description": "Bad input (no recipients, body and template)"},
        422: {"description": "Unknown template or sender"},
    },
)
def send_bulk(body: BulkBody, bulk: BulkDep) -> JSONResponse:
    """Store a job for up to 10,000 recipients; it is sent at the sender's rate."""
    answer = bulk.submit(body.order(), [r.recipient() for r in body.recipients])
    return JSONResponse(answer, status_code=202)


@router.get(
    "/api/v1/bulk/{job_id}",
    response_model=BulkView,
    operation_id="getBulkJob",
    summary="Get a bulk job's progress",
    responses={404: {"description": "No such job"}},
)
def get_bulk(
    job_id: Annotated[uuid.UUID, Path(title="Job ID")],
    bulk: BulkDep,
    offset: Annotated[int, Query(ge=0, le=MAX_RECIPIENTS, title="Offset")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, title="Limit")] = 100,
) -> BulkView:
    """Progress, counts per outcome, the estimated finish and a page of recipients."""
    view = bulk.view(str(job_id), offset=offset, limit=limit)
    return BulkView.model_validate(view)
