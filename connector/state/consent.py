"""The local consent ledger: what the send path checks (no Dataverse request) and what is
still to be written to Dataverse's ``smsc_consent`` ledger.

Two tables on the state store:

- ``consent_change``: every change ever applied, with its evidence, keyed by the change's id
  (derived from its cause, so a webhook delivered again or a retried request records it
  once), and whether Dataverse has it yet (``synced``; a failed write waits ``sync_due_at``);
- ``consent_current``: the latest change per (phone, configuration, purpose), read with one
  indexed query per send.

A change is applied in one durable transaction (the store's own engine: ``synchronous=FULL``
on SQLite) before anything it causes happens: a STOP is honoured by every later send even
when Dataverse is down. Changes pulled from Dataverse (an admin's edit, an import) are
applied the same way but arrive already synced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from connector.domain.consent import ConsentChange, ConsentMethod, ConsentStatus, Evidence
from connector.domain.model import MessageCategory
from connector.errors import StateStoreError
from connector.state.db import StateStore, metadata
from connector.state.group_commit import bookkeeping_engine
from connector.state.held_readers import HeldReaders

changes_table = Table(
    "consent_change",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("phone", String(32), nullable=False),
    Column("configuration_id", String(36), nullable=False),
    Column("purpose", String(20), nullable=False),
    Column("data", Text, nullable=False),
    Column("at", Float, nullable=False),
    Column("synced", Boolean, nullable=False),
    Column("sync_due_at", Float, nullable=False),
    Column("sync_attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Index("ix_consent_change_phone", "phone", "at"),
    Index("ix_consent_change_unsynced", "synced", "sync_due_at"),
)
current_table = Table(
    "consent_current",
    metadata,
    Column("phone", String(32), primary_key=True),
    Column("configuration_id", String(36), primary_key=True),
    Column("purpose", String(20), primary_key=True),
    Column("at", Float, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("data", Text, nullable=False),
)
_RETRY_CAP = 300.0


def _dump(change: ConsentChange) -> str:
    data = change.to_dict()
    data["phone"] = change.phone
    data["configuration_id"] = change.configuration_id
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _load(text: str) -> ConsentChange:
    data = json.loads(text)
    evidence = data["evidence"]
    return ConsentChange(
        id=data["id"],
        phone=data["phone"],
        configuration_id=data["configuration_id"],
        purpose=MessageCategory(data["purpose"]),
        status=ConsentStatus(data["status"]),
        method=ConsentMethod(data["method"]),
        evidence=Evidence(
            at=float(evidence["at"]),
            source=evidence["source"],
            message_id=evidence.get("message_id"),
            text=evidence.get("text"),
        ),
        expires_at=data.get("expires_at"),
    )


def _error(what: str, exc: Exception) -> StateStoreError:
    return StateStoreError(f"cannot {what}: {type(exc).__name__}: {str(exc)[:200]}")


_CURRENT = select(current_table.c.data).where(
    current_table.c.phone == bindparam("phone"),
    current_table.c.configuration_id == bindparam("configuration_id"),
)
"""Every send reads it: built once (building a Core statement per call cost a fifth of the
send API's CPU in a profile of ``connector serve`` at 200 sends/s)."""


class ConsentLedger:
    """The local consent ledger on a :class:`~connector.state.db.StateStore`."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        store.create_all()
        self._reads = bookkeeping_engine(store)
        self._held = HeldReaders(self._reads, 4)  # every send and inbound message reads

    def close(self) -> None:
        """Release the held read connections and the extra engine."""
        self._held.close_all()
        if self._reads is not self.store.engine:
            self._reads.dispose()

    # -- writing ------------------------------------------------------------------------
    def apply(
        self, changes: Sequence[ConsentChange], *, synced: bool = False
    ) -> list[ConsentChange]:
        """Record ``changes`` (in order) durably and make each the current state of its
        (phone, configuration, purpose) unless a later one is there already; the changes
        that were new (one already recorded is skipped: applying is idempotent)."""
        if not changes:
            return []
        for _ in range(3):  # two appliers racing for the same sequence number: try again
            try:
                with self.store.engine.begin() as conn:
                    return self._apply(conn, changes, synced)
            except IntegrityError:
                continue
            except SQLAlchemyError as exc:
                raise _error("record a consent change", exc) from exc
        raise StateStoreError("the consent ledger kept changing under this change")

    def _apply(
        self, conn: Connection, changes: Sequence[ConsentChange], synced: bool
    ) -> list[ConsentChange]:
        c, k = changes_table.c, current_table.c
        ids = [change.id for change in changes]
        known = set(conn.execute(select(c.id).where(c.id.in_(ids))).scalars())
        seq = int(conn.execute(select(c.seq).order_by(c.seq.desc()).limit(1)).scalar() or 0)
        new: list[ConsentChange] = []
        for change in changes:
            if change.id in known:
                continue
            known.add(change.id)
            seq += 1
            text = _dump(change)
            conn.execute(
                changes_table.insert().values(
                    id=change.id,
                    seq=seq,
                    phone=change.phone,
                    configuration_id=change.configuration_id,
                    purpose=change.purpose.value,
                    data=text,
                    at=change.evidence.at,
                    synced=synced,
                    sync_due_at=0.0,
                    sync_attempts=0,
                )
            )
            key = (
                (k.phone == change.phone)
                & (k.configuration_id == change.configuration_id)
                & (k.purpose == change.purpose.value)
            )
            held = conn.execute(select(k.at).where(key)).first()
            values = {"at": change.evidence.at, "seq": seq, "data": text}
            if held is None:
                conn.execute(
                    current_table.insert().values(
                        phone=change.phone,
                        configuration_id=change.configuration_id,
                        purpose=change.purpose.value,
                        **values,
                    )
                )
            elif float(held.at) <= change.evidence.at:
                conn.execute(update(current_table).where(key).values(**values))
            new.append(change)
        return new

    # -- reading ------------------------------------------------------------------------
    def current(self, phone: str, configuration_id: str) -> dict[MessageCategory, ConsentChange]:
        """The current state per purpose of ``phone`` with one sender (one indexed read)."""
        params = {"phone": phone, "configuration_id": configuration_id}
        try:
            found = self._held.run(lambda conn: conn.execute(_CURRENT, params).scalars().all())
            rows = [_load(str(text)) for text in found]
        except SQLAlchemyError as exc:
            raise _error("read the consent ledger", exc) from exc
        return {change.purpose: change for change in rows}

    def everywhere(self, phone: str) -> list[ConsentChange]:
        """The current state of ``phone`` with every sender and purpose."""
        k = current_table.c
        query = select(k.data).where(k.phone == phone).order_by(k.configuration_id, k.purpose)
        with self._reads.connect() as conn:
            return [_load(str(text)) for text in conn.execute(query).scalars()]

    def history(self, phone: str) -> list[ConsentChange]:
        """Every change recorded for ``phone``, oldest first."""
        c = changes_table.c
        query = select(c.data).where(c.phone == phone).order_by(c.at, c.seq)
        with self._reads.connect() as conn:
            return [_load(str(text)) for text in conn.execute(query).scalars()]

    # -- syncing to Dataverse -------------------------------------------------------------
    def unsynced(self, now: float, limit: int = 100) -> list[ConsentChange]:
        """Changes Dataverse does not have yet whose next try is due, oldest first."""
        c = changes_table.c
        query = (
            select(c.data)
            .where(c.synced.is_(False), c.sync_due_at <= now)
            .order_by(c.seq)
            .limit(limit)
        )
        with self._reads.connect() as conn:
            return [_load(str(text)) for text in conn.execute(query).scalars()]

    def has_unsynced(self, phone: str, configuration_id: str) -> bool:
        """Whether a change of ``phone`` with this sender still waits for Dataverse."""
        c = changes_table.c
        query = select(c.id).where(
            c.phone == phone, c.configuration_id == configuration_id, c.synced.is_(False)
        )
        with self._reads.connect() as conn:
            return conn.execute(query.limit(1)).first() is not None

    def next_sync_due(self) -> float | None:
        """When the earliest unsynced change is due, or None."""
        c = changes_table.c
        query = select(c.sync_due_at).where(c.synced.is_(False)).order_by(c.sync_due_at)
        with self._reads.connect() as conn:
            value = conn.execute(query.limit(1)).scalar()
        return None if value is None else float(value)

    def mark_synced(self, ids: Iterable[str]) -> None:
        """Dataverse has these changes."""
        chosen = list(ids)
        if not chosen:
            return
        with self.store.engine.begin() as conn:
            conn.execute(
                update(changes_table)
                .where(changes_table.c.id.in_(chosen))
                .values(synced=True, last_error=None)
            )

    def sync_failed(self, failures: Mapping[str, Exception], now: float) -> None:
        """Try these again later (backing off per change, at most five minutes apart)."""
        c = changes_table.c
        with self.store.engine.begin() as conn:
            for change_id, exc in failures.items():
                attempts = conn.execute(select(c.sync_attempts).where(c.id == change_id)).scalar()
                tries = int(attempts or 0) + 1
                conn.execute(
                    update(changes_table)
                    .where(c.id == change_id)
                    .values(
                        sync_attempts=tries,
                        sync_due_at=now + min(_RETRY_CAP, 2.0**tries),
                        last_error=str(exc)[:500],
                    )
                )

    def counts(self) -> dict[str, Any]:
        """How many changes are recorded and how many Dataverse still lacks (health)."""
        c = changes_table.c
        with self._reads.connect() as conn:
            total = conn.execute(select(func.count()).select_from(changes_table)).scalar()
            waiting = conn.execute(
                select(func.count()).select_from(changes_table).where(c.synced.is_(False))
            ).scalar()
        return {"changes": int(total or 0), "unsynced": int(waiting or 0)}
