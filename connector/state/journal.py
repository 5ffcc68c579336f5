"""The ingress journal: verified provider events, durable before the webhook is answered.

A webhook appends its raw event (the form fields) here and answers; workers take rows later.
The journal is also the dedupe store: ``(provider, event_id)`` is unique (Twilio's
``MessageSid``), so a repeated webhook finds its first row and adds nothing.

Workers *claim* due rows with a lease (a random claim token and an expiry, set by one
conditional ``UPDATE`` so two workers never hold the same row). A worker killed mid-batch
simply stops renewing: once its leases expire the rows are due again and another worker
takes them. A row is marked ``done`` only after Dataverse confirmed the write; a transient
failure sets the next attempt time (exponential backoff); a poison event (or, when
:attr:`Journal.max_attempts` is set, one that failed that often) becomes ``error`` and stays
replayable
(:meth:`Journal.replay`). Transient failures retry for as long as they last (capped backoff)
unless ``max_attempts`` is set. Portable SQL (SQLAlchemy Core) for SQLite and PostgreSQL.

Each row keeps the request id the webhook logged it under (``request_id``, nullable: rows
from before the column, and appends without one, have none), so the worker that takes the row
can log under the same id (see :func:`connector.log_config.correlation`).

:class:`Journal` is the journal's whole interface and its retry policy; the table is declared
in :mod:`connector.state.journal_table`, the append path's statements are in
:mod:`connector.state.journal_appends` and the claims' in :mod:`connector.state.journal_claims`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from connector.errors import StateStoreError
from connector.state.db import StateStore
from connector.state.group_commit import (
    Checkpointer,
    GroupCommitter,
    append_engine,
    bookkeeping_engine,
)
from connector.state.journal_appends import Appended, JournalInsert, journal_row
from connector.state.journal_claims import JournalClaims, JournalEntry
from connector.state.journal_table import DONE, ERROR, PENDING, journal_table


class JournalDepth(NamedTuple):
    """What :meth:`Journal.due_depth` found: due rows (up to the limit), the oldest one's
    arrival (epoch seconds) and how many of them are urgent."""

    due: int
    oldest: float | None
    urgent: int = 0


@dataclass(frozen=True, slots=True)
class JournalCounts:
    """Rows per status, for readiness, metrics and the CLI."""

    pending: int = 0
    done: int = 0
    error: int = 0


class Journal:
    """The ingress journal on a :class:`~connector.state.db.StateStore`."""

    def __init__(
        self,
        store: StateStore,
        *,
        max_attempts: int | None = None,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
    ) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        store.create_all()
        self._books = bookkeeping_engine(store)
        self._appends = append_engine(store)
        insert = JournalInsert(store.dialect, self._appends)
        self._appender = GroupCommitter(self._appends, insert.insert_batch)
        self._claims = JournalClaims(self._books)
        self._checkpointer = Checkpointer(store)

    def close(self) -> None:
        """Stop the appender thread and release the bookkeeping engine."""
        self._appender.close()
        self._checkpointer.close()
        for engine in (self._books, self._appends):
            if engine is not self.store.engine:
                engine.dispose()

    def append(
        self,
        provider: str,
        event_id: str,
        payload: Mapping[str, Any],
        *,
        now: float | None = None,
        request_id: str | None = None,
    ) -> Appended:
        """Store one verified event durably (committed on return); a repeat is a no-op.

        ``request_id`` is kept with the row (at most 64 characters); a repeat keeps the
        first append's."""
        return self._appender.submit(journal_row(provider, event_id, payload, now, request_id))

    async def append_async(
        self,
        provider: str,
        event_id: str,
        payload: Mapping[str, Any],
        *,
        request_id: str | None = None,
        timeout: float = 30.0,
    ) -> Appended:
        """:meth:`append` awaited on the event loop (no thread per waiting webhook); raises
        :class:`StateStoreError` when the row is not committed within ``timeout`` seconds."""
        row = journal_row(provider, event_id, payload, None, request_id)
        return await self._appender.submit_async(row, timeout)

    def claim(
        self,
        limit: int = 50,
        *,
        lease_seconds: float = 60.0,
        journals: Collection[str] | None = None,
        now: float | None = None,
    ) -> list[JournalEntry]:
        """Lease up to ``limit`` due rows (oldest first) to the caller, atomically per row;
        only rows whose provider (journal name) is in ``journals``, when given."""
        return self._claims.claim(limit, lease_seconds=lease_seconds, journals=journals, now=now)

    def due_depth(
        self, limit: int, urgent: Collection[str] = (), *, now: float | None = None
    ) -> JournalDepth:
        """How many rows are due (counted up to ``limit``), when the oldest of them was
        received (epoch seconds; None when none is due) and how many of them belong to the
        ``urgent`` journals (rows that must not wait). Reads only: nothing is claimed."""
        at = time.time() if now is None else now
        c = journal_table.c
        due = and_(
            c.status == PENDING,
            c.next_attempt_at <= at,
            or_(c.lease_until.is_(None), c.lease_until < at),
        )
        head = select(c.received_at, c.provider).where(due).order_by(c.id).limit(limit).subquery()
        pressing = case((head.c.provider.in_(sorted(urgent)), 1), else_=0) if urgent else 0
        query = select(func.count(), func.min(head.c.received_at), func.sum(pressing))
        try:
            with self.store.engine.connect() as conn:
                count, oldest, hurried = conn.execute(query).one()
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot count journal rows: {type(exc).__name__}") from exc
        return JournalDepth(
            int(count), None if oldest is None else float(oldest), int(hurried or 0)
        )

    def mark_done(self, entry: JournalEntry, *, now: float | None = None) -> bool:
        """Record that Dataverse confirmed ``entry``; False if the lease was lost meanwhile."""
        values = {"status": DONE, "done_at": time.time() if now is None else now}
        return self._claims.settle(entry, values)

    def mark_done_many(self, entries: Sequence[JournalEntry], *, now: float | None = None) -> int:
        """:meth:`mark_done` for several rows; how many were still held.

        One ``UPDATE`` per claim (rows claimed together share their token), so the write lock
        is held for a single statement (see :mod:`connector.state.group_commit`).
        """
        return self._claims.mark_done_many(entries, now=now)

    def mark_failed(
        self,
        entry: JournalEntry,
        error: Mapping[str, Any],
        *,
        transient: bool,
        retry_after: float | None = None,
        now: float | None = None,
    ) -> str:
        """Record a failed attempt: back off (``pending``) or give up (``error``); the status."""
        at = time.time() if now is None else now
        attempts = entry.attempts + 1
        text = json.dumps(dict(error), default=str)[:4000]
        gave_up = self.max_attempts is not None and attempts >= self.max_attempts
        if not transient or gave_up:
            self._claims.settle(entry, {"status": ERROR, "attempts": attempts, "last_error": text})
            return ERROR
        delay = min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
        delay = max(delay, retry_after or 0.0)
        values = {"attempts": attempts, "last_error": text, "next_attempt_at": at + delay}
        self._claims.settle(entry, values)
        return PENDING

    def replay(self, ids: Sequence[int] | None = None) -> int:
        """Make ``error`` rows (all, or these ids) pending again; returns how many."""
        c = journal_table.c
        query = update(journal_table).where(c.status == ERROR)
        if ids is not None:
            query = query.where(c.id.in_(list(ids)))
        values = {"status": PENDING, "attempts": 0, "next_attempt_at": time.time()}
        with self.store.engine.begin() as conn:
            return int(conn.execute(query.values(**values)).rowcount)

    def counts(self) -> JournalCounts:
        """How many rows are pending, done and in error."""
        c = journal_table.c
        query = select(c.status, func.count()).group_by(c.status)
        with self.store.engine.connect() as conn:
            found = {str(status): int(n) for status, n in conn.execute(query)}
        return JournalCounts(
            pending=found.get(PENDING, 0), done=found.get(DONE, 0), error=found.get(ERROR, 0)
        )

    def next_due(self) -> float | None:
        """When the earliest pending row is due (its lease or backoff), or None."""
        c = journal_table.c
        biggest = func.max if self.store.dialect == "sqlite" else func.greatest
        due = biggest(c.next_attempt_at, func.coalesce(c.lease_until, 0.0))
        query = select(func.min(due)).where(c.status == PENDING)
        with self.store.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else float(value)

    def errors(self, limit: int = 100) -> list[dict[str, Any]]:
        """Rows in ``error`` (id, event id, attempts, last error), newest first."""
        c = journal_table.c
        query = (
            select(c.id, c.event_id, c.attempts, c.last_error)
            .where(c.status == ERROR)
            .order_by(c.id.desc())
            .limit(limit)
        )
        with self.store.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def prune(self, older_than: float, *, batch: int = 500) -> int:
        """Delete ``done`` rows finished before ``older_than`` (dedupe keys go with them).

        ``batch`` rows per statement, so the write lock is never held long (a week-old
        minute at 200 messages/s is 12,000 rows; deleted at once they stalled appends).
        """
        c = journal_table.c
        old = select(c.id).where(c.status == DONE, c.done_at < older_than).limit(batch)
        query = journal_table.delete().where(c.id.in_(old.scalar_subquery()))
        deleted = 0
        while True:
            with self._books.begin() as conn:
                count = int(conn.execute(query).rowcount)
            deleted += count
            if count < batch:
                return deleted
