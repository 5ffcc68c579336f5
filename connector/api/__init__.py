"""HTTP interface: FastAPI routes that verify, journal and answer provider webhooks, the
session API, health, readiness and metrics. Routes take the services they need through
``Annotated`` dependencies (:mod:`connector.api.deps`); :func:`create_app` includes them all."""

from connector.api.app import create_app
from connector.api.deps import InboundWebhooks, WebServices

__all__ = ["InboundWebhooks", "WebServices", "create_app"]
