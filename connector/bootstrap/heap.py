"""A long-running process's heap once it has started: collected once, then frozen.

``connector serve`` starts with a large heap of objects that live as long as the process
(FastAPI and pydantic models, SQLAlchemy tables and compiled statements, the OpenAPI schema,
the Dataverse schema). CPython's full (generation 2) collection walks every tracked object,
and it runs whenever the long-lived part has grown by a quarter: measured at 24-189 ms per
collection while ``connector serve`` started, each one a pause of the event loop that
answers webhooks. :func:`settle` runs after start-up: it does the lazy imports the first
request would otherwise pay for (anyio's asyncio backend: measured as a 43 ms first-request
pause), collects once, and moves everything left into the permanent generation
(:func:`gc.freeze`), which later collections skip: a full collection then walks only what
was made since start-up.
"""

from __future__ import annotations

import gc
import importlib

_FIRST_REQUEST_IMPORTS = ("anyio._backends._asyncio",)


def settle() -> None:
    """Import what the first request would, collect, and freeze what start-up made."""
    for name in _FIRST_REQUEST_IMPORTS:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()
