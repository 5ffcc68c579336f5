"""Resolution memory in the state store: which record last had a conversation with a number.

``phone_conversations`` (the first routing rule) is updated on every resolution and when a
conversation is moved. An unknown number's lead needs no claim here: its id is derived from
the configuration and the number, and it is created in its first message's change set (see
:func:`connector.domain.conversation.lead_id`), so racing workers converge on one row.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, PrimaryKeyConstraint, String, Table, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from connector.domain.routing import RecordRef
from connector.errors import StateStoreError
from connector.state.db import StateStore, metadata

phone_conversations = Table(
    "phone_conversations",
    metadata,
    Column("lookup_key", String(32), nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("lookup_key", "table_name", "record_id"),
)


class ResolutionLedger:
    """Conversation recency on a :class:`StateStore`."""

    def __init__(self, store: StateStore) -> None:
        self._engine = store.engine

    def last_conversations(self, key: str) -> dict[RecordRef, datetime]:
        """When each record last had a conversation with the number ``key``."""
        t = phone_conversations
        query = select(t.c.table_name, t.c.record_id, t.c.last_at).where(t.c.lookup_key == key)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(query).all()
        except SQLAlchemyError as exc:
            raise StateStoreError(f"conversation lookup failed: {type(exc).__name__}") from exc
        return {RecordRef(r.table_name, r.record_id): _aware(r.last_at) for r in rows}

    def note_conversation(self, key: str, record: RecordRef, at: datetime) -> None:
        """Record that ``record`` talked with ``key`` at ``at`` (later times win)."""
        t = phone_conversations
        match = (t.c.lookup_key == key, t.c.table_name == record.table, t.c.record_id == record.id)
        try:
            with self._engine.begin() as conn:
                done = conn.execute(
                    sql_update(t).where(*match, t.c.last_at < at).values(last_at=at)
                )
                if done.rowcount:
                    return
                exists = conn.execute(select(t.c.last_at).where(*match)).first()
                if exists is None:
                    conn.execute(
                        insert(t).values(
                            lookup_key=key, table_name=record.table, record_id=record.id, last_at=at
                        )
                    )
        except IntegrityError:
            self.note_conversation(key, record, at)  # a racing insert won; now it updates
        except SQLAlchemyError as exc:
            raise StateStoreError(f"conversation write failed: {type(exc).__name__}") from exc


def _aware(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
