"""The FastAPI application, built from a container by :func:`create_app`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from connector import __version__
from connector.api import health
from connector.api.problems import install_problem_handlers

if TYPE_CHECKING:
    from connector.bootstrap.container import Container


def create_app(container: Container) -> FastAPI:
    """Build the web application around an already-wired container."""
    app = FastAPI(
        title="Dataverse SMS connector",
        version=__version__,
        description="Two-way SMS for Microsoft Dataverse through Twilio.",
    )
    app.state.container = container
    install_problem_handlers(app)
    app.include_router(health.router)
    for router in container.routers:
        app.include_router(router)
    return app
