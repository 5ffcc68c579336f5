"""The Twilio provider, on the official ``twilio`` SDK.

Sends SMS and MMS with a per-message status callback carrying the connector's message id
(``/webhooks/twilio/status/{message_id}``), parses Twilio's webhooks, verifies their
signatures against the configured public URL, and checks credentials.

To reach the local simulator instead of ``https://api.twilio.com`` the SDK gets a custom
HTTP client (:class:`RoutedHttpClient`, the seam twilio-python documents for proxies and
test layers) that rewrites the API origin; region/edge settings are left unset. The same
client sets a request timeout (the SDK has none by default) and keeps the ``Retry-After``
of the last answer per thread.

Refusals become :mod:`connector.errors` exceptions through :mod:`twilio_errors`; the only
retry loop (tenacity) is in :meth:`TwilioProvider._call` and retries only what Twilio never
processed (429/20429, 5xx, network failures), honouring ``Retry-After``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from connector.domain.provider_messages import (
    CredentialReport,
    InboundMessage,
    IncomingNumber,
    SendRequest,
    SendResult,
    StatusUpdate,
)
from connector.domain.status import MessageStatus, parse_status
from connector.errors import ConfigurationError, ProviderError
from connector.log_config import get_logger
from connector.ports import SmsProvider
from connector.providers.twilio import forms as twilio_forms
from connector.providers.twilio import signature
from connector.providers.twilio.endpoints import (
    LOCAL_ACCOUNT_SID,
    LOCAL_AUTH_TOKEN,
    TWILIO_API_BASE_URL,
    status_callback_url,
)
from connector.providers.twilio.errors import error_for, retry_now, unreachable_error
from connector.settings import Settings

T = TypeVar("T")
log = get_logger(__name__)
TRIAL_WARNING = (
    "This is a Twilio trial account: it can only send to verified numbers (error 21608) "
    "and prefixes messages with a trial notice."
)


class RoutedHttpClient(TwilioHttpClient):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's HTTP client, pointed at another API origin, with a timeout and Retry-After."""

    def __init__(self, api_base_url: str | None = None, timeout: float = 10.0) -> None:
        super().__init__(timeout=timeout)
        self._origin = (api_base_url or TWILIO_API_BASE_URL).rstrip("/")
        self._last = threading.local()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith(TWILIO_API_BASE_URL):
            url = self._origin + url[len(TWILIO_API_BASE_URL) :]
        self._last.retry_after = None
        response: Response = super().request(method, url, *args, **kwargs)
        self._last.retry_after = _seconds(response.headers.get("Retry-After"))
        return response

    def log_request(self, kwargs: dict[str, Any]) -> None:
        """At debug level, method and URL only (the SDK logs every request's headers at INFO)."""
        log.debug("twilio.request", method=kwargs.get("method"), url=kwargs.get("url"))

    def log_response(self, status_code: int, response: Any) -> None:
        """At debug level, the status only."""
        log.debug("twilio.response", status=status_code)

    def last_retry_after(self) -> float | None:
        """``Retry-After`` (seconds) of the last answer this thread received."""
        value: float | None = getattr(self._last, "retry_after", None)
        return value


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class TwilioProvider:
    """:class:`~connector.ports.SmsProvider` for Twilio (or the Twilio-compatible simulator).

    ``public_base_url`` is where Twilio reaches the connector: status callback URLs are built
    from it (no callbacks are asked for without it). ``extra_auth_tokens`` are also accepted
    when verifying webhooks (the previous token during a rotation). ``sleep`` is the pause
    between retries (tests pass one that records instead of sleeping).
    """

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        public_base_url: str | None = None,
        api_base_url: str | None = None,
        timeout: float = 10.0,
        max_attempts: int = 4,
        extra_auth_tokens: Sequence[str] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.account_sid = account_sid
        self._auth_tokens = (auth_token, *extra_auth_tokens)
        self.public_base_url = public_base_url
        self._http = RoutedHttpClient(api_base_url, timeout)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        self._max_attempts = max_attempts
        self._sleep = sleep

    def send(self, request: SendRequest) -> SendResult:
        """Create the message at Twilio; raises ``ProviderError`` (or a subclass) if refused."""
        params: dict[str, Any] = {"to": request.to}
        if request.from_number:
            params["from_"] = request.from_number
        else:
            params["messaging_service_sid"] = request.messaging_service_id
        if request.body:
            params["body"] = request.body
        if request.media_urls:
            params["media_url"] = list(request.media_urls)
        if request.validity_period_s is not None:
            params["validity_period"] = request.validity_period_s
        if self.public_base_url:
            params["status_callback"] = status_callback_url(
                self.public_base_url, request.message_id
            )
        tries = 0

        def create() -> Any:
            nonlocal tries
            tries += 1
            return self._client.messages.create(attempt=request.attempt + tries - 1, **params)

        message = self._call(create)
        log.info("sms.sent", message_id=request.message_id, provider_id=message.sid, tries=tries)
        raw_status = str(message.status or "queued")
        return SendResult(
            provider_message_id=str(message.sid),
            status=parse_status(raw_status),
            raw_status=raw_status,
            num_segments=_int(message.num_segments),
            num_media=_int(message.num_media) or 0,
            attempts=tries,
        )

    def find_sent(
        self, request: SendRequest, since: float, exclude: Collection[str]
    ) -> SendResult | None:
        """The oldest message Twilio has from the request's sender to its recipient with its
        body, created since ``since`` (a minute of clock skew allowed), not in ``exclude``."""
        after = datetime.fromtimestamp(since - 60, tz=UTC)
        params: dict[str, Any] = {"to": request.to, "date_sent_after": after, "limit": 200}
        if request.from_number:
            params["from_"] = request.from_number
        found = self._call(lambda: self._client.messages.list(**params))
        for message in reversed(found):  # Twilio lists newest first
            created = message.date_created
            if created is not None and created.timestamp() < since - 60:
                continue
            if str(message.sid) in exclude or (message.body or "") != request.body:
                continue
            raw_status = str(message.status or "queued")
            return SendResult(
                provider_message_id=str(message.sid),
                status=parse_status(raw_status),
                raw_status=raw_status,
                num_segments=_int(message.num_segments),
                num_media=_int(message.num_media) or 0,
            )
        return None

    def fetch_status(self, provider_message_id: str) -> MessageStatus:
        """The message's status as Twilio has it now (reconciliation, lost callbacks)."""
        message = self._call(lambda: self._client.messages(provider_message_id).fetch())
        return parse_status(str(message.status))

    def parse_inbound(self, form: twilio_forms.Form) -> InboundMessage:
        """See :func:`connector.providers.twilio.forms.parse_inbound`."""
        return twilio_forms.parse_inbound(form)

    def parse_status(self, form: twilio_forms.Form) -> StatusUpdate:
        """See :func:`connector.providers.twilio.forms.parse_status_callback`."""
        return twilio_forms.parse_status_callback(form)

    def verify_signature(
        self,
        url: str,
        params_or_body: signature.FormParams | str | bytes,
        headers: Mapping[str, str],
    ) -> None:
        """Raise ``SignatureError`` unless the request carries Twilio's signature for ``url``."""
        signature.verify(url, params_or_body, signature.signature_from(headers), self._auth_tokens)

    def validate_credentials(self) -> CredentialReport:
        """Fetch the account: do the credentials work, is the account active, is it a trial?"""
        try:
            account = self._call(lambda: self._client.api.v2010.accounts(self.account_sid).fetch())
        except ProviderError as exc:
            return CredentialReport(
                ok=False,
                account_id=self.account_sid,
                problem=f"{exc.message} ({exc.provider_code or exc.category})",
            )
        status = str(account.status or "")
        account_type = str(account.type or "")
        warnings = (TRIAL_WARNING,) if account_type.lower() == "trial" else ()
        problem = None if status == "active" else f"The Twilio account is {status or 'unknown'}."
        return CredentialReport(
            ok=problem is None,
            account_id=self.account_sid,
            status=status,
            account_type=account_type,
            friendly_name=account.friendly_name,
            problem=problem,
            warnings=warnings,
        )

    def incoming_number(self, phone_number: str) -> IncomingNumber | None:
        """The account's number ``phone_number`` with its inbound webhook URL (``SmsUrl``), or
        None when the account has no such number (IncomingPhoneNumbers filtered by number)."""
        found = self._call(
            lambda: self._client.api.v2010.accounts(self.account_sid).incoming_phone_numbers.list(
                phone_number=phone_number, limit=20
            )
        )
        for number in found:
            if str(number.phone_number or "") == phone_number:
                return IncomingNumber(
                    phone_number=phone_number,
                    id=str(number.sid) if number.sid else None,
                    sms_url=str(number.sms_url) if number.sms_url else None,
                )
        return None

    def _call(self, operation: Callable[[], T]) -> T:
        """Run one SDK call, translating errors, retrying only what is safe (the one loop)."""
        retrying = Retrying(
            stop=stop_after_attempt(self._max_attempts),
            retry=retry_if_exception(retry_now),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._translated(operation)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def _translated(self, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except TwilioRestException as exc:
            raise error_for(
                _int(exc.code), _message(exc.msg), exc.status, retry_after=self._retry_after()
            ) from exc
        except TwilioServiceException as exc:
            raise error_for(
                _int(exc.code), exc.detail or exc.title, exc.status, retry_after=self._retry_after()
            ) from exc
        except requests.RequestException as exc:
            raise unreachable_error(exc) from exc
        except TwilioException as exc:  # a list page refused: the SDK wraps the raw response
            status, code, text = _page_refusal(exc)
            raise error_for(code, text, status, retry_after=self._retry_after()) from exc

    def _retry_after(self) -> float | None:
        return self._http.last_retry_after()

    _backoff = wait_exponential_jitter(multiplier=0.2, max=30.0, jitter=0.2)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after > 0:
            return min(float(retry_after), 60.0)
        return float(self._backoff(state))


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _page_refusal(exc: TwilioException) -> tuple[int | None, int | None, str | None]:
    """HTTP status, Twilio error code and message of a refused list page (``Unable to fetch
    page``: the SDK puts the raw response in the exception's arguments)."""
    response = next((arg for arg in exc.args if isinstance(arg, Response)), None)
    if response is None:
        return None, None, str(exc) or None
    try:
        body = json.loads(response.text or "{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = body.get("message")
    return _int(response.status_code), _int(body.get("code")), str(message) if message else None


def _message(msg: str | None) -> str | None:
    """Twilio's own message, without the SDK's ``Unable to create record:`` prefix."""
    if msg is None:
        return None
    head, sep, tail = msg.partition(": ")
    return tail if sep and head.startswith("Unable to") else msg


def build_twilio_provider(
    settings: Settings, *, api_base_url: str | None = None, max_attempts: int = 4
) -> TwilioProvider:
    """The provider the settings describe (for the composition root).

    In local mode missing credentials default to the simulator's local ones; ``api_base_url``
    (the simulator started by local mode) wins over ``CONNECTOR_TWILIO__API_BASE_URL``.
    Without credentials outside local mode it is a :class:`ConfigurationError`.
    """
    twilio = settings.twilio
    sid = twilio.account_sid or (LOCAL_ACCOUNT_SID if settings.local_mode else None)
    token = twilio.auth_token.get_secret_value() if twilio.auth_token else None
    token = token or (LOCAL_AUTH_TOKEN if settings.local_mode else None)
    if sid is None or token is None:
        raise ConfigurationError(
            "Twilio needs CONNECTOR_TWILIO__ACCOUNT_SID and CONNECTOR_TWILIO__AUTH_TOKEN"
        )
    base = api_base_url or (str(twilio.api_base_url) if twilio.api_base_url else None)
    public = str(settings.public_base_url).rstrip("/") if settings.public_base_url else None
    return TwilioProvider(
        sid, token, public_base_url=public, api_base_url=base, max_attempts=max_attempts
    )


def _conforms(provider: TwilioProvider) -> SmsProvider:
    """mypy checks the adapter against the port here."""
    return provider
