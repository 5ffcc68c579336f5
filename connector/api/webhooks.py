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

These are the hottest routes, so they are answered in plain ASGI: :func:`webhook_answer`
matches the two paths and the application (:class:`~connector.api.app.ConnectorApp`) answers
them in front of the framework's middleware, routing and dependency solving, which cost
more CPU per webhook than verifying and journaling it. Errors get the problem+json answers
the API's error handlers give (:func:`~connector.api.problems.problem_for`). The
:data:`router` declares both routes for the OpenAPI document (and answers them through the
same functions wherever the router is mounted without the front).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect

from connector.api.deps import InboundWebhooks, WebServices
from connector.api.problems import NotEnabledError, problem, problem_for
from connector.errors import ConnectorError, InvalidInputError, SignatureError
from connector.log_config import accept_request_id, correlation, get_logger
from connector.ports import AcceptedWebhook, IngressJournal, WebhookRequest
from connector.providers.webhooks import (
    INBOUND_PATH,
    STATUS_PATH,
    inbound_path,
    public_url,
    status_path,
)

log = get_logger(__name__)
REQUEST_ID_HEADER = "X-Request-ID"
WEBHOOKS_PREFIX = "/webhooks/"  # every provider webhook route is under it
_COMMIT_WAIT_SECONDS = 30
_INBOUND = re.compile(r"/webhooks/([^/]+)/messages")
_STATUS = re.compile(r"/webhooks/([^/]+)/status/([^/]+)")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class BodyTooLargeError(Exception):
    """The body is over the configured limit."""


async def bounded_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    """The request body, refused (:class:`BodyTooLargeError`) past ``limit`` bytes: at once when
    ``Content-Length`` says so, else as soon as the stream passes it. A client that goes away
    raises Starlette's ``ClientDisconnect``."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def journal_event(
    journal: IngressJournal, name: str, event_id: str, payload: Any, request_id: str
) -> bool:
    """Append one event (committed on return, ``StateStoreError`` after 30 s); whether it
    was already there."""
    appended = await journal.append_async(
        name, event_id, payload, request_id=request_id, timeout=_COMMIT_WAIT_SECONDS
    )
    return appended.duplicate


def _webhooks(services: WebServices) -> InboundWebhooks:
    if services.webhooks is None:
        raise NotEnabledError("inbound webhooks are not enabled in this process")
    return services.webhooks


@dataclass(frozen=True, slots=True)
class WebhookCall:
    """One webhook request as the handlers read it: the wiring, the ASGI scope and receive
    channel, the headers and the request id every answer and log line carries."""

    hook: InboundWebhooks
    scope: Scope
    receive: Receive
    headers: Headers
    request_id: str


Answer = Callable[[WebhookCall], Awaitable[Response]]


async def _incoming(call: WebhookCall, path: str) -> WebhookRequest:
    """The bounded body with the public URL the provider signed (never the socket address)."""
    hook = call.hook
    body = await bounded_body(call.receive, call.headers, hook.max_body_bytes)
    if not hook.public_base_url:
        raise SignatureError("no public base URL configured to verify signatures against")
    query = bytes(call.scope.get("query_string", b"")).decode("latin-1")
    return WebhookRequest(public_url(hook.public_base_url, path, query), call.headers, body)


async def _verified(
    ready: bool, accept: Callable[[WebhookRequest], AcceptedWebhook], incoming: WebhookRequest
) -> AcceptedWebhook:
    """``accept`` on the event loop when it will not wait (each thread hop is a scheduling
    delay under load), else in a thread (it loads credentials)."""
    return accept(incoming) if ready else await run_in_threadpool(accept, incoming)


async def _journal(call: WebhookCall, journal_name: str, accepted: AcceptedWebhook) -> bool:
    """Append every event (committed on return) and wake the worker for a new one; whether
    every event was already there."""
    duplicate = True
    for event in accepted.events:
        known = await journal_event(
            call.hook.journal, journal_name, event.event_id, event.payload, call.request_id
        )
        duplicate = duplicate and known
    if not duplicate:
        call.hook.nudge()
    return duplicate


async def answered(
    services: WebServices, scope: Scope, receive: Receive, answer: Answer
) -> Response:
    """``answer`` under the request's id (bound to every log line meanwhile), or the
    problem+json answer of the error it raised, as the API's error handlers give it; every
    answer carries the request id. A client that went away before its body was read raises
    Starlette's ``ClientDisconnect``."""
    headers = Headers(scope=scope)
    request_id = accept_request_id(headers.get(REQUEST_ID_HEADER))
    with correlation(request_id):
        try:
            hook = _webhooks(services)
            response = await answer(WebhookCall(hook, scope, receive, headers, request_id))
        except ConnectorError as exc:
            response = problem_for(exc)
        except ClientDisconnect:
            raise
        except Exception as exc:
            log.exception("unhandled_error", error_type=type(exc).__name__)
            response = problem(500, "internal_error", "Internal error")
    response.headers.setdefault(REQUEST_ID_HEADER, request_id)
    return response


