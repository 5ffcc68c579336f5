"""The outbox's sending side: leases of due messages, attempts, and how a send is settled.

:class:`OutboxSends` holds the statements behind :class:`~connector.state.outbox.Outbox`'s
send methods (:meth:`~connector.state.outbox.Outbox.claim_sends`,
:meth:`~connector.state.outbox.Outbox.start_attempt`,
:meth:`~connector.state.outbox.Outbox.handed`,
:meth:`~connector.state.outbox.Outbox.retry_later` and the probes of what is due), which
say what each guarantees. They live apart from the outbox's adding, reading and Dataverse
sides because they are what keeps a message from being sent twice: a worker's lease, the
attempt recorded durably before the provider is called, and the settling that merges what
the sending worker learned with status news that came meanwhile.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from connector.domain.outbound import OutboundMessage
from connector.errors import StateStoreError
from connector.ports import ClaimedSend
from connector.state.outbox_table import (
    HANDED,
    WAITING,
    message_from_json,
    message_to_json,
    outbox_table,
)


class OutboxSends:
    """The send side of the outbox, on the outbox's engines: ``books`` for bookkeeping and
    ``durable`` for the writes a crash must not lose (see
    :mod:`connector.state.group_commit`)."""

    def __init__(self, dialect: str, books: Engine, durable: Engine) -> None:
        self._dialect = dialect
        self._books = books
        self._durable = durable

    def senders_due(self, now: float) -> list[str]:
        """Configurations with messages due (:meth:`Outbox.senders_due`)."""
        c = outbox_table.c
        query = select(c.configuration_id).where(_due(now)).distinct()
        try:
            with self._books.connect() as conn:
                return [str(v) for v in conn.execute(query).scalars()]
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot read the outbox: {type(exc).__name__}") from exc

    def next_due(self) -> float | None:
        """When the earliest waiting message is due (:meth:`Outbox.next_send_due`)."""
        c = outbox_table.c
        biggest = func.max if self._dialect == "sqlite" else func.greatest
        due = biggest(c.due_at, func.coalesce(c.lease_until, 0.0))
        query = select(func.min(due)).where(c.send_state == WAITING)
        with self._books.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else float(value)

    def claim(
        self, configuration_id: str, limit: int, *, lease_seconds: float, now: float | None
    ) -> list[ClaimedSend]:
        """Lease due messages of one sender (:meth:`Outbox.claim_sends`)."""
        at = time.time() if now is None else now
        token = uuid.uuid4().hex
        c = outbox_table.c
        due = and_(_due(at), c.configuration_id == configuration_id)
        oldest = (  # SKIP LOCKED: racing workers take other rows (see Journal.claim)
            select(c.id)
            .where(due)
            .order_by(c.due_at, c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        try:
            # As in Journal.claim: one UPDATE, its lock released inside one step (never held
            # while Python fetches rows), then the leased rows read back by their token
            # through an index of the leased ones.
            with self._books.begin() as conn:
                conn.execute(
                    update(outbox_table)
                    .where(c.id.in_(oldest.scalar_subquery()))
                    .values(claim_token=token, lease_until=at + lease_seconds)
                )
                rows = conn.execute(
                    select(c.message, c.attempts, c.attempt_at)
                    .where(c.claim_token == token)
                    .order_by(c.due_at, c.created_at)
                ).all()
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot claim outbox rows: {type(exc).__name__}") from exc
        return [
            ClaimedSend(
                message_from_json(str(row.message)),
                token,
                int(row.attempts),
                row.attempt_at is not None,
                None if row.attempt_at is None else float(row.attempt_at),
            )
            for row in rows
        ]

    def start_attempt(self, claimed: ClaimedSend, *, lease_seconds: float, now: float) -> bool:
        """Record an attempt before the provider call (:meth:`Outbox.start_attempt`)."""
        c = outbox_table.c
        query = (
            update(outbox_table)
            .where(c.id == claimed.message.id, c.claim_token == claimed.token)
            .values(
                attempt_at=now,
                attempts=c.attempts + 1,
                lease_until=now + lease_seconds,
            )
        )
        with self._durable.begin() as conn:  # durable: a crash after this must be seen
            return conn.execute(query).rowcount == 1

    def handed(self, claimed: ClaimedSend, message: OutboundMessage) -> bool:
        """The provider has the message (:meth:`Outbox.handed`)."""
        return self._settle_send(claimed, message, HANDED)

    def retry_later(
        self, claimed: ClaimedSend, due_at: float, error: str, *, uncertain: bool
    ) -> bool:
        """A transient failure: try again at ``due_at`` (:meth:`Outbox.retry_later`)."""
        c = outbox_table.c
        values: dict[str, Any] = {
            "claim_token": None,
            "lease_until": None,
            "due_at": due_at,
            "last_error": error[:2000],
        }
        if not uncertain:
            values["attempt_at"] = None
        query = (
            update(outbox_table)
            .where(c.id == claimed.message.id, c.claim_token == claimed.token)
            .values(**values)
        )
        with self._books.begin() as conn:
            return conn.execute(query).rowcount == 1

    def _settle_send(self, claimed: ClaimedSend, message: OutboundMessage, state: str) -> bool:
        c = outbox_table.c
        for _ in range(10):
            with self._books.connect() as conn:
                row = conn.execute(
                    select(c.message, c.version, c.claim_token).where(c.id == message.id)
                ).first()
            if row is None or row.claim_token != claimed.token:
                return False
            current = message_from_json(str(row.message))
            merged = _merge(current, message)
            query = (
                update(outbox_table)
                .where(c.id == message.id, c.version == row.version)
                .values(
                    message=message_to_json(merged),
                    status=merged.status.value,
                    send_state=state,
                    claim_token=None,
                    lease_until=None,
                    last_error=None,
                    version=row.version + 1,
                    sync_due_at=0.0,
                    updated_at=time.time(),
                )
            )
            with self._durable.begin() as conn:  # durable: never sent twice after this
                if conn.execute(query).rowcount == 1:
                    return True
        raise StateStoreError(f"message {message.id} kept changing while it was settled")


def _due(now: float) -> Any:
    c = outbox_table.c
    return and_(
        c.send_state == WAITING,
        c.due_at <= now,
        or_(c.lease_until.is_(None), c.lease_until < now),
    )


def _merge(current: OutboundMessage, sent: OutboundMessage) -> OutboundMessage:
    """What the sending worker learned (``sent``) plus status news that came meanwhile."""
    merged = current.with_status(
        sent.status,
        sent.updated_at,
        provider_id=sent.provider_id,
        failure=sent.failure,
    )
    base = merged or current
    if base.provider_id is None and sent.provider_id:
        base = replace(base, provider_id=sent.provider_id)
    if sent.segments and sent.segments != base.segments:
        base = replace(base, segments=sent.segments)
    return base
