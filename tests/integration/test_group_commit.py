"""The group committer on a SQLite file: waiters on an event loop share commits and are
answered on their loop, a locked database is waited out, a failed batch does not poison the
writer's kept connection, and a waiter that gives up gets a clear error."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from connector.errors import StateStoreError
from connector.state.db import StateStore
from connector.state.group_commit import GroupCommitter, append_engine
from connector.state.journal import Journal
from connector.state.journal_file import open_journal_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'rows.db'}", tables=[])
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE rows (value TEXT NOT NULL UNIQUE)"))
    yield store
    store.close()


class Writes:
    """The write function: inserts each row, records each batch; a row "boom" fails its
    whole batch with a database error, a row "conflict" is refused alone."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, conn: Connection, rows: Sequence[str]) -> list[str | Exception]:
        self.gate.wait(timeout=30)
        self.batches.append(list(rows))
        results: list[str | Exception] = []
        for row in rows:
            if row == "boom":
                conn.execute(text("INSERT INTO no_such_table VALUES (1)"))
            if row == "conflict":
                results.append(ValueError("refused"))
                continue
            conn.execute(text("INSERT INTO rows (value) VALUES (:v)"), {"v": row})
            results.append(row.upper())
        return results


def _committed(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return sorted(value for (value,) in db.execute("SELECT value FROM rows"))


def test_waiters_on_a_loop_share_commits_and_each_gets_its_own_answer(
    store: StateStore, tmp_path: Path
) -> None:
    writes = Writes()
    committer = GroupCommitter(append_engine(store), writes)

    async def many() -> list[str | BaseException]:
        writes.gate.clear()  # the first batch waits, so the others queue up behind it
        waiting = [committer.submit_async(f"r{n}") for n in range(50)]
        waiting.append(committer.submit_async("conflict"))
        tasks = [asyncio.ensure_future(w) for w in waiting]
        await asyncio.sleep(0.2)
        writes.gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        answers = asyncio.run(many())
    finally:
        committer.close()
    assert answers[:50] == [f"R{n}" for n in range(50)]
    assert isinstance(answers[50], ValueError)
    assert len(writes.batches) < 10  # shared transactions, not one per row
    assert _committed(tmp_path / "rows.db") == sorted(f"r{n}" for n in range(50))


def test_a_locked_database_is_waited_out(store: StateStore, tmp_path: Path) -> None:
    committer = GroupCommitter(append_engine(store), Writes())
    holder = sqlite3.connect(tmp_path / "rows.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    threading.Timer(0.3, holder.execute, ["COMMIT"]).start()
    try:
        assert asyncio.run(committer.submit_async("late", timeout=10)) == "LATE"
    finally:
        committer.close()
        holder.close()
    assert _committed(tmp_path / "rows.db") == ["late"]


def test_a_failed_batch_fails_its_waiters_and_the_next_batch_commits(
    store: StateStore, tmp_path: Path
) -> None:
    committer = GroupCommitter(append_engine(store), Writes())
    try:
        with pytest.raises(StateStoreError, match="OperationalError"):
            committer.submit("boom")
        assert committer.submit("after") == "AFTER"
        assert asyncio.run(committer.submit_async("async-after")) == "ASYNC-AFTER"
    finally:
        committer.close()
    assert _committed(tmp_path / "rows.db") == ["after", "async-after"]


def test_a_waiter_that_gives_up_gets_a_state_store_error_and_the_loop_goes_on(
    store: StateStore, tmp_path: Path
) -> None:
    writes = Writes()
    committer = GroupCommitter(append_engine(store), writes)

    async def give_up() -> str:
        writes.gate.clear()
        with pytest.raises(StateStoreError, match="no commit within"):
            await committer.submit_async("slow", timeout=0.2)
        writes.gate.set()  # the row commits after all; its answer finds nobody waiting
        return await committer.submit_async("next", timeout=10)

    try:
        assert asyncio.run(give_up()) == "NEXT"
    finally:
        committer.close()
    assert _committed(tmp_path / "rows.db") == ["next", "slow"]


def test_an_error_that_is_not_a_lock_is_not_retried(store: StateStore) -> None:
    calls: list[int] = []

    def failing(conn: Connection, rows: Sequence[str]) -> list[str]:
        calls.append(len(rows))
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("disk I/O error"))

    committer = GroupCommitter(append_engine(store), failing)
    try:
        with pytest.raises(StateStoreError):
            committer.submit("x")
    finally:
        committer.close()
    assert calls == [1]


def test_a_journal_append_waits_out_a_lock_held_on_the_journal_file(tmp_path: Path) -> None:
    journal = Journal(open_journal_store(f"sqlite:///{tmp_path / 'state.db'}"))
    journal.append("twilio", "SM0", {})  # the writer's connection is open
    holder = sqlite3.connect(
        tmp_path / "state.journal.db", isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN IMMEDIATE")  # the worker's claim holds the write lock
    threading.Timer(0.3, holder.execute, ["COMMIT"]).start()
    try:
        appended = asyncio.run(journal.append_async("twilio", "SM1", {"Body": "hi"}, timeout=10))
        assert not appended.duplicate
        assert asyncio.run(journal.append_async("twilio", "SM1", {}, timeout=10)).duplicate
    finally:
        journal.close()
        journal.store.close()
        holder.close()
