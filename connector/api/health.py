"""Liveness, readiness and Prometheus metrics.

``/healthz`` answers while the process runs; ``/readyz`` runs the readiness checks the
composition root gave the app (the state store, and Dataverse: a token and a cheap call,
cached for 30 s) and answers 503 naming the failing ones; ``/metrics`` exposes the process's
Prometheus registry.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connector import __version__
from connector.api.deps import Services
from connector.errors import ConnectorError

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="getHealth")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz", operation_id="getReadiness")
def readyz(wired: Services) -> JSONResponse:
    """Every readiness check passes (state store open, Dataverse reachable)."""
    results: dict[str, Any] = {}
    ready = True
    for name, check in wired.readiness.items():
        try:
            check()
            results[name] = "ok"
        except ConnectorError as exc:
            ready = False
            results[name] = f"failed: {exc.code}"
        except Exception as exc:
            ready = False
            results[name] = f"failed: {type(exc).__name__}"
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": results},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", operation_id="getMetrics")
def metrics(wired: Services) -> Response:
    """Prometheus text exposition of the process's registry."""
    return Response(generate_latest(wired.metrics), media_type=CONTENT_TYPE_LATEST)
