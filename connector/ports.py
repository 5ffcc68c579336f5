"""Protocols the core (``domain/`` and ``services/``) depends on.

Adapters in ``dataverse/``, ``providers/`` and ``state/`` implement them; shipped fakes in
``connector/testing/`` implement them too, so services are tested against state, not mocks.
Each area adds its port here as it is built.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    """Where the current time comes from (injected so tests control it)."""

    def now(self) -> float:
        """Seconds since the epoch, UTC."""
        ...
