"""The sending rate held in a SQLite state-store file: slots spaced by 1/rate, one slot per
call across threads and processes, and an idle key restarting at ``now``."""

from __future__ import annotations

import itertools
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from connector.state.db import StateStore
from connector.state.send_rate import StateStoreSendRate

NOW = 1_700_000_000.0


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def _reserve_many(url: str, count: int, start: Any, out: Any) -> None:
    """A process: ``count`` reservations at 10 per second, all asked at ``NOW``, begun
    together with the other process (``start`` is a shared barrier); slots put on ``out``."""
    store = StateStore.from_url(url)
    try:
        rate = StateStoreSendRate(store)
        start.wait(timeout=60)
        out.put([rate.reserve("k", 10.0, NOW) for _ in range(count)])
    finally:
        store.close()


def _evenly_spaced(slots: list[float], step: float) -> bool:
    ordered = sorted(slots)
    return all(abs((b - a) - step) < 1e-6 for a, b in itertools.pairwise(ordered))


def test_slots_are_spaced_by_one_over_the_rate(store_url: str) -> None:
    rate = StateStoreSendRate(StateStore.from_url(store_url))
    slots = [rate.reserve("+15005550006", 4.0, NOW) for _ in range(5)]
    assert slots[0] == NOW
    assert slots == pytest.approx([NOW + i * 0.25 for i in range(5)], abs=1e-6)


def test_each_key_has_its_own_slots(store_url: str) -> None:
    rate = StateStoreSendRate(StateStore.from_url(store_url))
    assert rate.reserve("a", 1.0, NOW) == NOW
    assert rate.reserve("b", 1.0, NOW) == NOW
    assert rate.reserve("a", 1.0, NOW) == pytest.approx(NOW + 1.0)


def test_an_idle_key_starts_at_now_not_in_the_past(store_url: str) -> None:
    rate = StateStoreSendRate(StateStore.from_url(store_url))
    for _ in range(3):
        rate.reserve("k", 2.0, NOW)
    later = NOW + 60.0
    assert rate.reserve("k", 2.0, later) == later
    assert rate.reserve("k", 2.0, later) == pytest.approx(later + 0.5)


def test_a_sender_behind_its_slots_waits_for_the_next_free_one(store_url: str) -> None:
    rate = StateStoreSendRate(StateStore.from_url(store_url))
    rate.reserve("k", 1.0, NOW)
    rate.reserve("k", 1.0, NOW)
    assert rate.reserve("k", 1.0, NOW + 0.5) == pytest.approx(NOW + 2.0)


def test_a_rate_that_is_not_positive_is_refused(store_url: str) -> None:
    rate = StateStoreSendRate(StateStore.from_url(store_url))
    with pytest.raises(ValueError, match="positive"):
        rate.reserve("k", 0.0, NOW)


def test_concurrent_threads_get_distinct_evenly_spaced_slots(store_url: str) -> None:
    rate = StateStoreSendRate(StateStore.from_url(store_url))
    with ThreadPoolExecutor(max_workers=8) as pool:
        slots = list(pool.map(lambda _: rate.reserve("k", 10.0, NOW), range(200)))
    assert len(set(slots)) == 200
    assert min(slots) == NOW and _evenly_spaced(slots, 0.1)


def test_two_processes_get_distinct_evenly_spaced_slots(store_url: str) -> None:
    StateStore.from_url(store_url).close()  # the table exists before both start
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_reserve_many, args=(store_url, 150, start, out)) for _ in "ab"
    ]
    for worker in workers:
        worker.start()
    slots = [slot for _ in workers for slot in out.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=10)
        assert worker.exitcode == 0
    assert len(set(slots)) == 300
    assert min(slots) == NOW and _evenly_spaced(slots, 0.1)
