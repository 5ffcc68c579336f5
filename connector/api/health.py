"""Liveness, readiness and Prometheus metrics.

``/healthz`` answers while the process runs; ``/readyz`` runs the container's readiness
checks (Dataverse token, state store) and answers 503 naming the failing ones; ``/metrics``
exposes the container's Prometheus registry.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connector import __version__
from connector.api.deps import container_of

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Every readiness check passes (Dataverse reachable, state store open)."""
    container = container_of(request)
    results: dict[str, Any] = {}
    ready = True
    for name, check in container.readiness_checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:
            ready = False
            results[name] = f"failed: {type(exc).__name__}"
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": results},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus text exposition of the container's registry."""
    return Response(generate_latest(container_of(request).metrics), media_type=CONTENT_TYPE_LATEST)
