"""A minimal Entra ID token service so MSAL's client-credentials flow works against the emulator.

Serves ``GET /<tenant>/v2.0/.well-known/openid-configuration`` and
``POST /<tenant>/oauth2/v2.0/token`` (``grant_type=client_credentials``) in the Entra v2
shapes MSAL reads. MSAL insists on https authorities, so run the emulator with TLS and give
MSAL ``instance_discovery=False`` and ``verify=<certificate>``. Issued tokens are opaque
random strings; with ``validate`` on, the Web API accepts only tokens issued here.
"""

from __future__ import annotations

import secrets
import threading
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN_LIFETIME = 3599


class TokenService:
    """Issues bearer tokens to registered (or, when none are registered, any) clients."""

    def __init__(self, clients: dict[str, str] | None = None, validate: bool = False) -> None:
        self.clients = dict(clients or {})
        self.validate = validate
        self._issued: dict[str, float] = {}
        self._lock = threading.Lock()

    def accepts(self, token: str) -> bool:
        """Whether the Web API should accept ``token``."""
        if not self.validate:
            return bool(token)
        with self._lock:
            expiry = self._issued.get(token)
        return expiry is not None and expiry > time.time()

    def routes(self) -> list[Route]:
        """The discovery and token endpoints."""
        return [
            Route(
                "/{tenant}/v2.0/.well-known/openid-configuration", self._discovery, methods=["GET"]
            ),
            Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
        ]

    async def _discovery(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        base = f"{request.url.scheme}://{request.url.netloc}/{tenant}"
        return JSONResponse(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            }
        )

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        client_id = str(form.get("client_id", ""))
        if form.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type", "AADSTS70003: only client_credentials.")
        if self.clients and self.clients.get(client_id) != form.get("client_secret"):
            return _error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._issued[token] = time.time() + TOKEN_LIFETIME
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "ext_expires_in": TOKEN_LIFETIME,
                "access_token": token,
            }
        )


def _error(status: int, code: str, description: str) -> Response:
    return JSONResponse({"error": code, "error_description": description}, status_code=status)
