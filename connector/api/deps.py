"""What the routes need, and how they get it: :class:`WebServices` and FastAPI dependencies.

The composition root (``connector.bootstrap``) builds one :class:`WebServices` and hands it to
:func:`~connector.api.app.create_app`; routes declare what they use with ``Annotated``
dependencies (``SessionsDep``, ``MoverDep``, ``require_api_key``), so a route never digs
through a container and the app's routes (and ``/openapi.json``) never depend on what was
wired. The provider webhooks, the hottest routes, read :attr:`WebServices.webhooks` in front
of the framework instead (:mod:`connector.api.webhooks`). A process built without a service
answers its routes with 503 ``not_enabled``. The dependencies are ``async`` only so that
FastAPI runs them on the event loop: a plain ``def`` dependency costs every request a
thread-pool hop.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, TypeVar, cast

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from connector.api.identity import CONNECTOR, Caller, EntraTokens
from connector.api.problems import NotEnabledError
from connector.errors import ForbiddenError, UnauthorizedError
from connector.ports import (
    IngressJournal,
    OutboxStore,
    ProviderEvent,
    StatusWebhookProvider,
    WebhookProvider,
)
from connector.providers.webhooks import ProviderRegistry
from connector.services.bulk import BulkService
from connector.services.consent import ConsentService
from connector.services.conversation_move import ConversationMover
from connector.services.events import EventService
from connector.services.inbox import InboxService
from connector.services.outbound import SendService
from connector.services.sessions import SessionActions


@dataclass
class InboundWebhooks:
    """What the provider webhook route needs.

    ``public_base_url`` may be set after start-up (local mode learns its port late);
    ``nudge`` tells the worker there is work (it must not block); ``count`` records each
    webhook's outcome for ``/metrics``.
    """

    providers: Mapping[str, WebhookProvider]
    journal: IngressJournal
    public_base_url: str | None = None
    max_body_bytes: int = 64 * 1024
    nudge: Callable[[], None] = field(default=lambda: None)
    count: Callable[[str], None] = field(default=lambda _outcome: None)
    statuses: Mapping[str, StatusWebhookProvider] = field(
        default_factory=lambda: ProviderRegistry[StatusWebhookProvider]([])
    )
    known_message: Callable[[str], bool] = field(default=lambda _message_id: False)


@dataclass
class DataverseWebhook:
    """What ``POST /webhooks/dataverse`` needs: the keys it accepts (read in a thread: they
    come from the state store), how a body becomes a journal event (400 when it is not the
    right context), the journal and its name for these events, and the worker's wake-up."""

    keys: Callable[[], Sequence[str]]
    parse: Callable[[bytes], ProviderEvent]
    journal: IngressJournal
    journal_name: str = "dataverse"
    max_body_bytes: int = 1024 * 1024
    nudge: Callable[[], None] = field(default=lambda: None)
    count: Callable[[str], None] = field(default=lambda _outcome: None)
    wanted: Callable[[ProviderEvent], bool] = field(default=lambda _event: True)
    """Whether an event asks for work (the connector's own rows, inbound or sent, do not:
    they are answered and not journaled)."""


@dataclass
class WebServices:
    """Everything the web app's routes use, built by the composition root."""

    api_keys: Sequence[SecretStr] = ()
    webhooks: InboundWebhooks | None = None
    sessions: SessionActions | None = None
    mover: ConversationMover | None = None
    sender: SendService | None = None
    outbox: OutboxStore | None = None
    consent: ConsentService | None = None
    dataverse_webhook: DataverseWebhook | None = None
    inbox: InboxService | None = None  # folders, threads and marks (read API, messages page)
    readiness: Mapping[str, Callable[[], object]] = field(default_factory=dict)
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    max_request_bytes: int = 1024 * 1024  # API request bodies (webhooks have their own bound)
    bulk: BulkService | None = None  # bulk sends (POST /api/v1/messages/bulk)
    events: EventService | None = None  # subscriptions (webhook triggers)
    entra: EntraTokens | None = None  # user bearer tokens (None: API keys only)


async def services(request: Request) -> WebServices:
    """The services the app was built with."""
    return cast("WebServices", request.app.state.services)


Services = Annotated[WebServices, Depends(services)]


T = TypeVar("T")


def _enabled(value: T | None, what: str) -> T:
    if value is None:
        raise NotEnabledError(f"{what} are not enabled in this process")
    return value


async def dataverse_webhook(request: Request) -> DataverseWebhook:
    """The Dataverse webhook wiring."""
    return _enabled((await services(request)).dataverse_webhook, "Dataverse webhooks")


async def session_actions(request: Request) -> SessionActions:
    """Accept, dismiss, block, assign."""
    return _enabled((await services(request)).sessions, "session actions")


async def conversation_mover(request: Request) -> ConversationMover:
    """Conversation moves."""
    return _enabled((await services(request)).mover, "conversation moves")


async def send_service(request: Request) -> SendService:
    """The send path."""
    return _enabled((await services(request)).sender, "outbound sends")


async def outbox(request: Request) -> OutboxStore:
    """Outbound messages as they stand."""
    return _enabled((await services(request)).outbox, "outbound sends")


async def consent_service(request: Request) -> ConsentService:
    """Consent requests and the ledger."""
    return _enabled((await services(request)).consent, "consent requests")


async def inbox_service(request: Request) -> InboxService:
    """Folders, threads and marks."""
    return _enabled((await services(request)).inbox, "conversation reads")


async def require_api_key(request: Request, wired: Services) -> None:
    """Reject API calls without a configured ``X-API-Key`` (constant-time comparison) or a
    valid Entra ID user token (``Authorization: Bearer``, when tokens are configured).

    The caller is kept as ``request.state.caller`` (:data:`CallerDep`): a key acts as the
    connector, a token as its user.
    """
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if wired.entra is not None and scheme.lower() == "bearer" and token.strip():
        request.state.caller = await run_in_threadpool(wired.entra.caller, token.strip())
        return
    presented = request.headers.get("x-api-key", "")
    if not presented or not any(
        hmac.compare_digest(presented.encode(), key.get_secret_value().encode())
        for key in wired.api_keys
    ):
        wanted = "X-API-Key header or bearer token" if wired.entra else "X-API-Key header"
        raise UnauthorizedError(f"a valid {wanted} is required")
    request.state.caller = CONNECTOR


async def require_connector_key(request: Request, wired: Services) -> None:
    """Like :func:`require_api_key`, for the operations that act with the connector's own
    rights (sending, bulk, consent, reads, subscriptions, catalogs): a user token is refused
    (403) rather than letting any Dataverse user act as the connector."""
    await require_api_key(request, wired)
    if getattr(request.state, "caller", CONNECTOR) is not CONNECTOR:
        raise ForbiddenError(
            "this operation acts as the connector itself: call it with an X-API-Key",
            code="api_key_required",
        )


async def caller(request: Request) -> Caller:
    """Who the request acts as (set by :func:`require_api_key`)."""
    found = getattr(request.state, "caller", None)
    return found if isinstance(found, Caller) else CONNECTOR


SessionsDep = Annotated[SessionActions, Depends(session_actions)]
MoverDep = Annotated[ConversationMover, Depends(conversation_mover)]
SenderDep = Annotated[SendService, Depends(send_service)]
OutboxDep = Annotated[OutboxStore, Depends(outbox)]
ConsentDep = Annotated[ConsentService, Depends(consent_service)]
InboxDep = Annotated[InboxService, Depends(inbox_service)]
CallerDep = Annotated[Caller, Depends(caller)]
