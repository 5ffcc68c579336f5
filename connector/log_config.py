"""Structured logging: JSON lines in production, readable colours on a terminal.

:func:`configure_logging` is called once by the composition root or the CLI. A processor
masks any event field whose name says it is a secret (token, secret, password, authorization,
signature...) so that a careless ``log.info(..., auth_token=...)`` still leaks nothing;
:class:`~pydantic.SecretStr` values render as ``**********`` by themselves.

Correlation: ids bound with :func:`correlation` (a request id, the provider's message id,
the journal row id...) are added to every line logged in the same context (thread or asyncio
task) until the block ends, by structlog's ``merge_contextvars`` processor, for our own loggers
and the standard library's alike. The webhook binds a request id, the journal row keeps it,
and the worker binds it again when it takes the row, so one message can be followed from the
webhook to its Dataverse write across processes.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

MASK = "**********"
_SECRET_KEY = re.compile(
    r"(secret|token|password|passwd|authorization|api[_-]?key|signature|credential|fernet)",
    re.IGNORECASE,
)


def _mask_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key):
        return MASK
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    return value


def mask_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace values of secret-looking keys with a mask."""
    for key in list(event_dict):
        if key != "event":
            event_dict[key] = _mask_value(key, event_dict[key])
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Set up structlog and the standard library's logging to render the same way.

    ``fmt`` is ``json``, ``console`` or ``auto`` (console when ``stream`` is a terminal).
    """
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger bound to ``name`` (lazy: configuration made later still applies)."""
    return structlog.stdlib.get_logger(name)


REQUEST_ID = "request_id"
_INBOUND_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def new_request_id() -> str:
    """A fresh request id: 16 random hex characters."""
    return secrets.token_hex(8)


def accept_request_id(value: str | None) -> str:
    """``value`` (e.g. a caller's ``X-Request-ID`` header) if it is a safe id, else a new one.

    Safe means 1 to 64 characters of letters, digits and ``._:-``: it fits the journal's
    column and cannot forge log lines or fields."""
    if value and _INBOUND_ID.fullmatch(value):
        return value
    return new_request_id()


def current_request_id() -> str | None:
    """The request id bound in this context, or None."""
    value = structlog.contextvars.get_contextvars().get(REQUEST_ID)
    return None if value is None else str(value)


@contextmanager
def correlation(request_id: str | None = None, **ids: str | None) -> Iterator[str]:
    """Bind ``request_id`` and ``ids`` (``provider_message_id=``, ``journal_id=``...) to every
    line logged in this context until the block ends; yields the request id.

    Without ``request_id``, the one already bound is kept (a nested block only adds ids), or
    a new one is made. Ids passed as None are left out. On exit, the bindings from before the
    block are restored (an outer block's ids come back, ids it did not have are gone).
    """
    rid = request_id or current_request_id() or new_request_id()
    bound = {key: value for key, value in ids.items() if value is not None}
    with structlog.contextvars.bound_contextvars(**{REQUEST_ID: rid}, **bound):
        yield rid
