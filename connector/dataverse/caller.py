"""Whom Dataverse requests act for: caller impersonation with ``CallerObjectId``.

Inside :func:`acting_as`, every Web API request made on this thread (or task) carries
``CallerObjectId: <Entra object id>``, so Dataverse runs it as that user and its own security
decides; the connector still authenticates as its application user (which needs
``prvActOnBehalfOfAnotherUser``). Outside, requests act as the application user. A context
variable, so concurrent requests for different users never mix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

HEADER = "CallerObjectId"
_caller: ContextVar[str | None] = ContextVar("dataverse_caller_object_id", default=None)


@contextmanager
def acting_as(object_id: str | None) -> Iterator[None]:
    """Send the enclosed Dataverse requests on behalf of ``object_id`` (None: as ourselves)."""
    token = _caller.set(object_id)
    try:
        yield
    finally:
        _caller.reset(token)


def caller_headers() -> dict[str, str]:
    """The impersonation header for the current context (empty when acting as ourselves)."""
    object_id = _caller.get()
    return {HEADER: object_id} if object_id else {}
