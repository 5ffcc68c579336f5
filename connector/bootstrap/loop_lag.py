"""How late the web process's event loop runs, always measured, and who held it, on demand.

Every webhook is answered by one event loop, so anything that holds it (a synchronous call,
a long garbage collection, a burst of work) delays every webhook queued behind it. A
:class:`LoopLagMonitor` task sleeps ``interval`` seconds at a time and records by how much
each wake-up came late in the ``connector_event_loop_lag_seconds`` histogram (ten cheap
wake-ups a second; measured with the monotonic clock, not the loop's own cached time, so a
stall inside one loop iteration counts too).

With ``stall_seconds`` set (``CONNECTOR_SERVER__STALL_LOG_SECONDS``; off by default), two
more things run, for finding the cause of stalls: a watchdog thread that, while the loop is
late by more than that, logs ``event_loop.stalled`` with the stack the loop's thread is
running at that moment (once per stall), and a garbage-collector callback that times each
collection, so the ``event_loop.late`` line logged when the loop wakes up says how much of
the delay was collection (and of which generation).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from connector.log_config import get_logger

log = get_logger(__name__)

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_STACK_FRAMES = 25


def lag_histogram(registry: CollectorRegistry) -> Histogram:
    """``connector_event_loop_lag_seconds``: how late the loop's timed wake-ups came."""
    return Histogram(
        "connector_event_loop_lag_seconds",
        "How late the web event loop's periodic wake-ups ran (time the loop was held)",
        buckets=LAG_BUCKETS,
        registry=registry,
    )


class CollectionTimer:
    """Time spent in garbage collection (all threads), by generation, since the last read."""

    def __init__(self) -> None:
        self._started: float | None = None
        self._spent: dict[int, float] = {}
        self._lock = threading.Lock()

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            spent = time.perf_counter() - self._started
            self._started = None
            generation = int(info.get("generation", -1))
            with self._lock:
                self._spent[generation] = self._spent.get(generation, 0.0) + spent

    def take(self) -> dict[int, float]:
        """Seconds of collection per generation since the last call."""
        with self._lock:
            spent, self._spent = self._spent, {}
        return spent


class LoopLagMonitor:
    """Measures the event loop's lag; with ``stall_seconds``, also names what held it."""

    def __init__(
        self, histogram: Histogram, *, interval: float = 0.1, stall_seconds: float | None = None
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.histogram = histogram
        self.interval = interval
        self.stall_seconds = stall_seconds
        self._due = 0.0  # monotonic time the next wake-up is due (0: not running)
        self._loop_thread: int | None = None
        self._reported = 0.0  # the due time of the stall last logged
        self._stop = threading.Event()
        self._collections = CollectionTimer()

    async def _tick(self) -> None:
        self._loop_thread = threading.get_ident()
        while True:
            self._due = time.monotonic() + self.interval
            await asyncio.sleep(self.interval)
            lag = max(0.0, time.monotonic() - self._due)
            self.histogram.observe(lag)
            if self.stall_seconds is not None:
                collected = self._collections.take()
                if lag > self.stall_seconds:
                    log.warning(
                        "event_loop.late",
                        lag_ms=round(lag * 1000, 1),
                        gc_ms={g: round(s * 1000, 1) for g, s in sorted(collected.items())},
                    )

    def _watch(self) -> None:
        """The watchdog thread: log the loop thread's stack while it is late."""
        assert self.stall_seconds is not None
        step = max(0.005, self.stall_seconds / 4)
        while not self._stop.wait(step):
            due = self._due
            late = time.monotonic() - due
            if due == 0.0 or late <= self.stall_seconds or due == self._reported:
                continue
            self._reported = due
            frame = sys._current_frames().get(self._loop_thread or -1)
            stack = traceback.format_stack(frame, limit=_STACK_FRAMES) if frame else []
            log.warning(
                "event_loop.stalled",
                late_ms=round(late * 1000, 1),
                stack="".join(stack)[-6000:],
            )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[LoopLagMonitor]:
        """Measure while the block runs (on the loop to measure)."""
        task = asyncio.get_running_loop().create_task(self._tick(), name="loop-lag")
        watchdog = None
        if self.stall_seconds is not None:
            gc.callbacks.append(self._collections)
            watchdog = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
            watchdog.start()
        try:
            yield self
        finally:
            task.cancel()
            self._stop.set()
            if watchdog is not None:
                watchdog.join(timeout=5)
                gc.callbacks.remove(self._collections)
