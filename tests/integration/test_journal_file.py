"""The journal in a SQLite file of its own: appends never wait for the state file's writers,
and rows an earlier version kept in the state file are moved over without loss or repeat."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from huey import MemoryHuey
from sqlalchemy import inspect, select

from connector.bootstrap import build
from connector.settings import load_settings
from connector.state.db import StateStore
from connector.state.journal import Journal
from connector.state.journal_file import journal_url, open_journal_store, take_over
from connector.state.journal_table import journal_table


def state_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def test_a_state_file_gets_a_journal_file_beside_it_and_other_stores_keep_theirs() -> None:
    assert journal_url("sqlite:////srv/sms/state.db") == "sqlite:////srv/sms/state.journal.db"
    assert journal_url("sqlite:///state") == "sqlite:///state.journal.db"
    assert journal_url("sqlite://") == "sqlite://"
    pg = "postgresql://connector:pw@db.example/sms"
    assert journal_url(pg) == pg


def test_the_journal_file_holds_only_the_journal(tmp_path: Path) -> None:
    store = open_journal_store(state_url(tmp_path))
    try:
        assert inspect(store.engine).get_table_names() == [journal_table.name]
        assert (tmp_path / "state.journal.db").exists()
    finally:
        store.close()


def test_an_append_does_not_wait_for_a_writer_holding_the_state_file(tmp_path: Path) -> None:
    state = StateStore.from_url(state_url(tmp_path))
    journal = Journal(open_journal_store(state_url(tmp_path)))
    holder = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the worker in the middle of a state write
        started = time.monotonic()
        appended = journal.append("twilio", "SM1", {"Body": "hi"})
        assert time.monotonic() - started < 1.0  # not the 10 s lock wait
        assert not appended.duplicate
        assert journal.counts().pending == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        journal.close()
        state.close()


def legacy_journal(tmp_path: Path) -> list[int]:
    """Rows as an earlier version left them in the state file: two pending, one done."""
    old = Journal(StateStore.from_url(state_url(tmp_path)))
    try:
        ids = [
            old.append("twilio", f"SM{n}", {"Body": f"m{n}"}, now=1000.0 + n).id for n in range(3)
        ]
        (first,) = old.claim(1, lease_seconds=60)
        assert old.mark_done(first)
        return ids
    finally:
        old.close()


def test_rows_left_in_the_state_file_move_with_their_ids_and_status(tmp_path: Path) -> None:
    ids = legacy_journal(tmp_path)
    state = StateStore.from_url(state_url(tmp_path))
    store = open_journal_store(state_url(tmp_path))
    try:
        assert take_over(store, state) == 3
        assert take_over(store, state) == 0  # nothing left behind
        journal = Journal(store)
        with store.engine.connect() as conn:
            moved = conn.execute(
                select(journal_table.c.id, journal_table.c.status).order_by(journal_table.c.id)
            ).all()
        assert [row.id for row in moved] == ids
        assert [row.status for row in moved] == ["done", "pending", "pending"]
        assert journal.append("twilio", "SM0", {"Body": "m0"}).duplicate  # dedupe kept
        assert [entry.event_id for entry in journal.claim(10, lease_seconds=60)] == ["SM1", "SM2"]
        with state.engine.connect() as conn:
            assert conn.execute(select(journal_table.c.id)).all() == []
        journal.close()
    finally:
        store.close()
        state.close()


def test_a_move_cut_off_between_copy_and_delete_repeats_nothing(tmp_path: Path) -> None:
    legacy_journal(tmp_path)
    state = StateStore.from_url(state_url(tmp_path))
    store = open_journal_store(state_url(tmp_path))
    try:
        with state.engine.connect() as conn:  # copied, then the process died: rows in both
            rows = [dict(row) for row in conn.execute(select(journal_table)).mappings()]
        with store.engine.begin() as conn:
            conn.execute(journal_table.insert(), rows[:2])
        assert take_over(store, state) == 3
        journal = Journal(store)
        counts = journal.counts()
        assert (counts.pending, counts.done) == (2, 1)
        journal.close()
    finally:
        store.close()
        state.close()


def test_an_id_taken_by_a_new_append_gives_the_moved_row_a_new_id(tmp_path: Path) -> None:
    ids = legacy_journal(tmp_path)
    state = StateStore.from_url(state_url(tmp_path))
    store = open_journal_store(state_url(tmp_path))
    journal = Journal(store)
    try:
        fresh = journal.append("twilio", "SM-new", {"Body": "new"})
        assert fresh.id == ids[0]  # the new file numbers from 1 too
        assert take_over(store, state) == 3
        with store.engine.connect() as conn:
            events = set(conn.execute(select(journal_table.c.event_id)).scalars())
        assert events == {"SM-new", "SM0", "SM1", "SM2"}
    finally:
        journal.close()
        store.close()
        state.close()


def test_the_connector_keeps_its_journal_beside_a_state_file_and_adopts_old_rows(
    tmp_path: Path,
) -> None:
    legacy_journal(tmp_path)
    settings = load_settings(
        env={
            "CONNECTOR_STATE__URL": state_url(tmp_path),
            "CONNECTOR_DATAVERSE__URL": "https://org.example.com",
            "CONNECTOR_DATAVERSE__TOKEN": "x",
        }
    )
    connector = build(settings, huey=MemoryHuey("test", results=False))
    try:
        journal = connector.journal
        assert str(journal.store.engine.url).endswith("state.journal.db")
        counts = journal.counts()
        assert (counts.pending, counts.done) == (2, 1)
        assert journal.append("twilio", "SM1", {"Body": "m1"}).duplicate
        with connector.state.engine.connect() as conn:
            assert conn.execute(select(journal_table.c.id)).all() == []
    finally:
        connector.close()
