"""The FastAPI application: every router, always, around the services it is given.

Provider webhooks are answered in front of the framework (:class:`ConnectorApp`). Request
bodies of the API are bounded (:class:`~connector.api.bounds.BodyLimit`, 413 past
``WebServices.max_request_bytes``); provider webhooks bound their own, tighter.

:func:`create_app` includes the same routes whatever was wired, so ``/openapi.json`` is
stable (``connector openapi`` prints it with nothing wired at all), and every route has a
stable ``operation_id`` for clients such as Power Automate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager

from fastapi import APIRouter, FastAPI
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

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


class ConnectorApp(FastAPI):
    """FastAPI, with the provider webhooks answered in front of its middleware stack.

    A provider webhook (:func:`~connector.api.webhooks.webhook_answer`) is answered here
    directly: the framework's middleware, routing, request object and dependency solving
    cost more CPU per webhook than verifying and journaling it (about a quarter of the
    event loop's time under a steady 200 webhooks/s). Every other request, and the OpenAPI
    document (which declares the webhook routes), is the framework's.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            answer = webhooks.webhook_answer(scope["method"], scope["path"])
            if answer is not None:
                try:
                    services = self.state.services
                    response = await webhooks.answered(services, scope, receive, answer)
                except ClientDisconnect:
                    return  # nothing was journaled and nobody waits for an answer
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    services: WebServices | None = None,
    *,
    extra_routers: Iterable[APIRouter] = (),
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """The web application around ``services`` (none: routes answer 503 ``not_enabled``);
    ``lifespan`` runs around the server's life (where the server runs the ASGI lifespan)."""
    app = ConnectorApp(
        title="Dataverse SMS connector",
        version=__version__,
        description="Two-way SMS for Microsoft Dataverse through Twilio.",
        lifespan=lifespan,
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


__all__ = ["ConnectorApp", "NotEnabledError", "create_app"]
