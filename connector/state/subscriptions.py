"""Subscriptions and their pending event deliveries in the state store.

``subscriptions``: who wants which event at which URL (an optional configuration filter, the
secret deliveries are signed with). ``event_deliveries``: an outbox of events per
subscription, one row per (event, subscription) so an event recorded twice (a journal row
retried after a crash) is delivered once. :meth:`Subscriptions.claim` leases only the oldest
pending delivery of each conversation of each subscription, so a subscriber gets one
conversation's events in order even while an earlier one waits for its retry. A delivered or
dropped row is deleted. Portable SQL (SQLAlchemy Core) for SQLite and PostgreSQL.

A subscription's secret and its callback URL (Power Automate's carries a ``sig`` that lets
anyone start the flow) are stored encrypted with ``CONNECTOR_SECRET_KEYS``
(:class:`~connector.secret_box.SecretBox` behind the ``SecretCipher`` port): a copy of the
state store gives neither. Storing or reading one without keys is a ``ConfigurationError``.
A value stored in the clear (before encryption) or under a key since rotated out of first
place is read and written back encrypted under the current key.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text, delete, func, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError

from connector.domain.events import Delivery, Event, Subscription
from connector.errors import StateStoreError
from connector.ports import SecretCipher
from connector.state.db import StateStore, metadata

subscriptions_table = Table(
    "subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("event", String(40), nullable=False),
    Column("callback_url", Text, nullable=False),  # encrypted
    Column("secret", Text, nullable=False),  # encrypted
    Column("configuration_id", String(36), nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_subscriptions_event", "event"),
)

deliveries_table = Table(
    "event_deliveries",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("key", String(80), nullable=False, unique=True),
    Column("event_id", String(36), nullable=False),
    Column("subscription_id", String(36), nullable=False),
    Column("conversation", String(36), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("due_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claim_token", String(32), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("last_error", String(200), nullable=True),
    Index("ix_event_deliveries_order", "subscription_id", "conversation", "seq"),
)


def _store_error(what: str, exc: Exception) -> StateStoreError:
    return StateStoreError(f"cannot {what}: {type(exc).__name__}")


class Subscriptions:
    """Subscriptions and deliveries on a :class:`~connector.state.db.StateStore`."""

    def __init__(self, store: StateStore, cipher: SecretCipher) -> None:
        self.store = store
        store.create_all()
        self._cipher = cipher
        self._engine = store.engine
        dialect = postgresql if store.dialect == "postgresql" else sqlite
        self._insert = (  # RETURNING: an INSERT's rowcount is -1 on psycopg
            dialect.insert(deliveries_table)
            .on_conflict_do_nothing()
            .returning(deliveries_table.c.seq)
        )

    # -- subscriptions --------------------------------------------------------------------
    def add(self, subscription: Subscription) -> None:
        """Store a subscription."""
        row = {
            "id": subscription.id,
            "event": subscription.event,
            "callback_url": self._cipher.encrypt(subscription.callback_url),
            "secret": self._cipher.encrypt(subscription.secret),
            "configuration_id": subscription.configuration_id,
            "created_at": subscription.created_at,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(subscriptions_table.insert(), row)
        except SQLAlchemyError as exc:
            raise _store_error("store the subscription", exc) from exc

    def get(self, subscription_id: str) -> Subscription | None:
        """A subscription, or None."""
        query = select(subscriptions_table).where(subscriptions_table.c.id == subscription_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else self._opened([row])[0]

    def remove(self, subscription_id: str) -> bool:
        """Delete a subscription and its pending deliveries; whether it existed."""
        with self._engine.begin() as conn:
            conn.execute(
                delete(deliveries_table).where(
                    deliveries_table.c.subscription_id == subscription_id
                )
            )
            gone = conn.execute(
                delete(subscriptions_table).where(subscriptions_table.c.id == subscription_id)
            )
        return gone.rowcount == 1

    def matching(self, event: str, configuration_id: str) -> list[Subscription]:
        """Subscriptions to ``event`` for this configuration (or for every configuration)."""
        c = subscriptions_table.c
        query = (
            select(subscriptions_table)
            .where(
                c.event == event,
                or_(c.configuration_id.is_(None), c.configuration_id == configuration_id),
            )
            .order_by(c.created_at)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return self._opened(rows)

    def _opened(self, rows: Iterable[Row[Any]]) -> list[Subscription]:
        """The subscriptions of ``rows``, decrypted; a value stored in the clear or under an
        older key is written back encrypted under the current one."""
        found: list[Subscription] = []
        rewrites: list[tuple[str, str, str, str]] = []
        for row in rows:
            mapping = row._mapping
            sub_id = str(mapping[subscriptions_table.c.id])
            stored_url = str(mapping[subscriptions_table.c.callback_url])
            stored_secret = str(mapping[subscriptions_table.c.secret])
            url, new_url = self._cipher.reveal(stored_url)
            secret, new_secret = self._cipher.reveal(stored_secret)
            if new_url is not None or new_secret is not None:
                rewrites.append(
                    (sub_id, stored_secret, new_url or stored_url, new_secret or stored_secret)
                )
            configuration = mapping[subscriptions_table.c.configuration_id]
            found.append(
                Subscription(
                    id=sub_id,
                    event=str(mapping[subscriptions_table.c.event]),
                    callback_url=url,
                    secret=secret,
                    configuration_id=None if configuration is None else str(configuration),
                    created_at=float(mapping[subscriptions_table.c.created_at]),
                )
            )
        self._rewrite(rewrites)
        return found

    def _rewrite(self, rewrites: Sequence[tuple[str, str, str, str]]) -> None:
        """Store re-encrypted values (only over the value they were read from)."""
        if not rewrites:
            return
        c = subscriptions_table.c
        try:
            with self._engine.begin() as conn:
                for sub_id, was, url, secret in rewrites:
                    conn.execute(
                        sql_update(subscriptions_table)
                        .where(c.id == sub_id, c.secret == was)
                        .values(callback_url=url, secret=secret)
                    )
        except SQLAlchemyError as exc:
            raise _store_error("re-encrypt a subscription", exc) from exc

    # -- deliveries -----------------------------------------------------------------------
    def enqueue(self, pairs: Sequence[tuple[Event, Subscription]], now: float) -> int:
        """Record deliveries (an event already recorded for a subscription is skipped);
        how many are new."""
        rows = [
            {
                "key": f"{event.id}:{sub.id}",
                "event_id": event.id,
                "subscription_id": sub.id,
                "conversation": event.conversation,
                "body": event.encoded().decode(),
                "created_at": now,
                "due_at": now,
                "attempts": 0,
            }
            for event, sub in pairs
        ]
        added = 0
        try:
            with self._engine.begin() as conn:
                for row in rows:  # one statement each: in order, so seq follows the events
                    added += len(conn.execute(self._insert, row).all())
        except SQLAlchemyError as exc:
            raise _store_error("record event deliveries", exc) from exc
        return added

    def claim(
        self, limit: int, *, lease_seconds: float, now: float | None = None
    ) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries, each the oldest of its conversation."""
        at = time.time() if now is None else now
        d = deliveries_table.c
        first = _oldest_of_its_conversation()
        free = or_(d.lease_until.is_(None), d.lease_until < at)
        token = uuid.uuid4().hex
        with self._engine.begin() as conn:
            seqs = list(
                conn.execute(
                    select(d.seq).where(d.due_at <= at, free, first).order_by(d.seq).limit(limit)
                ).scalars()
            )
            if not seqs:
                return []
            conn.execute(
                sql_update(deliveries_table)
                .where(d.seq.in_(seqs), free)
                .values(claim_token=token, lease_until=at + lease_seconds)
            )
            s = subscriptions_table.c
            rows = conn.execute(
                select(deliveries_table, subscriptions_table)
                .select_from(deliveries_table.join(subscriptions_table, s.id == d.subscription_id))
                .where(d.claim_token == token)
                .order_by(d.seq)
            ).all()
        opened = {sub.id: sub for sub in self._opened(rows)}
        return [_delivery(row, opened[str(row._mapping[s.id])]) for row in rows]

    def delivered(self, delivery: Delivery) -> None:
        """The subscriber has it (or it was dropped): forget the row."""
        d = deliveries_table.c
        with self._engine.begin() as conn:
            conn.execute(
                delete(deliveries_table).where(
                    d.seq == delivery.seq, d.claim_token == delivery.token
                )
            )

    def retry(self, delivery: Delivery, due_at: float, error: str) -> None:
        """Try again at ``due_at``."""
        d = deliveries_table.c
        with self._engine.begin() as conn:
            conn.execute(
                sql_update(deliveries_table)
                .where(d.seq == delivery.seq, d.claim_token == delivery.token)
                .values(
                    due_at=due_at,
                    attempts=delivery.attempts + 1,
                    claim_token=None,
                    lease_until=None,
                    last_error=error[:200],
                )
            )

    def next_due(self) -> float | None:
        """When the earliest delivery that may go next (the oldest of its conversation) is
        due (its lease, if held), or None when nothing is pending."""
        d = deliveries_table.c
        biggest = func.max if self.store.dialect == "sqlite" else func.greatest
        due = biggest(d.due_at, func.coalesce(d.lease_until, 0.0))
        query = select(func.min(due)).where(_oldest_of_its_conversation())
        with self._engine.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else float(value)

    def pending(self) -> int:
        """Deliveries not made yet."""
        with self._engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(deliveries_table)).scalar() or 0
            )


def _oldest_of_its_conversation() -> Any:
    """A delivery with no earlier one pending for the same subscription and conversation."""
    d = deliveries_table.c
    earlier = deliveries_table.alias("earlier")
    return ~(
        select(earlier.c.seq)
        .where(
            earlier.c.subscription_id == d.subscription_id,
            earlier.c.conversation == d.conversation,
            earlier.c.seq < d.seq,
        )
        .exists()
    )


def _delivery(row: Row[Any], subscription: Subscription) -> Delivery:
    mapping = row._mapping
    return Delivery(
        seq=int(mapping[deliveries_table.c.seq]),
        event_id=str(mapping[deliveries_table.c.event_id]),
        event_type=subscription.event,
        body=str(mapping[deliveries_table.c.body]).encode(),
        created_at=float(mapping[deliveries_table.c.created_at]),
        attempts=int(mapping[deliveries_table.c.attempts]),
        token=str(mapping[deliveries_table.c.claim_token]),
        subscription=subscription,
    )
