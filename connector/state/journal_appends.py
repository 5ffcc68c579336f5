"""The journal's appends: the row a verified event starts as, and the insert that stores it.

A webhook's event goes to one writer thread that inserts every event queued meanwhile in one
transaction (:class:`~connector.state.group_commit.GroupCommitter`, run by
:class:`~connector.state.journal.Journal`); :class:`JournalInsert` is what that thread runs
per batch: the insert, or for an event already there (a repeated webhook) the lookup of its
row, both compiled once for the driver (the append path is the webhook's latency).
:func:`journal_row` gives the parameters those statements were compiled for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from connector.state.driver_statement import DriverStatement
from connector.state.journal_table import PENDING, journal_table

_ROW_KEYS = (
    "provider",
    "event_id",
    "received_at",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "request_id",
)


@dataclass(frozen=True, slots=True)
class Appended:
    """The outcome of :meth:`Journal.append`: the row id and whether it was already there."""

    id: int
    duplicate: bool


class JournalInsert:
    """The journal's insert and the lookup of a duplicate, compiled for ``appends`` (the
    journal's append engine)."""

    def __init__(self, dialect: str, appends: Engine) -> None:
        make = sqlite_insert if dialect == "sqlite" else pg_insert
        c = journal_table.c
        insert = (
            make(journal_table)
            .on_conflict_do_nothing(index_elements=["provider", "event_id"])
            .returning(c.id)
        )
        find = select(c.id).where(
            c.provider == bindparam("provider"), c.event_id == bindparam("event_id")
        )
        self._insert = DriverStatement(insert, appends.dialect, _ROW_KEYS)
        self._find = DriverStatement(find, appends.dialect)

    def insert_batch(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[Appended]:
        """Insert ``rows`` in the caller's transaction; a known event id is a duplicate.

        The statements are compiled once for the driver (:class:`DriverStatement`): building,
        or even executing, a Core statement per row cost more CPU than SQLite's insert."""
        results = []
        for row in rows:
            inserted = self._insert.execute(conn, row)
            if inserted is not None:
                results.append(Appended(id=int(inserted[0]), duplicate=False))
                continue
            found = self._find.execute(conn, row)
            results.append(Appended(id=int(found[0]) if found else 0, duplicate=True))
        return results


def journal_row(
    provider: str,
    event_id: str,
    payload: Mapping[str, Any],
    now: float | None,
    request_id: str | None,
) -> dict[str, Any]:
    """The insert's parameters: the columns of :data:`_ROW_KEYS` (``request_id`` even when
    None), which the insert was compiled for."""
    at = time.time() if now is None else now
    return {
        "provider": provider,
        "event_id": event_id,
        "received_at": at,
        "payload": json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": at,
        "request_id": request_id,
    }
