"""Periodic runs: which process of a fleet runs a periodic job in a given period.

Every worker process runs huey's scheduler, and each would queue every periodic job (the
journal and outbox sweeps, the phone sync, escalation, ...) once per period: with three
workers, three runs a minute. Before queueing a job for a period the scheduler *claims*
``(job name, period start)`` here: one ``INSERT ... ON CONFLICT DO NOTHING`` on the shared
state store, so exactly one process of the fleet (PostgreSQL), or of one machine (SQLite),
wins each period. The winners' rows double as the record of what ran when (``runs``), and
a job's rows :data:`RETENTION_SECONDS` older than the period it claims are dropped.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Float, String, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from connector.errors import StateStoreError
from connector.state.db import StateStore, metadata

RETENTION_SECONDS = 7 * 24 * 3600
"""Claims are kept a week (long enough to see which process ran what)."""

periodic_runs_table = Table(
    "periodic_runs",
    metadata,
    Column("task", String(100), primary_key=True),
    Column("period_start", BigInteger, primary_key=True),  # epoch seconds (UTC minute)
    Column("claimed_by", String(200), nullable=False),
    Column("claimed_at", Float, nullable=False),
)


@dataclass(frozen=True, slots=True)
class PeriodicRun:
    """One claimed period of one job."""

    task: str
    period_start: int
    claimed_by: str
    claimed_at: float


def process_name() -> str:
    """``host:pid``: which process claimed a period (shown by :meth:`PeriodicRuns.runs`)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class PeriodicRuns:
    """Claims of ``(job, period)`` on a :class:`~connector.state.db.StateStore`."""

    def __init__(self, store: StateStore, owner: str | None = None) -> None:
        self.store = store
        store.create_all()
        self.owner = owner or process_name()
        dialect = postgresql if store.dialect == "postgresql" else sqlite
        self._insert = (  # RETURNING tells who won (an INSERT's rowcount is -1 on psycopg)
            dialect.insert(periodic_runs_table)
            .on_conflict_do_nothing()
            .returning(periodic_runs_table.c.task)
        )

    def claim(self, task: str, period_start: int, *, now: float | None = None) -> bool:
        """Whether this process runs ``task`` for the period starting at ``period_start``
        (epoch seconds): True for exactly one caller per pair, fleet-wide."""
        at = time.time() if now is None else now
        row = {
            "task": task,
            "period_start": int(period_start),
            "claimed_by": self.owner[:200],
            "claimed_at": at,
        }
        c = periodic_runs_table.c
        try:
            with self.store.engine.begin() as conn:
                won = conn.execute(self._insert, row).first() is not None
                if won:
                    conn.execute(
                        delete(periodic_runs_table).where(
                            c.task == task, c.period_start < period_start - RETENTION_SECONDS
                        )
                    )
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot claim a periodic run: {type(exc).__name__}") from exc
        return won

    def runs(self, since: float = 0.0) -> list[PeriodicRun]:
        """The claimed periods starting at or after ``since``, oldest first."""
        c = periodic_runs_table.c
        query = (
            select(periodic_runs_table)
            .where(c.period_start >= since)
            .order_by(c.period_start, c.task)
        )
        try:
            with self.store.engine.connect() as conn:
                rows = conn.execute(query).all()
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot read periodic runs: {type(exc).__name__}") from exc
        return [
            PeriodicRun(str(r.task), int(r.period_start), str(r.claimed_by), float(r.claimed_at))
            for r in rows
        ]
