"""RFC 9457 ``application/problem+json`` error responses with a stable ``code``.

Every error that leaves the HTTP API goes through here, so callers (Power Automate flows,
other systems) always get the same shape: ``type``, ``title``, ``status``, ``detail``, ``code``
and, where useful, ``errors`` or ``retry_after``. Internal details never leak.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from connector import errors
from connector.log_config import get_logger

PROBLEM_JSON = "application/problem+json"
log = get_logger(__name__)


class NotEnabledError(errors.ConnectorError):
    """This process was built without the service a route needs (HTTP 503)."""

    code = "not_enabled"


_STATUS_BY_ERROR: list[tuple[type[errors.ConnectorError], int]] = [
    (NotEnabledError, 503),
    (errors.SignatureError, 403),
    (errors.UnauthorizedError, 401),
    (errors.ForbiddenError, 403),
    (errors.UnprocessableError, 422),
    (errors.RefusedError, 409),
    (errors.UnknownReferenceError, 422),
    (errors.InvalidInputError, 400),
    (errors.NotFoundError, 404),
    (errors.ConfigurationError, 409),
    (errors.DataverseThrottledError, 503),
    (errors.ProviderThrottledError, 503),
    (errors.DataverseError, 502),
    (errors.ProviderError, 502),
    (errors.AuthenticationError, 502),
    (errors.StateStoreError, 503),
]


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build one problem+json response (``headers`` are added to the answer)."""
    body: dict[str, Any] = {
        "type": f"https://connector.local/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    answer_headers = dict(headers or {})
    if extra.get("retry_after") is not None:
        answer_headers["Retry-After"] = str(int(extra["retry_after"]) or 1)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=answer_headers)


def status_for(exc: errors.ConnectorError) -> int:
    """The HTTP status an error maps to."""
    for kind, status in _STATUS_BY_ERROR:
        if isinstance(exc, kind):
            return status
    return 500


def problem_for(exc: errors.ConnectorError) -> JSONResponse:
    """The answer to one of our errors (a 5xx is logged; its detail never leaks)."""
    status = status_for(exc)
    if status >= 500:
        log.warning("request_failed", code=exc.code, error=exc.message)
    detail = exc.message if status < 500 else "an upstream service failed; try again later"
    return problem(
        status,
        exc.code,
        exc.code.replace("_", " ").capitalize(),
        detail,
        retry_after=exc.details.get("retry_after"),
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error, ours or the framework's, answer as problem+json."""

    @app.exception_handler(errors.ConnectorError)
    async def _connector_error(_request: Request, exc: errors.ConnectorError) -> JSONResponse:
        return problem_for(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg"))}
            for e in exc.errors()
        ]
        return problem(422, "validation_failed", "Request validation failed", errors=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            exc.status_code, f"http_{exc.status_code}"
        )
        return problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error_type=type(exc).__name__)
        return problem(500, "internal_error", "Internal error")
