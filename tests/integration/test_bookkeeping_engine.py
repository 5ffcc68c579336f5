"""Bookkeeping connections on a SQLite file autocommit each statement (the write lock is never
held between statements) and :func:`atomic` still makes several statements one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from connector.state.db import StateStore
from connector.state.group_commit import atomic, bookkeeping_engine, durable_engine


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
