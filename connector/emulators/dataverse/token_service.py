"""A minimal Entra ID token service so MSAL's client-credentials flow works against the emulator.

Serves ``GET /<tenant>/v2.0/.well-known/openid-configuration`` and
``POST /<tenant>/oauth2/v2.0/token`` (``grant_type=client_credentials``) in the Entra v2
shapes MSAL reads. MSAL insists on https authorities, so run the emulator with TLS and give
MSAL ``instance_discovery=False`` and ``verify=<certificate>``. Issued tokens are opaque
random strings; with ``validate`` on, the Web API accepts only tokens issued here.

It also issues *user* access tokens for the connector's own API, as Entra would for a signed-in
agent (:meth:`TokenService.user_token`: RS256 JWTs with ``iss``, ``aud``, ``tid``, ``oid``,
``scp``, ``exp``/``nbf``/``iat``), and publishes their key set at
``GET /<tenant>/discovery/v2.0/keys`` (named by ``jwks_uri`` in the discovery document).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN_LIFETIME = 3599
USER_SCOPE = "access_as_user"


class TokenService:
    """Issues bearer tokens to registered (or, when none are registered, any) clients."""

    def __init__(self, clients: dict[str, str] | None = None, validate: bool = False) -> None:
        self.clients = dict(clients or {})
        self.validate = validate
        self._issued: dict[str, float] = {}
        self._lock = threading.Lock()
        self._key: rsa.RSAPrivateKey | None = None  # made on first use: most runs need none
        self.key_id = secrets.token_hex(8)

    @property
    def _signing_key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._key is None:
                self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._key

    def jwks(self) -> dict[str, Any]:
        """The published key set (public keys only)."""
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._signing_key.public_key()))
        public.update({"kid": self.key_id, "use": "sig", "alg": "RS256"})
        return {"keys": [public]}

    def user_token(
        self,
        issuer: str,
        audience: str,
        object_id: str,
        *,
        tenant_id: str = "",
        lifetime: int = TOKEN_LIFETIME,
        name: str = "",
        scope: str | None = USER_SCOPE,
        now: float | None = None,
    ) -> str:
        """A v2.0 user access token for ``object_id``, signed with the published key
        (``scope`` None: no ``scp`` claim, like an app-only token)."""
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": issuer,
            "aud": audience,
            "tid": tenant_id or issuer.rstrip("/").split("/")[-2],
            "oid": object_id,
            "sub": secrets.token_hex(16),
            "name": name,
            "ver": "2.0",
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime,
        }
        if scope is not None:
            claims["scp"] = scope
        key = self._signing_key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.key_id})

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
            Route("/{tenant}/discovery/v2.0/keys", self._keys, methods=["GET"]),
        ]

    async def _keys(self, request: Request) -> Response:
        return JSONResponse(self.jwks())

    async def _discovery(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        base = f"{request.url.scheme}://{request.url.netloc}/{tenant}"
        return JSONResponse(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
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
