"""Lists a flow picks from, and the template send: ``GET /api/v1/configurations``,
``GET /api/v1/templates``, ``POST /api/v1/messages/from-template``.

API key required. The lists feed Power Automate's dropdowns (``x-ms-dynamic-values``) so a
maker picks a sender or a template by name instead of pasting an id; both answer
``{"value": [...]}``. The template send is ``POST /api/v1/messages`` with a template and a
regarding record, as its own action ("Send an SMS from a template").
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from connector.api.deps import SenderDep, require_connector_key, services
from connector.api.messages import QueuedMessage, Regarding
from connector.api.problems import NotEnabledError
from connector.domain.model import MessageCategory
from connector.services.bulk import BulkService
from connector.services.outbound import SendOrder


class ConfigurationItem(BaseModel):
    """An active sender configuration."""

    id: str = Field(title="Configuration ID")
    name: str = Field(title="Name")
    sender_number: str = Field(title="Sender number")
    default_country: str | None = Field(title="Default country")
    rate_per_second: float | None = Field(title="Rate", description="Messages per second")


class ConfigurationList(BaseModel):
    """The active sender configurations."""

    value: list[ConfigurationItem] = Field(title="Configurations")


class TemplateItem(BaseModel):
    """A published message template."""

    id: str = Field(title="Template ID")
    title: str = Field(title="Title")
    category: str = Field(title="Category")
    language: str | None = Field(title="Language")


class TemplateList(BaseModel):
    """The published templates."""

    value: list[TemplateItem] = Field(title="Templates")


class TemplateSendBody(BaseModel):
    """A template sent to a record's phone number."""

    model_config = ConfigDict(extra="forbid")

    template_id: uuid.UUID = Field(title="Template")
    regarding: Regarding = Field(title="Regarding", description="The record the text is about")
    configuration_id: uuid.UUID | None = Field(default=None, title="Sender configuration")
    to: str | None = Field(
        default=None, max_length=64, title="To", description="Default: the record's number"
    )
    category: Literal["transactional", "commercial"] | None = Field(
        default=None, title="Category", description="Default: the template's"
    )


async def catalog(request: Request) -> BulkService:
    """What reads configurations and templates (the bulk service holds both)."""
    wired = (await services(request)).bulk
    if wired is None:
        raise NotEnabledError("configuration and template lists are not enabled")
    return wired


CatalogDep = Annotated[BulkService, Depends(catalog)]
router = APIRouter(tags=["catalog"], dependencies=[Depends(require_connector_key)])


@router.get(
    "/api/v1/configurations",
    response_model=ConfigurationList,
    operation_id="listConfigurations",
    summary="List sender configurations",
)
def list_configurations(source: CatalogDep) -> ConfigurationList:
    """The active senders: id, name, number, country and rate."""
    items = [
        ConfigurationItem(
            id=c.id,
            name=c.name,
            sender_number=c.sender_number,
            default_country=c.default_country,
            rate_per_second=c.rate_per_second,
        )
        for c in source.configurations.snapshot().values()
        if c.active and c.id
    ]
    return ConfigurationList(value=sorted(items, key=lambda item: item.name.lower()))


@router.get(
    "/api/v1/templates",
    response_model=TemplateList,
    operation_id="listTemplates",
    summary="List message templates",
)
def list_templates(source: CatalogDep) -> TemplateList:
    """The published templates: id, title, category and language."""
    items = [
        TemplateItem(id=t.id, title=t.title, category=t.category.value, language=t.language)
        for t in source.templates.published()
        if t.id
    ]
    return TemplateList(value=sorted(items, key=lambda item: item.title.lower()))


@router.post(
    "/api/v1/messages/from-template",
    status_code=202,
    response_model=QueuedMessage,
    operation_id="sendFromTemplate",
    summary="Send an SMS from a template",
    responses={
        400: {"description": "Bad input (number)"},
        409: {"description": "Refused: blocked, opted out, no consent, compliance"},
        422: {"description": "Unknown template, record or sender; a template value missing"},
    },
)
async def send_from_template(
    body: TemplateSendBody,
    sender: SenderDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Render a template against a record and queue it to the record's phone number."""
    order = SendOrder(
        to=body.to,
        template_id=str(body.template_id),
        regarding=body.regarding.ref(),
        configuration_id=str(body.configuration_id) if body.configuration_id else None,
        category=MessageCategory(body.category) if body.category else None,
    )
    answer = await run_in_threadpool(lambda: sender.send(order, idempotency_key=idempotency_key))
    return JSONResponse(answer, status_code=202)
