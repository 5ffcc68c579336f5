"""The one place where a Web API answer the caller did not expect becomes a DataverseError.

Used by the client for whole responses and by the ``$batch`` parser for each part, so a
failure reads the same wherever it happened. The class, and so whether the error is transient,
is decided here by HTTP status first (the documented advice: the ``error.code`` hex is
"frequently empty" and messages are localized); the envelope's code and message, the
``x-ms-service-request-id`` (``REQ_ID`` inside a batch) and ``Retry-After`` are kept as data.

``maybe_applied`` (in ``details``) says whether Dataverse may have carried out the request
although it failed (a gateway timeout, a dropped connection after sending): the retry policy
never repeats such a request unless it is idempotent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from connector.errors import (
    DataverseConflictError,
    DataverseError,
    DataverseNotFoundError,
    DataverseThrottledError,
    DataverseUnavailableError,
)

MAX_RETRY_AFTER = 300.0
_CODES_BY_STATUS = {
    400: "dataverse_bad_request",
    401: "dataverse_unauthorized",
    403: "dataverse_forbidden",
    413: "dataverse_request_too_large",
}
# Server errors are transient (errors.py's tree): a 500 is Dataverse's "unexpected error"
# (a SQL timeout, a deadlock, a node restarting), and parking a message on it would withhold
# it until someone replays it. 501 (not implemented) and other 5xx stay permanent.
_UNAVAILABLE = {500, 502, 503, 504}
# A 500 or a gateway error may come after Dataverse did the work; 503 and 429 are refusals
# up front.
_MAYBE_APPLIED = {500, 502, 504}


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value by case-insensitive name (batch parts are plain dicts)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), capped; None if absent."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def envelope(body: bytes | str | Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """``(error.code, error.message)`` of a Web API error body; Nones when there is none."""
    data: Any = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body or "null")
        except ValueError:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            return None, text.strip()[:500] or None
    if not isinstance(data, Mapping) or not isinstance(data.get("error"), Mapping):
        return None, None
    error = data["error"]
    code = error.get("code")
    message = error.get("message")
    return (str(code) if code else None), (str(message) if message else None)


def error_for(
    status: int,
    headers: Mapping[str, str],
    body: bytes | str | Mapping[str, Any] | None,
    *,
    method: str,
    path: str,
) -> DataverseError:
    """The DataverseError for an unexpected ``status`` answer to ``method path``."""
    service_code, text = envelope(body)
    request_id = header(headers, "x-ms-service-request-id") or header(headers, "REQ_ID")
    retry_after = parse_retry_after(header(headers, "Retry-After"))
    message = f"{method} {path} failed: HTTP {status}"
    if service_code:
        message += f" ({service_code})"
    if text:
        message += f": {text}"
    kwargs: dict[str, Any] = {
        "status": status,
        "service_code": service_code,
        "request_id": request_id,
        "retry_after": retry_after,
        "details": {"method": method, "path": path, "maybe_applied": status in _MAYBE_APPLIED},
    }
    if status == 404:
        return DataverseNotFoundError(message, **kwargs)
    if status in (409, 412):
        return DataverseConflictError(message, **kwargs)
    if status == 429:
        return DataverseThrottledError(message, **kwargs)
    if status in _UNAVAILABLE:
        return DataverseUnavailableError(message, **kwargs)
    return DataverseError(message, code=_CODES_BY_STATUS.get(status), **kwargs)


def unreachable(
    exc: BaseException, *, method: str, path: str, maybe_applied: bool
) -> DataverseUnavailableError:
    """The error for a request that got no answer (connection refused, reset, timeout)."""
    return DataverseUnavailableError(
        f"{method} {path} failed: no answer from Dataverse ({type(exc).__name__})",
        details={"method": method, "path": path, "maybe_applied": maybe_applied},
    )


def is_duplicate(error: DataverseError) -> bool:
    """Whether a create-only write (``If-None-Match: *``) failed because the row exists.

    For such a write a 412 can only mean that; a duplicate-key code means it on any write.
    """
    if not isinstance(error, DataverseConflictError):
        return False
    return error.status == 412 or error.service_code in {"0x80040237", "0x80060892"}
