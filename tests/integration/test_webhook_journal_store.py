"""The journal and the session mirror on both backends (SQLite file, real PostgreSQL):
concurrent appends (group commit) dedupe exactly, workers never share a claimed row, and
racing session saves converge on one session."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from connector.domain.conversation import SessionState
from connector.state.caches import SessionCache
from connector.state.db import StateStore
from connector.state.journal import Journal


def test_concurrent_appends_dedupe_exactly(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    journal = Journal(store)
    try:
        sids = [f"SM{n % 50:032d}" for n in range(400)]  # every sid sent 8 times, at once
        with ThreadPoolExecutor(max_workers=32) as pool:
            results = list(pool.map(lambda sid: journal.append("twilio", sid, {"s": sid}), sids))
        firsts = [r for r in results if not r.duplicate]
        assert len(firsts) == 50
        by_sid: dict[str, set[int]] = {}
        for sid, result in zip(sids, results, strict=True):
            by_sid.setdefault(sid, set()).add(result.id)
        assert all(len(ids) == 1 for ids in by_sid.values())
        assert journal.counts().pending == 50
    finally:
        journal.close()
        store.close()


def test_racing_workers_never_claim_the_same_row(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    journal = Journal(store)
    try:
        for n in range(300):
            journal.append("twilio", f"SM{n}", {})
        claimed: list[int] = []
        lock = threading.Lock()

        def worker() -> None:
            while batch := journal.claim(7, lease_seconds=60):
                with lock:
                    claimed.extend(e.id for e in batch)
                journal.mark_done_many(batch)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(claimed) == len(set(claimed)) == 300
        assert journal.counts().done == 300
    finally:
        journal.close()
        store.close()


def test_racing_session_opens_converge_on_one_session(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    cache = SessionCache(store)
    try:
        start = threading.Barrier(8)

        def open_one(n: int) -> bool:
            session = SessionState(f"00000000-0000-0000-0000-{n:012d}", "cfg", "+1415", 0, 60)
            start.wait()
            return cache.save(session, None)

        with ThreadPoolExecutor(max_workers=8) as pool:
            won = list(pool.map(open_one, range(8)))
        assert won.count(True) == 1
        current = cache.current("cfg", "+1415")
        assert current is not None and won[int(current.id[-12:])]
    finally:
        store.close()


def _session(n: int, version: int = 0, unread: int = 0) -> SessionState:
    return SessionState(
        f"00000000-0000-0000-0000-{n:012d}", "cfg", "+1415", 0, 60, version=version, unread=unread
    )


def test_save_many_closes_one_session_and_opens_the_next_together(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    cache = SessionCache(store)
    try:
        first = _session(1)
        assert cache.save(first, None)
        stored = cache.current("cfg", "+1415")
        assert stored is not None and stored.version == 1
        counted = replace(stored, unread=3)
        second = _session(2, unread=1)
        assert cache.save_many([(counted, stored), (second, counted)])
        assert cache.current("cfg", "+1415") == replace(second, version=1)
        assert cache.get(first.id) == replace(counted, version=2)
    finally:
        store.close()


def test_save_many_writes_nothing_when_a_later_change_conflicts(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    cache = SessionCache(store)
    try:
        assert cache.save(_session(1), None)
        stored = cache.current("cfg", "+1415")
        assert stored is not None
        other = _session(3)
        assert cache.save(other, stored)  # another worker opened a session meanwhile
        counted = replace(stored, unread=5)
        assert not cache.save_many([(counted, stored), (_session(2), counted)])
        assert cache.get(stored.id) == stored  # the first change was rolled back too
        assert cache.get(_session(2).id) is None
        assert cache.current("cfg", "+1415") == replace(other, version=1)
    finally:
        store.close()
