"""Bulk jobs in the state store: one row per job, one row per recipient.

A job is created with all its recipients in one transaction (the ``202`` answer comes after
it). A worker leases a due job (:meth:`BulkJobs.claim`), hands a slice of its pending
recipients to the send path and records each recipient's outcome; a lease that runs out
(the worker died) makes the job due again for another worker, which carries on from the
first recipient without an outcome. Recipients handed to the send path keep ``queued`` here:
their live outcome (sent, delivered, provider_error...) is read from the outbox row of their
message when the job is shown. Portable SQL (SQLAlchemy Core) for SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError

from connector.domain.bulk import BulkJob, Outcome, Recipient, RecipientState, message_outcome
from connector.domain.status import FailureCategory, MessageStatus
from connector.errors import StateStoreError
from connector.state.db import StateStore, metadata
from connector.state.outbox_table import WAITING, message_from_json, outbox_table

jobs_table = Table(
    "bulk_jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("request", Text, nullable=False),
    Column("total", Integer, nullable=False),
    Column("done", Boolean, nullable=False, default=False),
    Column("due_at", Float, nullable=False),
    Column("claim_token", String(32), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Index("ix_bulk_jobs_due", "done", "due_at"),
)

recipients_table = Table(
    "bulk_recipients",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("to_number", String(64), nullable=True),
    Column("regarding_table", String(64), nullable=True),
    Column("regarding_id", String(36), nullable=True),
    Column("outcome", String(20), nullable=False),
    Column("code", String(64), nullable=True),
    Column("message_id", String(36), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Index("ix_bulk_recipients_outcome", "job_id", "outcome", "idx"),
)


def _store_error(what: str, exc: Exception) -> StateStoreError:
    return StateStoreError(f"cannot {what}: {type(exc).__name__}")


class BulkJobs:
    """Bulk jobs and their recipients on a :class:`~connector.state.db.StateStore`."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        store.create_all()
        self._engine = store.engine

    # -- creating -----------------------------------------------------------------------
    def create(
        self,
        job_id: str,
        request: Mapping[str, Any],
        recipients: Sequence[Recipient],
        duplicates: Sequence[bool],
        now: float,
    ) -> None:
        """Store a job and its recipients (committed on return); duplicates are settled."""
        rows = [
            {
                "job_id": job_id,
                "idx": index,
                "to_number": r.to,
                "regarding_table": r.regarding_table,
                "regarding_id": r.regarding_id,
                "outcome": (Outcome.DUPLICATE if dup else Outcome.PENDING).value,
                "code": "duplicate" if dup else None,
                "message_id": None,
                "attempts": 0,
            }
            for index, (r, dup) in enumerate(zip(recipients, duplicates, strict=True))
        ]
        job = {
            "id": job_id,
            "request": json.dumps(dict(request), ensure_ascii=False),
            "total": len(rows),
            "done": False,
            "due_at": now,
            "attempts": 0,
            "created_at": now,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(jobs_table.insert(), job)
                if rows:
                    conn.execute(recipients_table.insert(), rows)
        except SQLAlchemyError as exc:
            raise _store_error("store the bulk job", exc) from exc

    # -- working ------------------------------------------------------------------------
    def claim(self, *, lease_seconds: float, now: float | None = None) -> BulkJob | None:
        """Lease the oldest due job that no live worker holds, or None."""
        at = time.time() if now is None else now
        c = jobs_table.c
        due = and_(
            c.done.is_(False),
            c.due_at <= at,
            or_(c.lease_until.is_(None), c.lease_until < at),
        )
        token = uuid.uuid4().hex
        try:
            with self._engine.begin() as conn:
                found = conn.execute(
                    select(c.id).where(due).order_by(c.created_at).limit(1)
                ).scalar()
                if found is None:
                    return None
                taken = conn.execute(
                    update(jobs_table)
                    .where(c.id == found, due)
                    .values(claim_token=token, lease_until=at + lease_seconds)
                ).rowcount
                row = conn.execute(select(jobs_table).where(c.id == found)).first()
        except SQLAlchemyError as exc:
            raise _store_error("claim a bulk job", exc) from exc
        if taken != 1 or row is None:
            return None
        return _job(row)

    def pending(self, job_id: str, limit: int) -> list[RecipientState]:
        """Up to ``limit`` recipients not handed to the send path yet, in order."""
        c = recipients_table.c
        query = (
            select(recipients_table)
            .where(c.job_id == job_id, c.outcome == Outcome.PENDING.value)
            .order_by(c.idx)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [_recipient(row) for row in conn.execute(query)]

    def record(self, job_id: str, results: Sequence[RecipientState]) -> None:
        """Store recipients' outcomes (and transient failures' attempt counts)."""
        if not results:
            return
        c = recipients_table.c
        with self._engine.begin() as conn:
            for item in results:
                conn.execute(
                    update(recipients_table)
                    .where(c.job_id == job_id, c.idx == item.index)
                    .values(
                        outcome=item.outcome.value,
                        code=item.code,
                        message_id=item.message_id,
                        attempts=item.attempts,
                    )
                )

    def release(self, job: BulkJob, *, due_at: float, done: bool, attempts: int = 0) -> bool:
        """Give the lease back: the job is due again at ``due_at`` (or ``done``: every
        recipient was handed on). False when the lease was lost to another worker."""
        c = jobs_table.c
        values: dict[str, Any] = {
            "claim_token": None,
            "lease_until": None,
            "due_at": due_at,
            "done": done,
            "attempts": attempts,
        }
        if done:
            values["finished_at"] = time.time()
        with self._engine.begin() as conn:
            query = update(jobs_table).where(c.id == job.id, c.claim_token == job.token)
            return conn.execute(query.values(**values)).rowcount == 1

    def waiting(self, job_id: str) -> int:
        """The job's messages in the outbox not handed to the provider yet."""
        r, o = recipients_table.c, outbox_table.c
        query = (
            select(func.count())
            .select_from(recipients_table.join(outbox_table, o.id == r.message_id))
            .where(r.job_id == job_id, r.outcome == Outcome.QUEUED.value, o.send_state == WAITING)
        )
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def next_due(self) -> float | None:
        """When the earliest unfinished job is due (its lease, if held), or None."""
        c = jobs_table.c
        biggest = func.max if self.store.dialect == "sqlite" else func.greatest
        due = biggest(c.due_at, func.coalesce(c.lease_until, 0.0))
        with self._engine.connect() as conn:
            value = conn.execute(select(func.min(due)).where(c.done.is_(False))).scalar()
        return None if value is None else float(value)

    # -- reading ------------------------------------------------------------------------
    def get(self, job_id: str) -> BulkJob | None:
        """The job, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(jobs_table).where(jobs_table.c.id == job_id)).first()
        return None if row is None else _job(row)

    def outcomes(self, job_id: str) -> dict[Outcome, int]:
        """How many recipients stand at each outcome (live from the outbox)."""
        r, o = recipients_table.c, outbox_table.c
        query = (
            select(r.outcome, o.status, func.count())
            .select_from(recipients_table.outerjoin(outbox_table, o.id == r.message_id))
            .where(r.job_id == job_id)
            .group_by(r.outcome, o.status)
        )
        counts: dict[Outcome, int] = {}
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            for stored, status, count in rows:
                if status in _ENDED:
                    continue  # failed messages: their category decides (below)
                outcome = _live(stored, status, None)
                counts[outcome] = counts.get(outcome, 0) + int(count)
            ended = (
                select(o.message)
                .select_from(recipients_table.join(outbox_table, o.id == r.message_id))
                .where(r.job_id == job_id, o.status.in_(_ENDED))
            )
            for text in conn.execute(ended).scalars():
                outcome = _outcome_of_message(str(text))
                counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    def recipients(self, job_id: str, offset: int, limit: int) -> list[RecipientState]:
        """A page of recipients, in order, with their live outcomes."""
        r, o = recipients_table.c, outbox_table.c
        query = (
            select(recipients_table, o.status.label("message_status"), o.message)
            .select_from(recipients_table.outerjoin(outbox_table, o.id == r.message_id))
            .where(r.job_id == job_id)
            .order_by(r.idx)
            .offset(offset)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        found: list[RecipientState] = []
        for row in rows:
            state = _recipient(row)
            if row.message_status in _ENDED:
                outcome = _outcome_of_message(str(row.message))
            else:
                outcome = _live(row.outcome, row.message_status, None)
            found.append(
                RecipientState(
                    state.index,
                    state.recipient,
                    outcome,
                    state.code,
                    state.message_id,
                    state.attempts,
                )
            )
        return found


_ENDED = tuple(
    s.value for s in (MessageStatus.FAILED, MessageStatus.UNDELIVERED, MessageStatus.CANCELED)
)


def _live(stored: str, status: str | None, failure: FailureCategory | None) -> Outcome:
    outcome = Outcome(stored)
    if outcome is not Outcome.QUEUED or status is None:
        return outcome
    return message_outcome(MessageStatus(status), failure)


def _outcome_of_message(text: str) -> Outcome:
    message = message_from_json(text)
    failure = message.failure.category if message.failure else None
    return message_outcome(message.status, failure)


def _job(row: Row[Any]) -> BulkJob:
    return BulkJob(
        id=str(row.id),
        request=dict(json.loads(str(row.request))),
        total=int(row.total),
        created_at=float(row.created_at),
        done=bool(row.done),
        finished_at=None if row.finished_at is None else float(row.finished_at),
        token=None if row.claim_token is None else str(row.claim_token),
        attempts=int(row.attempts),
    )


def _recipient(row: Row[Any]) -> RecipientState:
    return RecipientState(
        index=int(row.idx),
        recipient=Recipient(row.to_number, row.regarding_table, row.regarding_id),
        outcome=Outcome(row.outcome),
        code=row.code,
        message_id=row.message_id,
        attempts=int(row.attempts),
    )
