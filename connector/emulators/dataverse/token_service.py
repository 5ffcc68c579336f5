"""A minimal Entra ID token service so MSAL's client-credentials flow works against the emulator.

Serves ``GET /<tenant>/v2.0/.well-known/openid-configuration`` and ``POST
/<tenant>/oauth2/v2.0/token`` (``grant_type=client_credentials``) in the Entra v2 shapes MSAL
reads. MSAL insists on https authorities, so run the emulator with TLS and give MSAL
``instance_discovery=False`` and ``verify=<certificate>``. Issued tokens are opaque random
strings; with ``validate`` on, the Web API accepts only tokens issued here.

It also issues *user* access tokens for the connector's own API, as Entra would for a signed-in
agent (:meth:`TokenService.user_token`: RS256 JWTs with ``iss``, ``aud``, ``tid``, ``oid``,
``scp``, ``exp``/``nbf``/``iat``), and publishes their key set at ``GET
/<tenant>/discovery/v2.0/keys`` (named by ``jwks_uri`` in the discovery document).

For "Sign in with Microsoft" tests it runs the OIDC authorization-code flow with PKCE as MSAL
drives it: ``GET /<tenant>/oauth2/v2.0/authorize`` (the user is chosen by an ``oid`` query
parameter, or in a one-field form, the stand-in for Microsoft's sign-in page) redirects back
with a one-time code (or, for ``response_mode=form_post``, posts it back), and
``grant_type=authorization_code`` at the token endpoint checks the client, the redirect URI and
the S256 code verifier before answering with the user's access token (audience from the
requested ``api://<audience>/<scope>``), an ID token carrying the request's nonce, and
``client_info``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

TOKEN_LIFETIME = 3599
USER_SCOPE = "access_as_user"
CODE_LIFETIME = 300


@dataclass(frozen=True)
class _Grant:
    """What an authorization code stands for until it is redeemed (once)."""

    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    scope: str
    object_id: str
    issuer: str
    expires_at: float


class TokenService:
    """Issues bearer tokens to registered (or, when none are registered, any) clients."""

    def __init__(self, clients: dict[str, str] | None = None, validate: bool = False) -> None:
        self.clients = dict(clients or {})
        self.validate = validate
        self._issued: dict[str, float] = {}
        self._lock = threading.Lock()
        self._key: rsa.RSAPrivateKey | None = None  # made on first use: most runs need none
        self.key_id = secrets.token_hex(8)
        self._codes: dict[str, _Grant] = {}

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
            Route("/{tenant}/oauth2/v2.0/authorize", self._authorize, methods=["GET", "POST"]),
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

    def _authorize_refusal(self, params: dict[str, str]) -> Response | None:
        """Entra's answer to an authorize request it would not serve (None: acceptable)."""
        if params.get("response_type") != "code" or not params.get("redirect_uri", "").startswith(
            "http"
        ):
            return _error(400, "invalid_request", "AADSTS900144: response_type code required.")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return _error(400, "invalid_request", "AADSTS501491: PKCE (S256) is required.")
        if self.clients and params.get("client_id") not in self.clients:
            return _error(400, "unauthorized_client", "AADSTS700016: unknown application.")
        object_id = params.get("oid", "").strip()
        try:
            if object_id:
                uuid.UUID(object_id)
        except ValueError:
            return _error(400, "invalid_request", "AADSTS90002: the user's oid is not a GUID.")
        return None

    async def _authorize(self, request: Request) -> Response:
        """The sign-in page's stand-in: choose the user (``oid``), get sent back with a code."""
        params = {k: str(v) for k, v in request.query_params.items()}
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.form()).items()})
        refusal = self._authorize_refusal(params)
        if refusal is not None:
            return refusal
        object_id = params.get("oid", "").strip()
        if not object_id:
            return HTMLResponse(_SIGN_IN_FORM.format(hidden=_hidden(params)))
        tenant = request.path_params["tenant"]
        base = f"{request.url.scheme}://{request.url.netloc}/{tenant}"
        redirect_uri = params["redirect_uri"]
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Grant(
                client_id=params.get("client_id", ""),
                redirect_uri=redirect_uri,
                challenge=params["code_challenge"],
                nonce=params.get("nonce", ""),
                scope=params.get("scope", ""),
                object_id=object_id,
                issuer=f"{base}/v2.0",
                expires_at=time.time() + CODE_LIFETIME,
            )
        back = {
            "code": code,
            "state": params.get("state", ""),
            "client_info": _client_info(object_id, tenant),
        }
        if params.get("response_mode") == "form_post":  # what MSAL recommends: no code in URLs
            fields = "".join(
                f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
                for k, v in back.items()
            )
            return HTMLResponse(_FORM_POST.format(action=html.escape(redirect_uri), fields=fields))
        return RedirectResponse(f"{redirect_uri}?{urlencode(back)}", status_code=302)

    def _redeem(self, form: dict[str, str]) -> _Grant | Response:
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # a code works once
        if grant is None or grant.expires_at < time.time():
            return _error(400, "invalid_grant", "AADSTS70008: the code has expired or was used.")
        if grant.client_id != form.get("client_id") or grant.redirect_uri != form.get(
            "redirect_uri"
        ):
            return _error(400, "invalid_grant", "AADSTS50148: client or redirect_uri mismatch.")
        verifier = form.get("code_verifier", "").encode()
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if not secrets.compare_digest(expected.decode(), grant.challenge):
            return _error(400, "invalid_grant", "AADSTS501481: the code_verifier is not valid.")
        return grant

    def _user_tokens(self, grant: _Grant) -> dict[str, Any]:
        """The access token for the requested API scope, an ID token and client_info."""
        api = next((s for s in grant.scope.split() if "/" in s), "")
        resource, _, scope = api.removeprefix("api://").rpartition("/")
        tenant = grant.issuer.rstrip("/").split("/")[-2]
        issued = int(time.time())
        id_claims = {
            "iss": grant.issuer,
            "aud": grant.client_id,
            "tid": tenant,
            "oid": grant.object_id,
            "sub": grant.object_id,
            "nonce": grant.nonce,
            "preferred_username": f"{grant.object_id[:8]}@example.invalid",
            "ver": "2.0",
            "iat": issued,
            "nbf": issued,
            "exp": issued + TOKEN_LIFETIME,
        }
        signed = jwt.encode(id_claims, self._signing_key, "RS256", headers={"kid": self.key_id})
        access = self.user_token(grant.issuer, resource, grant.object_id, scope=scope or None)
        return {
            "token_type": "Bearer",
            "scope": api,
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": access,
            "id_token": signed,
            "client_info": _client_info(grant.object_id, tenant),
        }

    async def _token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        client_id = str(form.get("client_id", ""))
        grant_type = form.get("grant_type")
        if grant_type not in ("client_credentials", "authorization_code"):
            return _error(400, "unsupported_grant_type", "AADSTS70003: unsupported grant_type.")
        if self.clients and self.clients.get(client_id) != form.get("client_secret"):
            return _error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        if grant_type == "authorization_code":
            grant = self._redeem(form)
            if isinstance(grant, Response):
                return grant
            return JSONResponse(self._user_tokens(grant))
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


def _client_info(object_id: str, tenant: str) -> str:
    raw = json.dumps({"uid": object_id, "utid": tenant}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _hidden(params: dict[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
        if k != "oid"
    )


_SIGN_IN_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in (emulator)</title></head>
<body><main><h1>Sign in to your account (Dataverse emulator)</h1>
<form method="post">{hidden}
<label for="oid">Entra object id of the user</label>
<input id="oid" name="oid" required>
<button type="submit">Sign in</button>
</form></main></body></html>
"""


_FORM_POST = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signing in</title></head>
<body onload="document.forms[0].submit()"><form method="post" action="{action}">{fields}
<noscript><button type="submit">Continue</button></noscript></form></body></html>
"""


def _error(status: int, code: str, description: str) -> Response:
    return JSONResponse({"error": code, "error_description": description}, status_code=status)
