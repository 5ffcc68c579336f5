"""The phone index: lookup key -> candidate CRM records, kept in the state store.

Built by the phone sync from every configured record type's phone columns; read by the
resolver on each inbound message, so a lookup is one indexed ``SELECT`` (well under a
millisecond at a million rows). Rows are replaced per record (delete + insert in one
transaction), which works the same on SQLite and PostgreSQL. A row found through a related
record (an opportunity through its parent contact) names that parent in ``via_*`` so that
deleting or renumbering the parent drops it too.

Also here: the sync cursors (delta link or ``modifiedon`` watermark per table).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import SQLAlchemyError

from connector.domain.phone_records import IndexEntry, SyncCursor
from connector.domain.routing import Candidate, RecordRef
from connector.errors import StateStoreError
from connector.state.db import StateStore, metadata
from connector.state.group_commit import atomic, bookkeeping_engine
from connector.state.held_readers import HeldReaders

phone_index = Table(
    "phone_index",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("lookup_key", String(32), nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("column_name", String(160), nullable=False),
    Column("name", String(256), nullable=False, default=""),
    Column("owner_id", String(64)),
    Column("owner_is_team", Boolean, nullable=False, default=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("modified_on", DateTime(timezone=True)),
    Column("via_table", String(64)),
    Column("via_id", String(64)),
    Index("ix_phone_index_key", "lookup_key"),
    Index("ix_phone_index_record", "record_id", "table_name"),
    Index("ix_phone_index_via", "via_id", "via_table"),
)

phone_sync_cursor = Table(
    "phone_sync_cursor",
    metadata,
    Column("table_name", String(64), primary_key=True),
    Column("delta_link", String(4000)),
    Column("watermark", DateTime(timezone=True)),
    Column("full_sync_at", DateTime(timezone=True)),
)

_LOOKUP = select(phone_index).where(phone_index.c.lookup_key == bindparam("b_key"))
_LOOKUP_MANY = select(phone_index).where(
    phone_index.c.lookup_key.in_(bindparam("b_keys", expanding=True))
)
"""Every inbound message's lookup (and a batch's), built once (building it per call cost more
CPU than the indexed read itself)."""
_CHUNK = 500
_WRITE_GROUP = 100  # records per write transaction (see PhoneIndex.replace)
_T = TypeVar("_T")


class PhoneIndex:
    """The phone index on a :class:`StateStore` (SQLite or PostgreSQL)."""

    def __init__(self, store: StateStore, *, held_readers: int = 4) -> None:
        self._engine = store.engine
        self._writes = bookkeeping_engine(store)  # derived data: rebuilt from Dataverse
        self._readers = HeldReaders(store.engine, held_readers)

    def lookup(self, key: str) -> list[Candidate]:
        """Every candidate record carrying the number with lookup key ``key``."""
        params = {"b_key": key}
        try:
            rows = self._readers.run(lambda conn: conn.execute(_LOOKUP, params).mappings().all())
        except SQLAlchemyError as exc:
            raise StateStoreError(f"phone index lookup failed: {type(exc).__name__}") from exc
        return [_candidate(row) for row in rows]

    def lookup_many(self, keys: Sequence[str]) -> dict[str, list[Candidate]]:
        """:meth:`lookup` of many keys in one read (a claimed batch's numbers), by key; a
        key nothing carries is left out."""
        wanted = sorted(set(keys))
        found: dict[str, list[Candidate]] = defaultdict(list)

        def read(conn: Connection, chunk: Sequence[str]) -> Sequence[RowMapping]:
            return conn.execute(_LOOKUP_MANY, {"b_keys": list(chunk)}).mappings().all()

        try:
            for chunk in _chunks(wanted):
                for row in self._readers.run(functools.partial(read, chunk=chunk)):
                    found[row["lookup_key"]].append(_candidate(row))
        except SQLAlchemyError as exc:
            raise StateStoreError(f"phone index lookup failed: {type(exc).__name__}") from exc
        return dict(found)

    def close(self) -> None:
        """Close every held read connection (at shutdown, before the store closes)."""
        self._readers.close_all()
        if self._writes is not self._engine:
            self._writes.dispose()

    def entries_for(self, records: Sequence[RecordRef]) -> dict[RecordRef, list[IndexEntry]]:
        """The direct (not related) entries of ``records``, grouped by record."""
        out: dict[RecordRef, list[IndexEntry]] = defaultdict(list)
        with self._engine.connect() as conn:
            for table, ids in _by_table(records).items():
                for chunk in _chunks(ids):
                    query = select(phone_index).where(
                        phone_index.c.table_name == table,
                        phone_index.c.record_id.in_(chunk),
                        phone_index.c.via_table.is_(None),
                    )
                    for row in conn.execute(query).mappings():
                        cand = _candidate(row)
                        out[cand.record].append(IndexEntry(row["lookup_key"], cand))
        return dict(out)

    def entries_via(self, parents: Sequence[RecordRef]) -> dict[RecordRef, list[IndexEntry]]:
        """Every entry of each record found through one of ``parents``, grouped by record."""
        related: set[RecordRef] = set()
        with self._engine.connect() as conn:
            for table, ids in _by_table(parents).items():
                for chunk in _chunks(ids):
                    query = select(phone_index.c.table_name, phone_index.c.record_id).where(
                        phone_index.c.via_table == table, phone_index.c.via_id.in_(chunk)
                    )
                    related.update(RecordRef(*row) for row in conn.execute(query.distinct()))
            out: dict[RecordRef, list[IndexEntry]] = defaultdict(list)
            for table, ids in _by_table(sorted(related)).items():
                for chunk in _chunks(ids):
                    query = select(phone_index).where(
                        phone_index.c.table_name == table, phone_index.c.record_id.in_(chunk)
                    )
                    for row in conn.execute(query).mappings():
                        cand = _candidate(row)
                        out[cand.record].append(IndexEntry(row["lookup_key"], cand))
        return dict(out)

    def replace(self, records: Mapping[RecordRef, Iterable[IndexEntry]]) -> int:
        """Make the index hold exactly these entries for each record; returns rows written.

        Each record's entries change at once, in transactions of :data:`_WRITE_GROUP`
        records: a page of 5,000 records in one transaction held the state file's write lock
        for 120-250 ms, and every webhook append waited for it.
        """
        written = 0
        refs = list(records)
        try:
            for group in _chunks(refs, _WRITE_GROUP):
                rows = [_row(entry) for ref in group for entry in records[ref] if entry.key]
                with atomic(self._writes) as conn:
                    _delete_records(conn, list(group), related=False)
                    if rows:
                        conn.execute(insert(phone_index), rows)
                written += len(rows)
        except SQLAlchemyError as exc:
            raise StateStoreError(f"phone index write failed: {type(exc).__name__}") from exc
        return written

    def delete(self, records: Sequence[RecordRef]) -> None:
        """Forget ``records`` and every entry found through them (deleted CRM rows)."""
        try:
            for group in _chunks(records, _WRITE_GROUP):
                with atomic(self._writes) as conn:
                    _delete_records(conn, list(group), related=True)
        except SQLAlchemyError as exc:
            raise StateStoreError(f"phone index delete failed: {type(exc).__name__}") from exc

    def clear_table(self, table: str) -> None:
        """Drop every entry of ``table`` (before a full rebuild)."""
        with self._engine.begin() as conn:
            conn.execute(delete(phone_index).where(phone_index.c.table_name == table))

    def records_in(self, table: str) -> set[str]:
        """Ids of every record of ``table`` in the index (to find deletions on a full sync)."""
        query = select(phone_index.c.record_id).where(phone_index.c.table_name == table)
        with self._engine.connect() as conn:
            return set(conn.execute(query.distinct()).scalars())

    def count(self) -> int:
        """Number of index rows."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(phone_index)).scalar_one())

    def cursor(self, table: str) -> SyncCursor:
        """The sync cursor of ``table`` (empty when it was never synced)."""
        query = select(phone_sync_cursor).where(phone_sync_cursor.c.table_name == table)
        with self._engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return SyncCursor(table=table)
        return SyncCursor(
            table=table,
            delta_link=row["delta_link"],
            watermark=_aware(row["watermark"]),
            full_sync_at=_aware(row["full_sync_at"]),
        )

    def save_cursor(self, cursor: SyncCursor) -> None:
        """Store where the next incremental sync of ``cursor.table`` resumes."""
        values = {
            "delta_link": cursor.delta_link,
            "watermark": cursor.watermark,
            "full_sync_at": cursor.full_sync_at,
        }
        table = phone_sync_cursor
        with self._engine.begin() as conn:
            done = conn.execute(
                update(table).where(table.c.table_name == cursor.table).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(insert(table).values(table_name=cursor.table, **values))


def _delete_records(conn: Any, records: list[RecordRef], *, related: bool) -> None:
    for table, ids in _by_table(records).items():
        for chunk in _chunks(ids):
            direct = and_(phone_index.c.table_name == table, phone_index.c.record_id.in_(chunk))
            via = and_(phone_index.c.via_table == table, phone_index.c.via_id.in_(chunk))
            conn.execute(delete(phone_index).where(or_(direct, via) if related else direct))


def _by_table(records: Iterable[RecordRef]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for ref in records:
        grouped[ref.table].append(ref.id)
    return grouped


def _chunks(items: Sequence[_T], size: int = _CHUNK) -> Iterable[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _row(entry: IndexEntry) -> dict[str, Any]:
    c = entry.candidate
    return {
        "lookup_key": entry.key,
        "table_name": c.record.table,
        "record_id": c.record.id,
        "column_name": c.matched_column[:160],
        "name": c.name[:256],
        "owner_id": c.owner_id,
        "owner_is_team": c.owner_is_team,
        "active": c.active,
        "modified_on": c.modified_on,
        "via_table": c.via.table if c.via else None,
        "via_id": c.via.id if c.via else None,
    }


def _candidate(row: RowMapping) -> Candidate:
    via = RecordRef(row["via_table"], row["via_id"]) if row["via_table"] else None
    return Candidate(
        record=RecordRef(row["table_name"], row["record_id"]),
        name=row["name"],
        owner_id=row["owner_id"],
        owner_is_team=bool(row["owner_is_team"]),
        active=bool(row["active"]),
        modified_on=_aware(row["modified_on"]),
        matched_column=row["column_name"],
        via=via,
    )


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
