"""The outbox's Dataverse side: leases of the messages whose latest version Dataverse lacks.

Every change to an outbox row bumps its ``version``; :class:`OutboxSync` holds the statements
behind :class:`~connector.state.outbox.Outbox`'s sync methods
(:meth:`~connector.state.outbox.Outbox.claim_unsynced`,
:meth:`~connector.state.outbox.Outbox.mark_synced`,
:meth:`~connector.state.outbox.Outbox.sync_failed`,
:meth:`~connector.state.outbox.Outbox.next_sync_due`), which say what each guarantees. They
live apart from the sending side because they use their own columns (``synced_version``,
``sync_token``, ``sync_lease_until``, ``sync_due_at``, ``sync_attempts``): a message may be
leased for sending and for its Dataverse write at the same time, and only the latest version
is written, so status changes that come close together collapse into one write.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from connector.errors import StateStoreError
from connector.ports import ClaimedSync
from connector.state.outbox_table import message_from_json, outbox_table


class OutboxSync:
    """The Dataverse side of the outbox, on the outbox's bookkeeping engine (see
    :func:`connector.state.group_commit.bookkeeping_engine`)."""

    def __init__(self, dialect: str, books: Engine) -> None:
        self._dialect = dialect
        self._books = books

    def claim(self, limit: int, *, lease_seconds: float, now: float | None) -> list[ClaimedSync]:
        """Lease messages Dataverse lacks, by last change (:meth:`Outbox.claim_unsynced`)."""
        at = time.time() if now is None else now
        token = uuid.uuid4().hex
        c = outbox_table.c
        due = and_(
            c.version > c.synced_version,
            c.sync_due_at <= at,
            or_(c.sync_lease_until.is_(None), c.sync_lease_until < at),
        )
        oldest = (  # SKIP LOCKED: racing workers take other rows (see Journal.claim)
            select(c.id).where(due).order_by(c.updated_at).limit(limit)
        ).with_for_update(skip_locked=True)
        try:
            with self._books.begin() as conn:  # as in the send claim (OutboxSends.claim)
                conn.execute(
                    update(outbox_table)
                    .where(c.id.in_(oldest.scalar_subquery()))
                    .values(sync_token=token, sync_lease_until=at + lease_seconds)
                )
                rows = conn.execute(
                    select(c.message, c.version, c.synced_version, c.sync_attempts)
                    .where(c.sync_token == token)
                    .order_by(c.updated_at)
                ).all()
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot claim outbox rows: {type(exc).__name__}") from exc
        return [
            ClaimedSync(
                message_from_json(str(row.message)),
                int(row.version),
                int(row.synced_version) == 0,
                token,
                int(row.sync_attempts),
            )
            for row in rows
        ]

    def mark_synced(self, items: Sequence[ClaimedSync]) -> None:
        """Dataverse has these versions (:meth:`Outbox.mark_synced`)."""
        c = outbox_table.c
        with self._books.begin() as conn:
            for item in items:
                conn.execute(
                    update(outbox_table)
                    .where(c.id == item.message.id, c.sync_token == item.token)
                    .values(
                        synced_version=func.max(c.synced_version, item.version)
                        if self._dialect == "sqlite"
                        else func.greatest(c.synced_version, item.version),
                        sync_token=None,
                        sync_lease_until=None,
                        sync_attempts=0,
                    )
                )

    def failed(
        self, items: Sequence[ClaimedSync], *, retry_after: float | None, max_delay: float
    ) -> None:
        """Back off, each item by up to ``max_delay`` seconds (:meth:`Outbox.sync_failed`)."""
        c = outbox_table.c
        now = time.time()
        with self._books.begin() as conn:
            for item in items:
                delay = min(max_delay, 2.0 ** min(item.attempts, 12))
                delay = max(delay, retry_after or 0.0)
                conn.execute(
                    update(outbox_table)
                    .where(c.id == item.message.id, c.sync_token == item.token)
                    .values(
                        sync_token=None,
                        sync_lease_until=None,
                        sync_due_at=now + delay,
                        sync_attempts=item.attempts + 1,
                    )
                )

    def next_due(self) -> float | None:
        """When the earliest unsynced message is due (:meth:`Outbox.next_sync_due`)."""
        c = outbox_table.c
        query = select(func.min(c.sync_due_at)).where(c.version > c.synced_version)
        with self._books.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else float(value)
