"""The sending rate on both state-store back ends (a SQLite file and a real PostgreSQL server):
threads and processes racing on one key, new or known, each get their own evenly spaced slot."""

from __future__ import annotations

import itertools
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from connector.state.db import StateStore
from connector.state.send_rate import StateStoreSendRate

NOW = 1_700_000_000.0


def _evenly_spaced(slots: list[float], step: float) -> bool:
    ordered = sorted(slots)
    return all(abs((b - a) - step) < 1e-6 for a, b in itertools.pairwise(ordered))


def _racing_threads(url: str, key: str, count: int, threads: int) -> list[float]:
    store = StateStore.from_url(url)
    try:
        rate = StateStoreSendRate(store)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(lambda _: rate.reserve(key, 20.0, NOW), range(count)))
    finally:
        store.close()


def _process(url: str, start: Any, out: Any) -> None:
    """A process: 4 threads reserving 100 slots of a key none has used, begun together."""
    start.wait(timeout=60)
    out.put(_racing_threads(url, "new-key", 100, 4))


def test_threads_racing_on_a_new_key_get_distinct_evenly_spaced_slots(state_url: str) -> None:
    slots = _racing_threads(state_url, "+15005550006", 200, 8)
    assert len(set(slots)) == 200
    assert min(slots) == NOW and _evenly_spaced(slots, 0.05)


def test_two_processes_of_four_threads_share_one_key(state_url: str) -> None:
    StateStore.from_url(state_url).close()
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_process, args=(state_url, start, out)) for _ in "ab"]
    for worker in workers:
        worker.start()
    slots = [slot for _ in workers for slot in out.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=10)
        assert worker.exitcode == 0
    assert len(set(slots)) == 200
    assert min(slots) == NOW and _evenly_spaced(slots, 0.05)


def test_the_rate_row_is_one_per_key(state_url: str) -> None:
    from sqlalchemy import func, select

    from connector.state.send_rate import send_rate_table

    store = StateStore.from_url(state_url)
    rate = StateStoreSendRate(store)
    for key in ("a", "b", "a", "c", "b"):
        rate.reserve(key, 1.0, NOW)
    with store.engine.connect() as conn:
        rows = dict(conn.execute(select(send_rate_table.c.key, send_rate_table.c.next_at)).all())
        assert conn.execute(select(func.count()).select_from(send_rate_table)).scalar() == 3
    assert rows == {"a": NOW + 2.0, "b": NOW + 2.0, "c": NOW + 1.0}
    store.close()
