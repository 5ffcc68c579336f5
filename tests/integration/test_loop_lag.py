"""The event loop's lag is measured, and a stall is named: the stack that held the loop and
the garbage collection meanwhile."""

from __future__ import annotations

import asyncio
import gc
import time

from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from connector.bootstrap.loop_lag import CollectionTimer, LoopLagMonitor, lag_histogram


def _held_by_a_synchronous_call() -> None:
    time.sleep(0.3)


def _bucket(registry: CollectorRegistry, le: str) -> float:
    value = registry.get_sample_value("connector_event_loop_lag_seconds_bucket", {"le": le})
    return value or 0.0


def test_a_held_loop_shows_in_the_lag_histogram_and_is_not_logged_by_default() -> None:
    registry = CollectorRegistry()
    monitor = LoopLagMonitor(lag_histogram(registry), interval=0.02)

    async def run() -> None:
        async with monitor.running():
            await asyncio.sleep(0.1)
            _held_by_a_synchronous_call()
            await asyncio.sleep(0.1)

    with capture_logs() as logs:
        asyncio.run(run())
    assert _bucket(registry, "0.1") >= 3  # the quiet wake-ups
    assert _bucket(registry, "+Inf") - _bucket(registry, "0.1") == 1  # the held one
    assert logs == []


def test_a_stall_is_logged_with_the_stack_that_held_the_loop() -> None:
    registry = CollectorRegistry()
    monitor = LoopLagMonitor(lag_histogram(registry), interval=0.02, stall_seconds=0.1)

    async def run() -> None:
        async with monitor.running():
            await asyncio.sleep(0.05)
            _held_by_a_synchronous_call()
            await asyncio.sleep(0.1)

    with capture_logs() as logs:
        asyncio.run(run())
    (stalled,) = [line for line in logs if line["event"] == "event_loop.stalled"]
    assert "_held_by_a_synchronous_call" in stalled["stack"]
    late = [line for line in logs if line["event"] == "event_loop.late"]
    assert max(line["lag_ms"] for line in late) >= 250
    assert all(isinstance(line["gc_ms"], dict) for line in late)
    assert not [cb for cb in gc.callbacks if isinstance(cb, CollectionTimer)]  # gone with it


def test_collections_are_timed_by_generation() -> None:
    timer = CollectionTimer()
    gc.callbacks.append(timer)
    try:
        gc.collect()
        gc.collect(0)
    finally:
        gc.callbacks.remove(timer)
    spent = timer.take()
    assert spent[2] > 0 and spent[0] > 0
    assert timer.take() == {}  # read once
