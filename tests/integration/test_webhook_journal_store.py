"""The journal and the session mirror on both backends (SQLite file, real PostgreSQL):
concurrent appends (group commit) dedupe exactly, workers never share a claimed row, racing
session saves converge on one session, request ids come back on claim and an older journal
gains the request id column at start-up."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from sqlalchemy import inspect, text

from connector.domain.conversation import SessionState
from connector.state.db import StateStore
from connector.state.journal import Journal
from connector.state.session_mirror import SessionCache


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


def test_appended_request_ids_come_back_on_claim(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    journal = Journal(store)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:  # grouped into shared commits
            list(
                pool.map(
                    lambda n: journal.append("twilio", f"SM{n}", {}, request_id=f"r{n}"), range(40)
                )
            )
        journal.append("twilio", "SM-none", {})
        entries = journal.claim(100)
        found = {e.event_id: e.request_id for e in entries}
        assert found == {**{f"SM{n}": f"r{n}" for n in range(40)}, "SM-none": None}
        assert {e.provider for e in entries} == {"twilio"}
    finally:
        journal.close()
        store.close()


def test_a_journal_made_before_the_request_id_column_gains_it(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    key = "INTEGER PRIMARY KEY" if store.dialect == "sqlite" else "SERIAL PRIMARY KEY"
    with store.engine.begin() as conn:  # the table as the first release made it, with a row
        conn.execute(text("DROP TABLE IF EXISTS ingress_journal"))
        conn.execute(
            text(
                f"CREATE TABLE ingress_journal (id {key},"
                " provider VARCHAR(32) NOT NULL, event_id VARCHAR(64) NOT NULL,"
                " received_at FLOAT NOT NULL, payload TEXT NOT NULL,"
                " status VARCHAR(16) NOT NULL, attempts INTEGER NOT NULL,"
                " next_attempt_at FLOAT NOT NULL, claim_token VARCHAR(32),"
                " lease_until FLOAT, last_error TEXT, done_at FLOAT,"
                " CONSTRAINT uq_ingress_journal_event UNIQUE (provider, event_id))"
            )
        )
        conn.execute(
            text(
                "INSERT INTO ingress_journal (provider, event_id, received_at, payload,"
                " status, attempts, next_attempt_at) VALUES"
                " ('twilio', 'SM-old', 1.0, '{\"Body\":\"old\"}', 'pending', 0, 1.0)"
            )
        )
    store.close()
    reopened = StateStore.from_url(state_url)
    journal = Journal(reopened)
    try:
        journal.append("twilio", "SM-new", {"Body": "new"}, now=2.0, request_id="req-new")
        old, new = journal.claim(now=10.0)
        assert (old.event_id, old.payload, old.request_id) == ("SM-old", {"Body": "old"}, None)
        assert (new.event_id, new.request_id) == ("SM-new", "req-new")
        another = StateStore.from_url(state_url)  # a second process: nothing left to add
        Journal(another).close()
        another.close()
    finally:
        journal.close()
        reopened.close()


def test_an_earlier_journal_trades_its_due_index_for_the_queue_and_done_ones(
    state_url: str,
) -> None:
    """Beside the earlier (status, next_attempt_at) index SQLite's planner sorted every due
    row to claim the first 50; it is dropped at start-up, the two indexes that replace it
    are made."""
    store = StateStore.from_url(state_url)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS ingress_journal"))
    Journal(store).close()
    with store.engine.begin() as conn:  # as an earlier version left it
        conn.execute(text("DROP INDEX ix_ingress_journal_queue"))
        conn.execute(
            text("CREATE INDEX ix_ingress_journal_due ON ingress_journal (status, next_attempt_at)")
        )
    store.close()
    reopened = StateStore.from_url(state_url)
    journal = Journal(reopened)
    try:
        names = {ix["name"] for ix in inspect(reopened.engine).get_indexes("ingress_journal")}
        assert {"ix_ingress_journal_queue", "ix_ingress_journal_done"} <= names
        assert "ix_ingress_journal_due" not in names
        journal.append("twilio", "SM-after", {"Body": "hi"}, now=1.0)
        assert [entry.event_id for entry in journal.claim(now=2.0)] == ["SM-after"]
    finally:
        journal.close()
        reopened.close()
