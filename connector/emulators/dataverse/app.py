"""The emulator's ASGI app: ``create_emulator_app(db_path=None, limits=None, token_required=True)``.

Serves the Web API under ``/api/data/v9.2/`` (401 without a bearer token), an Entra-style
token service for MSAL (``/<tenant>/oauth2/v2.0/token``), ``GET /_emulator/stats`` and
``POST /_emulator/reset`` and ``GET /_emulator/callers`` (writes made with
``CallerObjectId``), and ``GET|POST|DELETE /_emulator/faults`` (the Web API misbehaving on
purpose for a window: see ``faults``). Each request runs in the thread pool (the store
serialises writes with its lock) so concurrent requests really overlap, which the
concurrency limit of the service-protection simulation needs.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.faults import FaultInjector
from connector.emulators.dataverse.limits import Limits, Throttle
from connector.emulators.dataverse.protocol import (
    API_PREFIX,
    MAX_BODY,
    EmuRequest,
    EmuResponse,
    fault_response,
)
from connector.emulators.dataverse.router import Emulator
from connector.emulators.dataverse.token_service import TokenService

MAX_URL = 32768  # Dataverse's GET URL limit; longer queries go inside $batch


def create_emulator_app(
    db_path: str | None = None,
    limits: Limits | None = None,
    token_required: bool = True,
    emulator: Emulator | None = None,
    tokens: TokenService | None = None,
) -> Starlette:
    """Build the app; ``db_path=None`` keeps everything in memory.

    ``tokens`` configures the built-in token service (by default any client gets a token and
    any bearer token is accepted).
    """
    core = emulator or Emulator(db_path)
    token_service = tokens or TokenService()
    endpoints = _Endpoints(core, Throttle(limits or Limits()), token_service, token_required)
    faults = FaultInjector(core.stats)
    routes = [
        Route("/_emulator/faults", faults.control, methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/stats", endpoints.stats, methods=["GET"]),
        Route("/_emulator/reset", endpoints.reset, methods=["POST"]),
        Route("/_emulator/callers", endpoints.callers, methods=["GET"]),
        Route(
            API_PREFIX + "/{path:path}",
            endpoints.api,
            methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
        ),
        *token_service.routes(),
    ]
    app = _FaultyStarlette(routes=routes)
    app.state.emulator = core
    app.state.faults = faults
    return app


class _FaultyStarlette(Starlette):
    """Starlette with the fault injector outermost, where it can reach the connection."""

    def build_middleware_stack(self) -> ASGIApp:
        injector: FaultInjector = self.state.faults
        injector.app = super().build_middleware_stack()
        return injector


class _Endpoints:
    """The HTTP edge: authentication, size bounds, throttling, statistics."""

    def __init__(
        self, core: Emulator, throttle: Throttle, tokens: TokenService, token_required: bool
    ) -> None:
        self.core = core
        self.throttle = throttle
        self.tokens = tokens
        self.token_required = token_required

    async def api(self, request: Request) -> Response:
        core = self.core
        core.stats["requests"] += 1
        core.stats[f"method_{request.method}"] += 1
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        refusal = self._refusal(request, token)
        if refusal is not None:
            return refusal
        body = await request.body()
        if len(body) > MAX_BODY:
            return _fault(EmulatorRequestError(413, "", "Request too large."))
        raw_path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0]
        path = raw_path[len(API_PREFIX) :].lstrip("/")
        base = f"{request.url.scheme}://{request.url.netloc}"
        req = EmuRequest.build(
            request.method, path, request.url.query, dict(request.headers), body=body, base_url=base
        )
        if path.startswith("$batch"):
            core.stats["batch_requests"] += 1
        user = token or "anonymous"
        try:
            self.throttle.enter(user)
        except EmulatorRequestError as fault:
            core.stats["throttled"] += 1
            return _fault(fault)
        started = time.perf_counter()
        try:
            response = await run_in_threadpool(core.handle, req)
        finally:
            self.throttle.leave(user, (time.perf_counter() - started) * 1000)
        return _to_starlette(response)

    def _refusal(self, request: Request, token: str) -> Response | None:
        if self.token_required and not self.tokens.accepts(token):
            reason = "is not valid" if token else "is missing"
            fault = EmulatorRequestError(401, "", f"Bearer token {reason}: InvalidAuthTicket")
            return _to_starlette(fault_response(fault), {"WWW-Authenticate": "Bearer"})
        if len(request.url.path) + len(request.url.query) > MAX_URL:
            return _fault(EmulatorRequestError(414, "", "The URL is too long."))
        return None

    async def stats(self, request: Request) -> Response:
        return JSONResponse(_stats(self.core))

    async def callers(self, request: Request) -> Response:
        """Writes made with ``CallerObjectId``: the audit trail's "on behalf of" names."""
        return JSONResponse([dataclasses.asdict(c) for c in self.core.callers])

    async def reset(self, request: Request) -> Response:
        await run_in_threadpool(self.core.reset)
        return Response(status_code=204)


def _fault(fault: EmulatorRequestError) -> Response:
    return _to_starlette(fault_response(fault))


def _stats(core: Emulator) -> dict[str, Any]:
    stats = core.stats
    return {
        "requests": stats["requests"],
        "by_method": {
            key.removeprefix("method_"): value
            for key, value in stats.items()
            if key.startswith("method_")
        },
        "batch_requests": stats["batch_requests"],
        "batch_parts": stats["batch_parts"],
        "throttled": stats["throttled"],
        "faults": stats["faults"],
    }


def _to_starlette(response: EmuResponse, extra: dict[str, str] | None = None) -> Response:
    headers = {**response.headers, **(extra or {}), "x-ms-service-request-id": str(uuid.uuid4())}
    media = headers.pop("Content-Type", None)
    return Response(response.body, status_code=response.status, headers=headers, media_type=media)
