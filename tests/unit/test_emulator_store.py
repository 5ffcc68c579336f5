"""The emulator's SQLite store: nested transactions are savepoints, and actions asked inside
them run once, after the outermost commit, unless their own level rolled back."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from connector.emulators.dataverse.metadata import new_id
from connector.emulators.dataverse.store import Store


def _rows(store: Store) -> list[str]:
    return [row["name"] for row in store.select("SELECT name FROM t ORDER BY name")]


def test_actions_run_after_the_outer_commit_and_die_with_their_own_savepoint() -> None:
    store = Store()
    store.conn.execute("CREATE TABLE t (name TEXT)")
    ran: list[str] = []
    with store.transaction():
        store.after_commit(lambda: ran.append("outer"))
        with store.transaction():
            store.conn.execute("INSERT INTO t VALUES ('kept')")
            store.after_commit(lambda: ran.append("kept"))
        with pytest.raises(RuntimeError), store.transaction():
            store.conn.execute("INSERT INTO t VALUES ('undone')")
            store.after_commit(lambda: ran.append("undone"))
            with store.transaction():  # released into a level that then rolls back
                store.after_commit(lambda: ran.append("undone, deeper"))
            raise RuntimeError("this change set fails")
        assert ran == []  # nothing runs before the outermost commit
    assert ran == ["outer", "kept"]
    assert _rows(store) == ["kept"]
    store.after_commit(lambda: ran.append("outside"))  # no transaction: at once
    assert ran[-1] == "outside"


def test_a_rolled_back_transaction_runs_nothing_and_leaves_the_store_usable() -> None:
    store = Store()
    store.conn.execute("CREATE TABLE t (name TEXT)")
    ran: list[str] = []
    with pytest.raises(RuntimeError), store.transaction():
        store.conn.execute("INSERT INTO t VALUES ('gone')")
        store.after_commit(lambda: ran.append("gone"))
        raise RuntimeError("the whole batch fails")
    with store.transaction():
        store.conn.execute("INSERT INTO t VALUES ('next')")
        store.after_commit(lambda: ran.append("next"))
    assert ran == ["next"]
    assert _rows(store) == ["next"]


def test_new_ids_are_guids_that_sort_in_the_order_they_were_minted() -> None:
    minted = []
    for _ in range(5):
        minted.append(new_id())
        time.sleep(0.002)  # the order is the millisecond's; within one it is random
    minted += [new_id() for _ in range(1000)]
    assert minted[:5] == sorted(minted[:5])
    assert len(set(minted)) == len(minted)
    for value in minted:
        parsed = uuid.UUID(value)
        assert str(parsed) == value  # lowercase, hyphenated
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)


def test_a_file_store_keeps_its_wal_short(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "dv.db"))
    store.conn.execute("CREATE TABLE t (name TEXT)")
    for n in range(300):  # a commit each, as the emulator's requests
        with store.transaction():
            store.conn.execute("INSERT INTO t VALUES (?)", [f"{n:04d}" * 500])
    wal = tmp_path / "dv.db-wal"
    # SQLite's default (1,000 pages before a checkpoint) let it grow past 600 frames.
    assert wal.stat().st_size < 120 * (4096 + 24)
    assert len(_rows(store)) == 300
    store.close()
