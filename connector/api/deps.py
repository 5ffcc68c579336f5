"""FastAPI dependencies: reach the container and check API keys."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, cast

from fastapi import Request

from connector.errors import UnauthorizedError

if TYPE_CHECKING:
    from connector.bootstrap.container import Container


def container_of(request: Request) -> Container:
    """The composition root's container the app was built with."""
    return cast("Container", request.app.state.container)


def require_api_key(request: Request) -> None:
    """Reject API calls without a configured ``X-API-Key`` (constant-time comparison)."""
    presented = request.headers.get("x-api-key", "")
    keys = container_of(request).settings.api.keys
    if not presented or not any(
        hmac.compare_digest(presented.encode(), key.get_secret_value().encode()) for key in keys
    ):
        raise UnauthorizedError("a valid X-API-Key header is required")
