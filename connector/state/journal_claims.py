"""The journal's claims: due rows leased to a worker, and the updates that settle them.

A worker *claims* due rows with a lease (a random claim token and an expiry, set by one
conditional ``UPDATE`` so two workers never hold the same row) and gets them as
:class:`JournalEntry` records; every settling update is conditional on the claim token, so a
worker whose lease ran out (another worker has the row now) changes nothing.
:class:`JournalClaims` holds these statements for :class:`~connector.state.journal.Journal`,
which keeps the retry policy (whether a failed row is backed off or parked). They live apart
from the appends because they run on the worker's bookkeeping engine, never on the webhook's
path.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from connector.errors import StateStoreError
from connector.state.journal_table import DONE, PENDING, journal_table


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One claimed event: its payload (form fields), how often it was tried before, and the
    request id it was appended under (None if it had none)."""

    id: int
    provider: str
    event_id: str
    received_at: float
    payload: dict[str, Any]
    attempts: int
    claim_token: str
    request_id: str | None = None


class JournalClaims:
    """Leases of journal rows on ``books``, the journal's bookkeeping engine (see
    :func:`connector.state.group_commit.bookkeeping_engine`)."""

    def __init__(self, books: Engine) -> None:
        self._books = books

    def claim(
        self,
        limit: int,
        *,
        lease_seconds: float,
        journals: Collection[str] | None,
        now: float | None,
    ) -> list[JournalEntry]:
        """Lease due rows, oldest first (:meth:`Journal.claim`)."""
        at = time.time() if now is None else now
        token = uuid.uuid4().hex
        c = journal_table.c
        due = and_(
            c.status == PENDING,
            c.next_attempt_at <= at,
            or_(c.lease_until.is_(None), c.lease_until < at),
        )
        if journals is not None:
            due = and_(due, c.provider.in_(sorted(journals)))
        # SKIP LOCKED (PostgreSQL; SQLite has one writer anyway): racing workers take the
        # next free rows instead of waiting for each other's and then finding them taken.
        oldest_due = (
            select(c.id).where(due).order_by(c.id).limit(limit).with_for_update(skip_locked=True)
        )
        try:
            # One UPDATE, the only statement holding the lock (taken and released inside one
            # step: with RETURNING it was held until Python had fetched every row, across
            # the GIL handoffs of a worker thread at low priority, and appends waited up to
            # half a second). The rows its subquery picks are locked (PostgreSQL) or nobody
            # else writes (SQLite): they are still due. They are read back by their token
            # through an index of the leased rows (without it every row of the table was
            # read: 27 ms a claim beside 300,000 done rows).
            with self._books.begin() as conn:
                conn.execute(
                    update(journal_table)
                    .where(c.id.in_(oldest_due.scalar_subquery()))
                    .values(claim_token=token, lease_until=at + lease_seconds)
                )
                rows = conn.execute(
                    select(journal_table).where(c.claim_token == token).order_by(c.id)
                ).mappings()
                return [_entry(row) for row in rows]
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot claim journal rows: {type(exc).__name__}") from exc

    def mark_done_many(self, entries: Sequence[JournalEntry], *, now: float | None) -> int:
        """Mark rows done, one ``UPDATE`` per claim (:meth:`Journal.mark_done_many`)."""
        at = time.time() if now is None else now
        c = journal_table.c
        by_claim: dict[str, list[int]] = {}
        for entry in entries:
            by_claim.setdefault(entry.claim_token, []).append(entry.id)
        marked = 0
        try:
            with self._books.begin() as conn:
                for token, ids in by_claim.items():
                    query = (
                        update(journal_table)
                        .where(c.id.in_(ids), c.claim_token == token)
                        .values(claim_token=None, lease_until=None, status=DONE, done_at=at)
                    )
                    marked += conn.execute(query).rowcount
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot update the journal: {type(exc).__name__}") from exc
        return marked

    def settle(self, entry: JournalEntry, values: Mapping[str, Any]) -> bool:
        """Update a row this claim still holds with ``values``; False if the lease was lost."""
        c = journal_table.c
        query = (
            update(journal_table)
            .where(c.id == entry.id, c.claim_token == entry.claim_token)
            .values(claim_token=None, lease_until=None, **values)
        )
        try:
            with self._books.begin() as conn:
                return conn.execute(query).rowcount == 1
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot update the journal: {type(exc).__name__}") from exc


def _entry(row: Any) -> JournalEntry:
    return JournalEntry(
        id=int(row["id"]),
        provider=str(row["provider"]),
        event_id=str(row["event_id"]),
        received_at=float(row["received_at"]),
        payload=json.loads(row["payload"]),
        attempts=int(row["attempts"]),
        claim_token=str(row["claim_token"]),
        request_id=None if row["request_id"] is None else str(row["request_id"]),
    )
