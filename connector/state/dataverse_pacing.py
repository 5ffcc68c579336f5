"""The fleet's Dataverse pacing in the state store: a :class:`~connector.ports.PacingStore`.

Every process of one state store (a SQLite file on one machine, PostgreSQL for a fleet)
shares, per Dataverse user, one ``dataverse_pacing`` row (the pause, the learned rate, the
next free slot, the window's counts) and one ``dataverse_members`` row per live process
(renewed every few seconds; the fleet's concurrency cap is shared among them). The pacing
row changes by compare-and-set on its ``version`` (``UPDATE ... WHERE version = :seen``;
the first insert of a key is ``ON CONFLICT DO NOTHING``), ONE statement, so no lock is held
while Python runs; a writer that lost the race reads again.

Losing the last writes in a power cut is harmless (the fleet re-learns from the next 429),
so writes commit without waiting for the disk (:func:`bookkeeping_engine`).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    String,
    Table,
    and_,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from connector.errors import StateStoreError
from connector.ports import PaceState
from connector.state.db import StateStore, metadata
from connector.state.group_commit import bookkeeping_engine

pacing_table = Table(
    "dataverse_pacing",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("rate", Float, nullable=True),
    Column("next_at", Float, nullable=False),
    Column("paused_until", Float, nullable=False),
    Column("learned", Boolean, nullable=False),
    Column("bucket_start", Float, nullable=False),
    Column("counts", String(2000), nullable=False),
    Column("recent", Float, nullable=False),
    Column("last_at", Float, nullable=False),
    Column("version", Integer, nullable=False),
)

members_table = Table(
    "dataverse_members",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("member", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False),
)

_FIELDS = (
    "rate",
    "next_at",
    "paused_until",
    "learned",
    "bucket_start",
    "recent",
    "last_at",
)


class StateStorePacing:
    """Pacing rows and concurrency slots per Dataverse user, in the state store."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        store.create_all()
        self._engine = bookkeeping_engine(store)
        self._insert = (postgresql if store.dialect == "postgresql" else sqlite).insert

    def read(self, key: str) -> PaceState | None:
        """The stored state of ``key``; None before its first request."""
        query = select(pacing_table).where(pacing_table.c.key == key)
        try:
            with self._engine.connect() as conn:
                row = conn.execute(query).mappings().first()
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot read the Dataverse pacing: {exc}") from exc
        if row is None:
            return None
        counts = tuple(int(n) for n in row["counts"].split(",") if n)
        return PaceState(**{name: row[name] for name in (*_FIELDS, "version")}, counts=counts)

    def write(self, key: str, expected: PaceState | None, new: PaceState) -> bool:
        """Store ``new`` if ``key`` still holds ``expected``; False when another writer won."""
        values = {name: getattr(new, name) for name in _FIELDS}
        values["counts"] = ",".join(str(n) for n in new.counts)
        values["version"] = (0 if expected is None else expected.version) + 1
        table = pacing_table
        if expected is None:
            statement = self._insert(table).values(key=key, **values).on_conflict_do_nothing()
        else:
            statement = (
                update(table)
                .where(and_(table.c.key == key, table.c.version == expected.version))
                .values(**values)
            )
        try:  # RETURNING tells whether a row was written (psycopg's rowcount does not, here)
            with self._engine.begin() as conn:
                return conn.execute(statement.returning(table.c.version)).first() is not None
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot write the Dataverse pacing: {exc}") from exc

    def join(self, key: str, member: str, now: float, ttl: float) -> int:
        """Renew ``member`` until ``now + ttl``; the members of ``key`` alive now."""
        table = members_table
        renew = (
            self._insert(table)
            .values(key=key, member=member, expires_at=now + ttl)
            .on_conflict_do_update(
                index_elements=[table.c.key, table.c.member], set_={"expires_at": now + ttl}
            )
        )
        alive = select(func.count()).where(table.c.key == key, table.c.expires_at > now)
        gone = delete(table).where(table.c.key == key, table.c.expires_at < now - 3600)
        try:
            with self._engine.begin() as conn:
                conn.execute(renew)
                conn.execute(gone)  # members dead for an hour: keep the table small
                return int(conn.execute(alive).scalar_one())
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot join the Dataverse fleet: {exc}") from exc

    def part(self, key: str, member: str) -> None:
        """Forget ``member``."""
        table = members_table
        statement = delete(table).where(table.c.key == key, table.c.member == member)
        try:
            with self._engine.begin() as conn:
                conn.execute(statement)
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot leave the Dataverse fleet: {exc}") from exc
