"""``POST /webhooks/dataverse``: Dataverse's service-endpoint webhook (sends that start in
Dynamics).

Dataverse's asynchronous service posts the ``RemoteExecutionContext`` of each Create of an
``smsc_message`` row to the registered URL (``connector dataverse register-webhook``). There is
no signature: the endpoint's key comes as the ``x-smsc-webhook-key`` header (HttpHeader auth,
what the connector registers) or the ``code`` query parameter (WebhookKey auth), and is
compared in constant time with the stored key (and, during a rotation, the previous one).
Anything else is 401 before the body is read, and nothing is stored. A body that is not a
Create of ``smsc_message`` is 400 problem+json, nothing stored; past the bound, 413. A good one
is journaled (the row id is the dedupe key: a repeated delivery adds nothing), the worker is
woken, and the answer (``202``) goes out at once (a row that does not wait to be sent, such
as the connector's own inbound rows, is answered and not journaled): Dataverse waits at most
60 s and looks only at the status code. The worker sends the row (``connector.services.crm_sends``).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from connector.api.deps import DataverseWebhook, dataverse_webhook
from connector.api.problems import problem
from connector.api.webhooks import REQUEST_ID_HEADER, BodyTooLargeError, bounded_body, journal_event
from connector.errors import InvalidInputError, UnauthorizedError
from connector.log_config import accept_request_id, correlation, get_logger

log = get_logger(__name__)
DATAVERSE_PATH = "/webhooks/dataverse"
KEY_HEADER = "x-smsc-webhook-key"
"""The header the registered service endpoint sends the key in (HttpHeader auth)."""
CODE_PARAMETER = "code"
"""The query parameter Dataverse adds for WebhookKey auth."""

router = APIRouter(tags=["webhooks"])


def _authentic(presented: str, keys: list[str]) -> bool:
    """Constant-time comparison with every accepted key (all are compared)."""
    given = presented.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.encode())
    return matched and bool(presented)


async def _check_key(request: Request, hook: DataverseWebhook) -> None:
    presented = request.headers.get(KEY_HEADER) or request.query_params.get(CODE_PARAMETER) or ""
    keys = list(await run_in_threadpool(hook.keys)) if presented else []
    if not _authentic(presented, keys):
        hook.count("dataverse_unauthorized")
        raise UnauthorizedError("a valid Dataverse webhook key is required")


@router.post(
    DATAVERSE_PATH,
    operation_id="receiveDataverseWebhook",
    summary="A row created in Dataverse (RemoteExecutionContext of a Create of an SMS message)",
    status_code=202,
    responses={
        202: {"description": "Journaled (or already journaled); the worker sends the row"},
        400: {"description": "Not a RemoteExecutionContext of a Create of an SMS message"},
        401: {"description": "Missing or wrong webhook key; nothing stored"},
        413: {"description": "Body too large"},
    },
)
async def receive_dataverse_webhook(request: Request) -> Response:
    """Authenticate, journal and acknowledge one Dataverse webhook."""
    hook = await dataverse_webhook(request)
    request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
    headers = {REQUEST_ID_HEADER: request_id}
    await _check_key(request, hook)
    try:
        body = await bounded_body(request.receive, request.headers, hook.max_body_bytes)
    except BodyTooLargeError:
        return problem(413, "body_too_large", "Request body too large", headers=headers)
    try:
        event = hook.parse(body)
    except InvalidInputError:
        hook.count("dataverse_malformed")
        raise
    if not hook.wanted(event):
        hook.count("dataverse_ignored")
        return Response(status_code=202, headers=headers)
    with correlation(request_id, provider_message_id=event.event_id):
        duplicate = await journal_event(
            hook.journal, hook.journal_name, event.event_id, event.payload, request_id
        )
        if not duplicate:
            hook.nudge()
        log.info("dataverse_webhook.accepted", row_id=event.event_id, duplicate=duplicate)
    hook.count("dataverse_duplicate" if duplicate else "dataverse_accepted")
    return Response(status_code=202, headers=headers)
