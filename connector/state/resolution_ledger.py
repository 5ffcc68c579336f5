"""Resolution memory in the state store: which record last had a conversation with a number.

``phone_conversations`` (the first routing rule) is updated on every resolution and when a
conversation is moved. An unknown number's lead needs no claim here: its id is derived from
the configuration and the number, and it is created in its first message's change set (see
:func:`connector.domain.conversation.lead_id`), so racing workers converge on one row.
Notes are written like the session mirror they go with: one statement, no flush per commit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, PrimaryKeyConstraint, String, Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from connector.domain.routing import RecordRef
from connector.errors import StateStoreError
from connector.state.db import StateStore, metadata
from connector.state.group_commit import bookkeeping_engine

phone_conversations = Table(
    "phone_conversations",
    metadata,
    Column("lookup_key", String(32), nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("lookup_key", "table_name", "record_id"),
)


def _upsert(dialect: Any) -> Any:
    """``note_conversation``'s one statement: insert the (number, record) pair, or move its
    time forward (an earlier time changes nothing), built once per dialect."""
    t = phone_conversations
    statement = dialect.insert(t).values(
        lookup_key=bindparam("b_key"),
        table_name=bindparam("b_table"),
        record_id=bindparam("b_id"),
        last_at=bindparam("b_at", type_=t.c.last_at.type),
    )
    return statement.on_conflict_do_update(
        index_elements=[t.c.lookup_key, t.c.table_name, t.c.record_id],
        set_={"last_at": statement.excluded.last_at},
        where=t.c.last_at < statement.excluded.last_at,
    )


_LAST = select(
    phone_conversations.c.table_name,
    phone_conversations.c.record_id,
    phone_conversations.c.last_at,
).where(phone_conversations.c.lookup_key == bindparam("b_key"))
_UPSERT = {"sqlite": _upsert(sqlite), "postgresql": _upsert(postgresql)}


class ResolutionLedger:
    """Conversation recency on a :class:`StateStore`."""

    def __init__(self, store: StateStore) -> None:
        self._engine = store.engine
        self._writes = bookkeeping_engine(store)  # written with the session mirror: see below
        self._upsert = _UPSERT["postgresql" if store.dialect == "postgresql" else "sqlite"]

    def last_conversations(self, key: str) -> dict[RecordRef, datetime]:
        """When each record last had a conversation with the number ``key``."""
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(_LAST, {"b_key": key}).all()
        except SQLAlchemyError as exc:
            raise StateStoreError(f"conversation lookup failed: {type(exc).__name__}") from exc
        return {RecordRef(r.table_name, r.record_id): _aware(r.last_at) for r in rows}

    def note_conversation(self, key: str, record: RecordRef, at: datetime) -> None:
        """Record that ``record`` talked with ``key`` at ``at`` (later times win): one
        statement, so racing writers need no retry.

        Written like the session mirror (``bookkeeping_engine``: no flush per commit), as
        it is noted when a message's session is linked to its record, beside that session:
        a power cut may lose the last moments of both, and the next message from the
        number resolves again (a flush per note cost four times the CPU of the write)."""
        params = {"b_key": key, "b_table": record.table, "b_id": record.id, "b_at": at}
        try:
            with self._writes.begin() as conn:
                conn.execute(self._upsert, params)
        except SQLAlchemyError as exc:
            raise StateStoreError(f"conversation write failed: {type(exc).__name__}") from exc


def _aware(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
