"""Readiness checks for ``/readyz``: the state store answers, and Dataverse does.

The Dataverse check acquires a token and makes one cheap call (``WhoAmI``); its outcome,
good or bad, is kept for 30 seconds, so a load balancer probing every second costs Dataverse
two requests a minute, not sixty.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from connector.dataverse.client import DataverseClient

DATAVERSE_CHECK_TTL = 30.0


class CachedCheck:
    """Runs ``check`` at most once per ``ttl`` seconds; replays its last outcome meanwhile."""

    def __init__(
        self,
        check: Callable[[], object],
        *,
        ttl: float = DATAVERSE_CHECK_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._at: float | None = None
        self._error: Exception | None = None

    def __call__(self) -> None:
        with self._lock:
            now = self._clock()
            if self._at is None or now - self._at >= self._ttl:
                try:
                    self._check()
                    self._error = None
                except Exception as exc:  # replayed to every caller until the next check
                    self._error = exc
                self._at = now
            if self._error is not None:
                raise self._error


def dataverse_check(client: DataverseClient) -> CachedCheck:
    """A token and ``WhoAmI`` against the environment, cached for 30 s."""
    return CachedCheck(client.who_am_i)
