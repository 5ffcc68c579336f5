"""Where the ingress journal lives: a SQLite file of its own beside a SQLite state store.

SQLite has one writer per database file. When the journal shared the state file, a webhook's
durable append waited for whatever the worker was writing at that moment (the session mirror,
lead claims, conversation recency, the phone index...). Those writes run in Python between
their statements, in a process whose threads compete for the interpreter lock and, on a busy
machine, for the CPU: the inbound benchmark measured the worker holding the state file's write
lock for 86-234 ms while webhook appends retried up to 127 times (webhook p99 50-90 ms, max
90-145 ms at 50/s). In a file of its own the journal's writers are only the appends, the
worker's claims and done marks (single statements, the lock held inside one SQLite step), so
a webhook waits for the disk, not for the worker.

A file state store ``state.db`` keeps its journal in ``state.journal.db``; an in-memory
SQLite store or PostgreSQL (row locks, no single writer) keeps it in the store itself.
:func:`take_over` moves the rows an earlier version left in the state file's
``ingress_journal`` table into the journal file (every row, done ones too: they are the
dedupe record of recent provider ids), so nothing pending is stranded by an upgrade.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, inspect, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from connector.errors import StateStoreError
from connector.state.db import StateStore
from connector.state.journal_table import journal_table


def journal_url(state_url: str) -> str:
    """The journal's database URL for a state store URL (``state.db`` -> ``state.journal.db``
    beside it; anything but a SQLite file: the state URL itself)."""
    parsed = make_url(state_url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return state_url
    path = Path(str(parsed.database))
    own = path.with_name(f"{path.stem}.journal{path.suffix or '.db'}")
    return parsed.set(database=str(own)).render_as_string(hide_password=False)


def open_journal_store(state_url: str) -> StateStore:
    """The store holding the journal for ``state_url`` (only the journal's table, when it is a
    file of its own)."""
    url = journal_url(state_url)
    return StateStore.from_url(url, tables=[journal_table] if url != state_url else None)


def take_over(journal_store: StateStore, legacy: StateStore, *, batch: int = 500) -> int:
    """Move every ``ingress_journal`` row of ``legacy`` into ``journal_store``; how many moved.

    Copy, then delete: a crash in between leaves rows in both, and the next run's copy finds
    them by their ``(provider, event_id)`` and only deletes. Row ids are kept (the CLI's
    ``journal replay ID`` and the logs name them) unless an id is taken meanwhile by a new
    append, in which case that batch gets new ids. A no-op when both are one database.
    """
    if journal_store.engine.url == legacy.engine.url:
        return 0
    try:
        if journal_table.name not in inspect(legacy.engine).get_table_names():
            return 0
        moved = 0
        while rows := _oldest(legacy, batch):
            _copy(journal_store, rows)
            with legacy.engine.begin() as conn:
                ids = [row["id"] for row in rows]
                conn.execute(delete(journal_table).where(journal_table.c.id.in_(ids)))
            moved += len(rows)
        return moved
    except SQLAlchemyError as exc:
        raise StateStoreError(f"cannot move the journal to its file: {exc}") from exc


def _oldest(store: StateStore, batch: int) -> list[dict[str, object]]:
    query = select(journal_table).order_by(journal_table.c.id).limit(batch)
    with store.engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def _copy(store: StateStore, rows: list[dict[str, object]]) -> None:
    """Insert ``rows`` (a repeated event id is skipped) keeping their ids when free."""
    keys = ["provider", "event_id"]  # only SQLite files have a journal file of their own
    statement = sqlite_insert(journal_table).on_conflict_do_nothing(index_elements=keys)
    try:
        with store.engine.begin() as conn:
            conn.execute(statement, rows)
    except IntegrityError:  # an id already taken by a new append: new ids for this batch
        with store.engine.begin() as conn:
            conn.execute(statement, [{k: v for k, v in r.items() if k != "id"} for r in rows])
