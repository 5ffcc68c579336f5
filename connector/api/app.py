"""The FastAPI application: every router, always, around the services it is given.

Request bodies of the API are bounded (:class:`~connector.api.bounds.BodyLimit`, 413 past
``WebServices.max_request_bytes``); provider webhooks bound their own, tighter.

:func:`create_app` includes the same routes whatever was wired, so ``/openapi.json`` is
stable (``connector openapi`` prints it with nothing wired at all), and every route has a
stable ``operation_id`` for clients such as Power Automate.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, FastAPI

from connector import __version__
from connector.api import (
    bulk,
    catalog,
    consent,
    dataverse_webhook,
    health,
    inbox,
    messages,
    resolution,
    sessions,
    subscriptions,
    webhooks,
)
from connector.api.bounds import BodyLimit
from connector.api.deps import WebServices
from connector.api.problems import NotEnabledError, install_problem_handlers


def create_app(
    services: WebServices | None = None, *, extra_routers: Iterable[APIRouter] = ()
) -> FastAPI:
    """The web application around ``services`` (none: routes answer 503 ``not_enabled``)."""
    app = FastAPI(
        title="Dataverse SMS connector",
        version=__version__,
        description="Two-way SMS for Microsoft Dataverse through Twilio.",
    )
    app.state.services = services or WebServices()
    install_problem_handlers(app)
    limit = app.state.services.max_request_bytes
    app.add_middleware(BodyLimit, limit=limit, exempt=(webhooks.WEBHOOKS_PREFIX,))
    for router in (
        health.router,
        webhooks.router,
        dataverse_webhook.router,
        bulk.router,
        catalog.router,
        messages.router,
        consent.router,
        sessions.router,
        inbox.router,
        resolution.router,
        subscriptions.router,
        *extra_routers,
    ):
        app.include_router(router)
    return app


__all__ = ["NotEnabledError", "create_app"]
