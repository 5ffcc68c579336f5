"""The connector's one exception tree.

Every error the connector raises on purpose is a :class:`ConnectorError`. Errors carry data,
not just text: a stable ``code`` (shown to API callers and in the error log), whether the
failure is ``transient`` (worth retrying), and ``details`` for people and machines. Whether an
error is transient is decided once, where the error is made; retry code only asks
:func:`is_transient`.

The data an error may carry (HTTP status, service code, request id, ``retry_after``...) is
declared once, on :class:`ConnectorError`: every error takes it as keyword arguments and keeps
it as attributes of the same names. A subclass only sets class attributes: its ``code``, its
``default_transient``, a different default for a datum, and the data it reports in
``details`` (``detail_fields``).

::

    ConnectorError                      code, message, transient, details (+ optional data)
    ├── ConfigurationError              settings or configuration rows are wrong (start-up, setup)
    ├── InvalidInputError               bad input from a caller: it will never succeed as sent
    │   ├── InvalidPhoneNumberError     a phone number that cannot be parsed (raw, reason)
    │   ├── TemplateError               a template that cannot be rendered for a record
    │   ├── UnknownReferenceError       an action names a user, team or row Dataverse lacks
    │   └── StaleLinkError              a stored Web API link that fits no Web API base
    ├── SignatureError                  a webhook whose signature does not verify (HTTP 403)
    ├── UnauthorizedError               an API call without a valid API key or token (HTTP 401)
    ├── ForbiddenError                  the acting user may not do this (HTTP 403)
    ├── NotFoundError                   a connector object (message, session...) does not exist
    ├── AuthenticationError             a token could not be acquired (tenant, client id named)
    ├── DataverseError                  the Web API failed (status, service_code, request_id,
    │   │                               retry_after)
    │   ├── DataverseNotFoundError      404: the row or table does not exist
    │   ├── DataverseConflictError      409/412: duplicate key, concurrency conflict
    │   ├── DataverseThrottledError     429: service protection limit (transient, retry_after)
    │   └── DataverseUnavailableError   5xx or connection failure (transient)
    ├── ProviderError                   the SMS provider refused or failed (category,
    │   │                               provider_code, provider_message, http_status)
    │   ├── ProviderThrottledError      provider rate limit (transient, retry_after)
    │   └── RecipientOptedOutError      the recipient has opted out at the provider (21610)
    └── StateStoreError                 the local state store (journal, outbox, index) failed

The Dataverse emulator and the SMS simulator are stand-ins, not the product: their refusals
live with them (``connector.emulators.*.errors``) and are not connector errors.

Raise with ``raise SomeError(...) from exc`` at every boundary so the cause is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypedDict, Unpack


class ErrorData(TypedDict, total=False):
    """The optional data any :class:`ConnectorError` takes as keyword arguments."""

    status: int  # HTTP status of a Dataverse answer (0 when no answer came)
    service_code: str | None  # Dataverse's ``error.code``, e.g. ``0x80040237``
    request_id: str | None  # Dataverse's ``x-ms-service-request-id``
    retry_after: float | None  # seconds to wait before retrying (``Retry-After``)
    category: str  # provider-independent failure category (``connector.domain.status``)
    provider_code: str | int | None  # the provider's raw error code
    provider_message: str | None  # the provider's raw error message
    http_status: int | None  # HTTP status of a provider answer
    raw: str  # the input as received (a phone number)
    reason: str  # why the input is refused, machine-readable


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose."""

    code: str = "connector_error"
    default_transient: bool = False
    detail_fields: ClassVar[tuple[str, ...]] = ()
    """The data this class reports in ``details``, in order (before the caller's details)."""
    detail_keys: ClassVar[Mapping[str, str]] = {}
    """A ``details`` key other than the attribute name, by attribute name."""

    # The data of ErrorData; these class values are the defaults, a keyword overrides them.
    status: int | None = None
    service_code: str | None = None
    request_id: str | None = None
    retry_after: float | None = None
    category: str | None = None
    provider_code: str | int | None = None
    provider_message: str | None = None
    http_status: int | None = None
    raw: str | None = None
    reason: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        transient: bool | None = None,
        details: Mapping[str, Any] | None = None,
        **data: Unpack[ErrorData],
    ) -> None:
        unknown = sorted(data.keys() - ErrorData.__optional_keys__)
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments {unknown}")
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.transient = self.default_transient if transient is None else transient
        for name, value in data.items():
            setattr(self, name, value)
        reported = {
            self.detail_keys.get(name, name): getattr(self, name) for name in self.detail_fields
        }
        self.details: dict[str, Any] = {**reported, **(details or {})}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for logs, the error log table and problem+json bodies."""
        return {
            "code": self.code,
            "message": self.message,
            "transient": self.transient,
            "details": self.details,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class ConfigurationError(ConnectorError):
    """Settings or configuration rows are missing or invalid."""

    code = "configuration_error"


class InvalidInputError(ConnectorError):
    """Input from a caller that can never succeed as sent (a 4xx, never retried)."""

    code = "invalid_input"


class InvalidPhoneNumberError(InvalidInputError):
    """A phone number that cannot be parsed, or parses but is not a valid number.

    ``raw`` is the text as received (``details["input"]``), ``reason`` why it is refused.
    """

    code = "invalid_phone_number"
    detail_fields = ("raw", "reason")
    detail_keys: ClassVar[Mapping[str, str]] = {"raw": "input"}
    raw: str = ""
    reason: str = ""


class UnprocessableError(InvalidInputError):
    """Well-formed input the connector cannot act on (HTTP 422): an ambiguous sender, a
    template value missing, an idempotency key reused with another request."""

    code = "unprocessable"


class RefusedError(ConnectorError):
    """A send the connector will not make (HTTP 409): a blocked number, no consent, quiet
    hours. Nothing was sent or stored."""

    code = "refused"


class TemplateError(InvalidInputError):
    """A template that cannot be rendered (unknown placeholder, missing value, bad syntax)."""

    code = "template_error"


class UnknownReferenceError(InvalidInputError):
    """An action names a user, team or row that Dataverse does not have (HTTP 422).

    Made from Dataverse's 404 for a write the caller asked for: the caller's input is wrong,
    not the service, so it is neither a 502 nor retried.
    """

    code = "unknown_reference"


class StaleLinkError(InvalidInputError):
    """A stored link (a change-tracking delta link) that cannot be re-based onto the Web API.

    The caller starts over without it (a full resync) instead of failing.
    """

    code = "stale_link"


class SignatureError(ConnectorError):
    """A webhook request whose signature does not verify: answered 403, nothing parsed."""

    code = "invalid_signature"


class UnauthorizedError(ConnectorError):
    """An API call without a valid ``X-API-Key`` or Entra ID bearer token."""

    code = "unauthorized"


class ForbiddenError(ConnectorError):
    """An authenticated caller whose own rights do not allow the action (Dataverse refused it
    for the user the request acts as): answered 403, nothing changed."""

    code = "forbidden"


class NotFoundError(ConnectorError):
    """A connector object (message, session, configuration) that does not exist."""

    code = "not_found"


class AuthenticationError(ConnectorError):
    """An access token could not be acquired. Names tenant and client id, never the secret."""

    code = "authentication_failed"


class DataverseError(ConnectorError):
    """The Dataverse Web API answered with an error or could not be reached.

    ``status`` is the HTTP status (0 when no answer came), ``service_code`` the
    ``error.code`` of the Web API envelope (e.g. ``0x80040237``), ``request_id`` the
    ``x-ms-service-request-id`` header, ``retry_after`` seconds from ``Retry-After``.
    """

    code = "dataverse_error"
    detail_fields = ("status", "service_code", "request_id", "retry_after")
    status: int = 0


class DataverseNotFoundError(DataverseError):
    """404: the addressed row, table or key does not exist."""

    code = "dataverse_not_found"


class DataverseConflictError(DataverseError):
    """409/412: a duplicate alternate key, or an If-Match / If-None-Match precondition failed."""

    code = "dataverse_conflict"


class DataverseThrottledError(DataverseError):
    """429: a service protection limit was hit; wait ``retry_after`` seconds."""

    code = "dataverse_throttled"
    default_transient = True


class DataverseUnavailableError(DataverseError):
    """5xx, a timeout or a connection failure: Dataverse may answer later."""

    code = "dataverse_unavailable"
    default_transient = True


class ProviderError(ConnectorError):
    """The SMS provider refused or failed a request.

    ``category`` is the provider-independent failure category (see
    ``connector.domain.status``), ``provider_code``/``provider_message`` the raw values.
    """

    code = "provider_error"
    detail_fields = ("category", "provider_code", "provider_message", "http_status", "retry_after")
    category: str = "unknown"


class ProviderThrottledError(ProviderError):
    """The provider's rate limit was hit (HTTP 429, Twilio 20429)."""

    code = "provider_throttled"
    default_transient = True


class RecipientOptedOutError(ProviderError):
    """The recipient opted out at the provider (Twilio 21610): consent must be updated."""

    code = "recipient_opted_out"


class StateStoreError(ConnectorError):
    """The local state store (journal, outbox, phone index) failed."""

    code = "state_store_error"
    default_transient = True


def is_transient(exc: BaseException) -> bool:
    """Whether retrying ``exc`` later may succeed.

    Connector errors know it themselves; connection-level built-in errors (timeouts, resets)
    are transient; anything else is not.
    """
    if isinstance(exc, ConnectorError):
        return exc.transient
    return isinstance(exc, TimeoutError | ConnectionError)
