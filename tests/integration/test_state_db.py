"""The state store opens SQLite in WAL mode, creates its tables and answers readiness."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from connector.errors import StateStoreError
from connector.state.db import StateStore


def test_sqlite_file_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    store.ping()
    store.close()


def test_in_memory_store_is_shared_across_connections() -> None:
    store = StateStore.from_url("sqlite://")
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM t")).scalar() == 1


def test_store_in_a_missing_directory_fails_with_a_state_store_error(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match="cannot create"):
        StateStore.from_url(f"sqlite:///{tmp_path / 'no-such-dir' / 'state.db'}")


def test_store_creates_tables_and_answers_on_both_backends(state_url: str) -> None:
    from sqlalchemy import Column, Integer, MetaData, Table, insert, select

    probe = Table("probe_rows", MetaData(), Column("id", Integer, primary_key=True))
    store = StateStore.from_url(state_url)
    store.ping()
    probe.create(store.engine)
    with store.engine.begin() as conn:
        conn.execute(insert(probe).values(id=7))
    with store.engine.connect() as conn:
        assert conn.execute(select(probe.c.id)).scalar() == 7
    assert store.dialect in ("sqlite", "postgresql")
    store.close()
