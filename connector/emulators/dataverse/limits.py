"""Service-protection simulation: Dataverse's three limits, per user, off by default.

Number of requests and combined execution time are counted over a sliding window;
concurrent requests are counted as they run. A request over a limit is answered with 429,
``Retry-After`` in seconds and the documented codes (``0x80072322`` requests,
``0x80072321`` execution time, ``0x80072326`` concurrency). A ``$batch`` is one request.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from connector.emulators.dataverse.errors import EmulatorRequestError


@dataclass(frozen=True)
class Limits:
    """Limits per user; ``None`` switches a limit off (Dataverse: 6000, 1,200,000 ms, 52)."""

    requests_per_window: int | None = None
    window_seconds: float = 300.0
    max_concurrent: int | None = None
    execution_ms_per_window: float | None = None


class Throttle:
    """Admits or refuses requests for each user under :class:`Limits`."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._lock = threading.Lock()
        self._starts: dict[str, deque[float]] = defaultdict(deque)
        self._spent: dict[str, deque[tuple[float, float]]] = defaultdict(deque)
        self._running: dict[str, int] = defaultdict(int)
        self._refused: dict[str, int] = defaultdict(int)

    def enter(self, user: str) -> None:
        """Count a request in, or raise the 429 fault it would get.

        A client that keeps pushing while refused sees ``Retry-After`` grow by a second for
        each refusal in a row, as the service's own back-off grows.
        """
        now = self.clock()
        with self._lock:
            refusal = self._refusal(user, now)
            if refusal is not None:
                code, message, wait = refusal
                self._refused[user] += 1
                raise _fault(code, message, wait + self._refused[user] - 1)
            self._refused[user] = 0
            self._starts[user].append(now)
            self._running[user] += 1

    def _refusal(self, user: str, now: float) -> tuple[str, str, float] | None:
        limits = self.limits
        starts, spent = self._starts[user], self._spent[user]
        horizon = now - limits.window_seconds
        while starts and starts[0] <= horizon:
            starts.popleft()
        while spent and spent[0][0] <= horizon:
            spent.popleft()
        if limits.max_concurrent is not None and self._running[user] >= limits.max_concurrent:
            message = (
                f"Number of concurrent requests exceeded the limit of {limits.max_concurrent}."
            )
            return "0x80072326", message, 1
        window = f"over time window of {limits.window_seconds:g} seconds"
        if limits.requests_per_window is not None and len(starts) >= limits.requests_per_window:
            message = (
                f"Number of requests exceeded the limit of {limits.requests_per_window} {window}."
            )
            return "0x80072322", message, starts[0] - horizon
        budget = limits.execution_ms_per_window
        if budget is not None and sum(ms for _, ms in spent) >= budget:
            message = (
                "Combined execution time of incoming requests exceeded limit of "
                f"{budget:,.0f} milliseconds {window}. Decrease number of concurrent requests "
                "or reduce the duration of requests and try again later."
            )
            return "0x80072321", message, spent[0][0] - horizon
        return None

    def leave(self, user: str, elapsed_ms: float) -> None:
        """Count a finished request out and charge its execution time."""
        with self._lock:
            self._running[user] -= 1
            self._spent[user].append((self.clock(), elapsed_ms))


def _fault(code: str, message: str, wait: float) -> EmulatorRequestError:
    seconds = max(1, math.ceil(wait))
    return EmulatorRequestError(429, code, message, headers={"Retry-After": str(seconds)})
