"""The composition root: settings in, a wired connector out.

``build(settings, **overrides)`` (:mod:`connector.bootstrap.root`) is the only place that
reads settings to open connections; :mod:`~connector.bootstrap.process` starts what a serve or
worker process runs; :mod:`~connector.bootstrap.local_mode` runs the embedded stand-ins when
no Dataverse URL is configured (the only production path to ``connector.emulators``).
"""

from typing import Any

from connector.api.app import create_app
from connector.bootstrap.process import start_serve, warm
from connector.bootstrap.root import Connector, build

__all__ = ["Connector", "build", "openapi_document", "start_serve", "warm"]


def openapi_document() -> dict[str, Any]:
    """The HTTP API's OpenAPI document, built with nothing wired (no Dataverse, no state)."""
    return create_app().openapi()
