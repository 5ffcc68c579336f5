"""Bookkeeping connections on a SQLite file autocommit each statement (the write lock is never
held between statements, nor while a claim's rows are read) and :func:`atomic` still makes
several statements one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from connector.domain.outbound import OutboundMessage
from connector.state.db import StateStore
from connector.state.group_commit import atomic, bookkeeping_engine, durable_engine
from connector.state.journal import Journal
from connector.state.outbox import Outbox


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    made = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    with made.engine.begin() as conn:
        conn.execute(text("CREATE TABLE marks (n INTEGER PRIMARY KEY)"))
    return made


def other_writer(store: StateStore) -> sqlite3.Connection:
    path = str(store.engine.url.database)
    return sqlite3.connect(path, isolation_level=None, timeout=0)


@pytest.mark.parametrize("make", [bookkeeping_engine, durable_engine])
def test_each_statement_commits_and_releases_the_write_lock_at_once(
    store: StateStore, make: Callable[[StateStore], Engine]
) -> None:
    engine = make(store)
    other = other_writer(store)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO marks (n) VALUES (1)"))
            assert not conn.connection.dbapi_connection.in_transaction  # type: ignore[union-attr]
            other.execute("BEGIN IMMEDIATE")  # the lock is free while the block goes on
            assert other.execute("SELECT n FROM marks").fetchall() == [(1,)]
            other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()


def test_atomic_writes_several_statements_together_or_not_at_all(store: StateStore) -> None:
    engine = bookkeeping_engine(store)
    try:
        with pytest.raises(RuntimeError), atomic(engine) as conn:
            conn.execute(text("INSERT INTO marks (n) VALUES (1)"))
            raise RuntimeError("half-way")
        with atomic(engine) as conn:
            conn.execute(text("INSERT INTO marks (n) VALUES (2)"))
            conn.execute(text("INSERT INTO marks (n) VALUES (3)"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT n FROM marks ORDER BY n")).scalars().all() == [2, 3]
    finally:
        engine.dispose()


def _lock_free_after_each_update(engine: Engine, path: str) -> list[bool]:
    """For every UPDATE run on ``engine`` from now on: whether another connection could take
    the write lock right after it ran, before its caller had read anything more."""
    free: list[bool] = []

    def check(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if not sql.lstrip().upper().startswith("UPDATE"):
            return
        other = sqlite3.connect(path, isolation_level=None, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            free.append(True)
        except sqlite3.OperationalError:
            free.append(False)
        finally:
            other.close()

    event.listen(engine, "after_cursor_execute", check)
    return free


def test_claims_never_hold_the_write_lock_while_their_rows_are_read(tmp_path: Path) -> None:
    """A claim's UPDATE takes and releases the lock inside one step; its rows are read after.
    (With ``RETURNING`` the lock was held until every row had been fetched, across GIL
    handoffs of a low-priority worker thread: webhook appends waited up to half a second.)"""
    path = tmp_path / "state.db"
    store = StateStore.from_url(f"sqlite:///{path}")
    journal, outbox = Journal(store), Outbox(store)
    try:
        for n in range(3):
            journal.append("twilio", f"SM{n}", {"n": str(n)}, now=100.0)
        message = OutboundMessage(
            id="m1",
            configuration_id="c1",
            to_number="+14155550100",
            from_number="+15005550006",
            body="Hello",
            session_id="s1",
            created_at=100.0,
            updated_at=100.0,
        )
        outbox.add(message, {})
        free = _lock_free_after_each_update(journal._books, str(path))
        assert len(journal.claim(now=101.0)) == 3
        outbox_free = _lock_free_after_each_update(outbox._books, str(path))
        assert len(outbox.claim_sends("c1", 10, lease_seconds=30, now=101.0)) == 1
        assert len(outbox.claim_unsynced(10, now=101.0)) == 1
        assert (free, outbox_free) == ([True], [True, True])
    finally:
        journal.close()
        outbox.close()
        store.close()
