"""Provider webhooks: ``POST /webhooks/twilio/messages`` (inbound SMS/MMS).

The handler does the least that makes the message safe, then answers: bound the body size,
verify Twilio's signature against the **configured public URL** (never the socket address),
check the form is a well-formed inbound message, append it to the ingress journal (committed
before the answer; a repeated ``MessageSid`` finds its first row) and nudge the worker. It
never waits for Dataverse. A forged request gets 403 and leaves no trace (nothing parsed,
stored or logged beyond the rejection); a malformed one 400; an oversized one 413; a repeat
the same empty TwiML answer as the first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from connector.api.deps import container_of
from connector.api.problems import problem
from connector.domain.model import Configuration
from connector.errors import ConnectorError, InvalidInputError, SignatureError, StateStoreError
from connector.log_config import get_logger
from connector.providers.twilio.forms import PROVIDER, parse_inbound
from connector.providers.twilio.signature import public_url, signature_from, verify
from connector.state.journal import Journal

log = get_logger(__name__)

INBOUND_PATH = "/webhooks/twilio/messages"
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
_MAX_FORM_FIELDS = 200
_COMMIT_WAIT_SECONDS = 30


class SignatureTokens:
    """The Twilio auth tokens a webhook for an account may be signed with.

    The settings' token (and the simulator's in local mode), plus the token stored encrypted
    on each configuration of that account (``connector setup --auth-token``), decrypted with
    the connector's keys. Configurations come from a cache that never makes a webhook wait.
    """

    def __init__(
        self,
        static: Sequence[str],
        configurations: Callable[[], Iterable[Configuration]] | None = None,
        decrypt: Callable[[str], str] | None = None,
    ) -> None:
        self._static = list(static)
        self._configurations = configurations
        self._decrypt = decrypt
        self._plain: dict[str, str] = {}
        self._loaded = configurations is None or decrypt is None

    @property
    def loaded(self) -> bool:
        """Whether a call returns without waiting (the configurations were read once; later
        refreshes happen in the background), so the event loop may call it directly."""
        return self._loaded

    def __call__(self, account_sid: str | None) -> list[str]:
        tokens = list(self._static)
        if self._configurations is None or self._decrypt is None:
            return tokens
        configurations = self._configurations()
        self._loaded = True
        for config in configurations:
            if config.secret and (account_sid is None or config.account_id == account_sid):
                plain = self._open(config.secret)
                if plain and plain not in tokens:
                    tokens.append(plain)
        return tokens

    def _open(self, stored: str) -> str | None:
        if stored not in self._plain:
            try:
                self._plain[stored] = self._decrypt(stored) if self._decrypt else ""
            except ConnectorError:
                log.warning("webhook.token_undecryptable")  # a dropped key; never the token
                self._plain[stored] = ""
        return self._plain[stored] or None


@dataclass
class InboundWebhook:
    """What the inbound webhook needs, wired by the composition root.

    ``public_base_url`` may be set after start-up (local mode learns its port late);
    ``auth_tokens`` are the Twilio tokens a signature may be made with; ``nudge`` tells the
    worker there is work (it must not block).
    """

    journal: Journal
    auth_tokens: SignatureTokens
    public_base_url: str | None = None
    max_body_bytes: int = 64 * 1024
    nudge: Callable[[], None] = field(default=lambda: None)
    count: Callable[[str], None] = field(default=lambda _outcome: None)


def webhook_of(request: Request) -> InboundWebhook:
    """The inbound webhook wiring of the running container."""
    runtime = container_of(request).inbound
    if runtime is None:
        raise InvalidInputError("inbound webhooks are not enabled in this process")
    return runtime.webhook


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _form(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError("webhook body is not a valid form") from exc


class _TooLargeError(Exception):
    """The body is over the configured limit."""


async def _accept(request: Request, hook: InboundWebhook) -> bool:
    """Verify and journal one inbound webhook; True when it was already journaled."""
    body = await _bounded_body(request, hook.max_body_bytes)
    if body is None:
        raise _TooLargeError
    if not hook.public_base_url:
        raise SignatureError("no public base URL configured to verify signatures against")
    try:
        pairs = _form(body)
    except InvalidInputError:
        raise SignatureError("webhook signature does not verify") from None  # no trace
    url = public_url(hook.public_base_url, INBOUND_PATH, request.url.query)
    account = next((value for name, value in pairs if name == "AccountSid"), None)
    if hook.auth_tokens.loaded:  # each thread hop is a scheduling delay under load
        tokens = hook.auth_tokens(account)
    else:
        tokens = await run_in_threadpool(hook.auth_tokens, account)  # loads configurations
    verify(url, pairs, signature_from(request.headers), tokens)
    message = parse_inbound(pairs)
    committed = hook.journal.append_future(PROVIDER, message.provider_message_id, message.raw)
    try:
        appended = await asyncio.wait_for(asyncio.wrap_future(committed), _COMMIT_WAIT_SECONDS)
    except TimeoutError:
        raise StateStoreError(f"journal append not committed in {_COMMIT_WAIT_SECONDS} s") from None
    if not appended.duplicate:
        hook.nudge()
    return appended.duplicate


router = APIRouter(tags=["webhooks"])


@router.post(INBOUND_PATH, include_in_schema=True, summary="Inbound SMS/MMS from Twilio")
async def twilio_inbound(request: Request) -> Response:
    """Verify, journal and acknowledge one inbound message (TwiML ``<Response/>``)."""
    hook = webhook_of(request)
    try:
        duplicate = await _accept(request, hook)
    except SignatureError:
        hook.count("forged")
        raise
    except InvalidInputError:
        hook.count("malformed")
        raise
    except _TooLargeError:
        hook.count("too_large")
        return problem(413, "body_too_large", "Request body too large")
    hook.count("duplicate" if duplicate else "accepted")
    return Response(content=TWIML_EMPTY, media_type="text/xml")
