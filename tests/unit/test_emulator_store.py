"""The emulator's SQLite store: nested transactions are savepoints, and actions asked inside
them run once, after the outermost commit, unless their own level rolled back."""

from __future__ import annotations

import pytest

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
