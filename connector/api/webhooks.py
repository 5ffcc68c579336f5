"""Provider webhooks: ``POST /webhooks/{provider}/messages`` (inbound SMS/MMS) and
``POST /webhooks/{provider}/status/{message_id}`` (delivery status of our sends).

The handler does the least that makes the message safe, then answers: bound the body size,
hand the request (with the **configured public URL**, never the socket address) to the
provider named in the path, which verifies its signature and splits it into events; append
each event to the ingress journal (committed before the answer; a repeated provider id finds
its first row) and nudge the worker. It never waits for Dataverse. A forged request gets 403
and leaves no trace (nothing parsed, stored or logged beyond the rejection); a malformed one
400; an oversized one 413; a repeat the same answer as the first. Every answer carries
``X-Request-ID`` (the caller's, when it is a safe id), and the journal row keeps it, so the
worker's log lines for the message carry the same id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import TypeVar

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from connector.api.deps import InboundWebhooks, webhooks
from connector.api.problems import problem
from connector.errors import InvalidInputError, SignatureError, StateStoreError
from connector.log_config import accept_request_id, correlation, get_logger
from connector.ports import AcceptedWebhook, WebhookRequest
from connector.providers.webhooks import (
    INBOUND_PATH,
    STATUS_PATH,
    inbound_path,
    public_url,
    status_path,
)

log = get_logger(__name__)
T = TypeVar("T")
REQUEST_ID_HEADER = "X-Request-ID"
WEBHOOKS_PREFIX = "/webhooks/"  # every provider webhook route is under it
_COMMIT_WAIT_SECONDS = 30


class _TooLargeError(Exception):
    """The body is over the configured limit."""


async def _bounded_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


async def _committed(future: Future[T]) -> T:
    """Wait (on the event loop) for a journal append to commit."""
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), _COMMIT_WAIT_SECONDS)
    except TimeoutError:
        raise StateStoreError(f"journal append not committed in {_COMMIT_WAIT_SECONDS} s") from None


async def _incoming(request: Request, hook: InboundWebhooks, path: str) -> WebhookRequest:
    """The bounded body with the public URL the provider signed (never the socket address)."""
    body = await _bounded_body(request, hook.max_body_bytes)
    if not hook.public_base_url:
        raise SignatureError("no public base URL configured to verify signatures against")
    url = public_url(hook.public_base_url, path, request.url.query)
    return WebhookRequest(url, request.headers, body)


async def _verified(
    ready: bool, accept: Callable[[WebhookRequest], AcceptedWebhook], incoming: WebhookRequest
) -> AcceptedWebhook:
    """``accept`` on the event loop when it will not wait (each thread hop is a scheduling
    delay under load), else in a thread (it loads credentials)."""
    return accept(incoming) if ready else await run_in_threadpool(accept, incoming)


async def _journal(
    hook: InboundWebhooks, journal_name: str, accepted: AcceptedWebhook, request_id: str
) -> bool:
    """Append every event (committed on return) and wake the worker for a new one; whether
    every event was already there."""
    duplicate = True
    for event in accepted.events:
        with correlation(request_id, provider_message_id=event.event_id):
            appended = await _committed(
                hook.journal.append_future(
                    journal_name, event.event_id, event.payload, request_id=request_id
                )
            )
            duplicate = duplicate and appended.duplicate
    if not duplicate:
        hook.nudge()
    return duplicate


async def _accept(
    request: Request, provider_name: str, hook: InboundWebhooks, request_id: str
) -> tuple[AcceptedWebhook, bool]:
    """Verify and journal one webhook; (what the provider made of it, all already journaled)."""
    provider = hook.providers[provider_name]
    incoming = await _incoming(request, hook, inbound_path(provider_name))
    accepted = await _verified(provider.ready(), provider.accept, incoming)
    duplicate = await _journal(hook, provider.name, accepted, request_id)
    return accepted, duplicate and bool(accepted.events)


async def _accept_status(
    request: Request, provider_name: str, message_id: str, hook: InboundWebhooks, request_id: str
) -> bool:
    """Verify and journal one status callback; whether it was new. A callback for a message
    the outbox does not know is answered (so the provider stops retrying) and dropped."""
    provider = hook.statuses[provider_name]
    incoming = await _incoming(request, hook, status_path(provider_name, message_id))
    accept = partial(provider.accept_status, message_id=message_id)
    accepted = await _verified(provider.ready(), accept, incoming)
    if not hook.known_message(message_id):
        log.warning("status.unknown_message", message_id=message_id[:64])
        return False
    return not await _journal(hook, provider.journal_name, accepted, request_id)


router = APIRouter(tags=["webhooks"])


@router.post(
    INBOUND_PATH,
    operation_id="receiveProviderWebhook",
    summary="Inbound SMS/MMS from a provider",
    responses={
        200: {"description": "Journaled (or already journaled); the provider's answer"},
        403: {"description": "Signature does not verify; nothing stored"},
        404: {"description": "No such provider"},
        413: {"description": "Body too large"},
    },
)
async def receive_provider_webhook(provider: str, request: Request) -> Response:
    """Verify, journal and acknowledge one provider webhook (Twilio: TwiML ``<Response/>``)."""
    hook = await webhooks(request)  # called, not declared: no dependency solving per webhook
    request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
    headers = {REQUEST_ID_HEADER: request_id}
    try:
        accepted, duplicate = await _accept(request, provider, hook, request_id)
    except SignatureError:
        hook.count("forged")
        raise
    except InvalidInputError:
        hook.count("malformed")
        raise
    except _TooLargeError:
        hook.count("too_large")
        return problem(413, "body_too_large", "Request body too large", headers=headers)
    hook.count("duplicate" if duplicate else "accepted")
    answer = accepted.answer
    return Response(
        content=answer.content,
        media_type=answer.media_type,
        status_code=answer.status,
        headers=headers,
    )


@router.post(
    STATUS_PATH,
    operation_id="receiveStatusCallback",
    summary="Delivery status of a message the connector sent",
    responses={
        200: {"description": "Journaled (or a repeat, or for a message we do not know)"},
        403: {"description": "Signature does not verify; nothing stored"},
        404: {"description": "No such provider"},
        413: {"description": "Body too large"},
    },
)
async def receive_status_callback(provider: str, message_id: str, request: Request) -> Response:
    """Verify, journal and acknowledge one status callback; the worker applies it."""
    hook = await webhooks(request)
    request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
    headers = {REQUEST_ID_HEADER: request_id}
    try:
        new = await _accept_status(request, provider, message_id, hook, request_id)
    except SignatureError:
        hook.count("status_forged")
        raise
    except _TooLargeError:
        return problem(413, "body_too_large", "Request body too large", headers=headers)
    hook.count("status_accepted" if new else "status_duplicate")
    return Response(status_code=200, headers=headers)