async def answer_inbound(call: WebhookCall, provider_name: str) -> Response:
    """Verify, journal and acknowledge one provider webhook (Twilio: TwiML ``<Response/>``)."""
    hook = call.hook
    try:
        provider = hook.providers[provider_name]
        incoming = await _incoming(call, inbound_path(provider_name))
        accepted = await _verified(provider.ready(), provider.accept, incoming)
        duplicate = await _journal(call, provider.name, accepted)
    except SignatureError:
        hook.count("forged")
        raise
    except InvalidInputError:
        hook.count("malformed")
        raise
    except BodyTooLargeError:
        hook.count("too_large")
        return problem(413, "body_too_large", "Request body too large")
    hook.count("duplicate" if duplicate and accepted.events else "accepted")
    answer = accepted.answer
    return Response(
        content=answer.content,
        media_type=answer.media_type,
        status_code=answer.status,
        headers={REQUEST_ID_HEADER: call.request_id},
    )


async def answer_status(call: WebhookCall, provider_name: str, message_id: str) -> Response:
    """Verify, journal and acknowledge one status callback; the worker applies it. A
    callback for a message the outbox does not know is answered (so the provider stops
    retrying) and dropped."""
    hook = call.hook
    try:
        provider = hook.statuses[provider_name]
        incoming = await _incoming(call, status_path(provider_name, message_id))
        accept = partial(provider.accept_status, message_id=message_id)
        accepted = await _verified(provider.ready(), accept, incoming)
    except SignatureError:
        hook.count("status_forged")
        raise
    except BodyTooLargeError:
        return problem(413, "body_too_large", "Request body too large")
    if not hook.known_message(message_id):
        log.warning("status.unknown_message", message_id=message_id[:64])
        new = False
    else:
        new = not await _journal(call, provider.journal_name, accepted)
    hook.count("status_accepted" if new else "status_duplicate")
    return Response(status_code=200, headers={REQUEST_ID_HEADER: call.request_id})


def webhook_answer(method: str, path: str) -> Answer | None:
    """How a request for ``path`` is answered when it is a provider webhook (None: it is
    not one), for :func:`answered`."""
    if method != "POST" or not path.startswith(WEBHOOKS_PREFIX):
        return None
    if found := _INBOUND.fullmatch(path):
        return partial(answer_inbound, provider_name=found.group(1))
    if found := _STATUS.fullmatch(path):
        provider, message_id = found.groups()
        return partial(answer_status, provider_name=provider, message_id=message_id)
    return None


def _services(request: Request) -> WebServices:
    services: WebServices = request.app.state.services
    return services


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
    answer = partial(answer_inbound, provider_name=provider)
    return await answered(_services(request), request.scope, request.receive, answer)


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
    answer = partial(answer_status, provider_name=provider, message_id=message_id)
    return await answered(_services(request), request.scope, request.receive, answer)
