"""Resolution memory in the state store: recent conversations per number, and lead claims.

* ``phone_conversations``: which record last had a conversation with a number (the first
  routing rule), updated on every resolution and when a conversation is moved.
* ``lead_claims``: one row per unknown number while its lead is created. The primary key makes
  exactly one worker the creator however many messages from the number arrive together; the
  others see the claim and wait (retry) until the creator stores the lead id. A claim whose
  creator died is taken over after ``stale_after`` seconds; so is a completed one (by then the
  lead is in the phone index, and a miss means it was deleted or renumbered).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, DateTime, PrimaryKeyConstraint, String, Table, delete, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from connector.domain.phone_records import LeadClaim
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

lead_claims = Table(
    "lead_claims",
    metadata,
    Column("lookup_key", String(32), primary_key=True),
    Column("token", String(36), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("lead_id", String(64)),
)


class ResolutionLedger:
    """Conversation recency and lead claims on a :class:`StateStore`."""

    def __init__(self, store: StateStore, *, stale_after: float = 120.0) -> None:
        self._engine = store.engine
        self._stale_after = timedelta(seconds=stale_after)

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

    def claim_lead(self, key: str, now: datetime) -> LeadClaim:
        """Become the one creator of the lead for ``key``, or learn who is / what was made."""
        token = str(uuid.uuid4())
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(lead_claims).values(lookup_key=key, token=token, claimed_at=now)
                )
            return LeadClaim("mine", token)
        except IntegrityError:
            pass
        except SQLAlchemyError as exc:
            raise StateStoreError(f"lead claim failed: {type(exc).__name__}") from exc
        return self._existing_claim(key, token, now)

    def _existing_claim(self, key: str, token: str, now: datetime) -> LeadClaim:
        t = lead_claims
        with self._engine.begin() as conn:
            row = conn.execute(select(t).where(t.c.lookup_key == key)).mappings().first()
            if row is None:  # released in between: try again from the start
                return LeadClaim("pending", token)
            fresh = _aware(row["claimed_at"]) + self._stale_after > now
            if fresh:
                if row["lead_id"]:
                    return LeadClaim("done", row["token"], row["lead_id"])
                return LeadClaim("pending", row["token"])
            taken = conn.execute(
                sql_update(t)
                .where(t.c.lookup_key == key, t.c.token == row["token"])
                .values(token=token, claimed_at=now, lead_id=None)
            )
        return LeadClaim("mine", token) if taken.rowcount == 1 else LeadClaim("pending", token)

    def complete_lead(self, key: str, token: str, lead_id: str) -> None:
        """Store the created lead's id on the claim the caller holds."""
        t = lead_claims
        with self._engine.begin() as conn:
            conn.execute(
                sql_update(t)
                .where(t.c.lookup_key == key, t.c.token == token)
                .values(lead_id=lead_id)
            )

    def release_lead(self, key: str, token: str) -> None:
        """Give up a claim whose lead could not be created (another worker may try)."""
        t = lead_claims
        with self._engine.begin() as conn:
            conn.execute(
                delete(t).where(t.c.lookup_key == key, t.c.token == token, t.c.lead_id.is_(None))
            )


def _aware(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
