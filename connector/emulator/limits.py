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

from connector.errors import EmulatorFault


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

    def enter(self, user: str) -> None:
        """Count a request in, or raise the 429 fault it would get."""
        limits = self.limits
        now = self.clock()
        with self._lock:
            starts = self._starts[user]
            spent = self._spent[user]
            horizon = now - limits.window_seconds
            while starts and starts[0] <= horizon:
                starts.popleft()
            while spent and spent[0][0] <= horizon:
                spent.popleft()
            if limits.max_concurrent is not None and self._running[user] >= limits.max_concurrent:
                raise _fault(
                    "0x80072326",
                    f"Number of concurrent requests exceeded the limit of {limits.max_concurrent}.",
                    1,
                )
            if limits.requests_per_window is not None and len(starts) >= limits.requests_per_window:
                wait = starts[0] - horizon
                raise _fault(
                    "0x80072322",
                    "Number of requests exceeded the limit of "
                    f"{limits.requests_per_window} over time window of "
                    f"{limits.window_seconds:g} seconds.",
                    wait,
                )
            used = sum(ms for _, ms in spent)
            if (
                limits.execution_ms_per_window is not None
                and used >= limits.execution_ms_per_window
            ):
                wait = spent[0][0] - horizon
                raise _fault(
                    "0x80072321",
                    "Combined execution time of incoming requests exceeded "
                    f"limit of {limits.execution_ms_per_window:,.0f} milliseconds over "
                    f"time window of {limits.window_seconds:g} seconds. Decrease number "
                    "of concurrent requests or reduce the duration of requests and try "
                    "again later.",
                    wait,
                )
            starts.append(now)
            self._running[user] += 1

    def leave(self, user: str, elapsed_ms: float) -> None:
        """Count a finished request out and charge its execution time."""
        with self._lock:
            self._running[user] -= 1
            self._spent[user].append((self.clock(), elapsed_ms))


def _fault(code: str, message: str, wait: float) -> EmulatorFault:
    seconds = max(1, math.ceil(wait))
    return EmulatorFault(429, code, message, headers={"Retry-After": str(seconds)})
