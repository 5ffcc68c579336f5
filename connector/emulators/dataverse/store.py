"""SQLite storage for the emulator: one real table per Dataverse table, plus metadata.

Each Dataverse table ``x`` is the SQLite table ``e_x`` with one typed column per attribute
(strings ``COLLATE NOCASE`` so comparisons are case-insensitive as in Dataverse; a lookup
``y`` stores the target id in ``y`` and the target table in ``y__type``). Phone columns,
``modifiedon``, ``versionnumber``, lookups and active alternate keys are indexed, so filters
the connector runs stay fast at a million rows. Definitions are kept as JSON in ``_emu_*``
tables so custom tables survive a restart. A write version counter drives ETags and change
tracking; deletes leave tombstones.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from connector.emulators.dataverse.metadata import (
    DECIMAL_TYPES,
    INTEGER_TYPES,
    STRING_TYPES,
    AttributeDef,
    EntityDef,
    KeyDef,
    RelationshipDef,
    from_json,
    relationship_from_json,
    to_json,
)

_META = """
CREATE TABLE IF NOT EXISTS _emu_entities (logical_name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS _emu_relationships (schema_name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS _emu_counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS _emu_tombstones (
    entity TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS _emu_tombstones_v ON _emu_tombstones (entity, version);
INSERT OR IGNORE INTO _emu_counter VALUES ('version', 1000);
"""


def table_name(entity: EntityDef | str) -> str:
    """The quoted SQLite table of a Dataverse table."""
    name = entity if isinstance(entity, str) else entity.logical_name
    return f'"e_{name}"'


def q(column: str) -> str:
    """Quote a column name (names come from metadata, never from raw input)."""
    return '"' + column.replace('"', '""') + '"'


def column_sql(attribute: AttributeDef) -> list[str]:
    """Column definitions for one attribute."""
    kind = attribute.attribute_type
    name = q(attribute.logical_name)
    if attribute.is_primary_id:
        return [f"{name} TEXT PRIMARY KEY"]
    if attribute.is_lookup:
        return [f"{name} TEXT", f"{q(attribute.logical_name + '__type')} TEXT"]
    if kind in STRING_TYPES:
        return [f"{name} TEXT COLLATE NOCASE"]
    if kind in INTEGER_TYPES or kind == "Boolean":
        return [f"{name} INTEGER"]
    if kind in DECIMAL_TYPES:
        return [f"{name} REAL"]
    return [f"{name} TEXT"]


class Store:
    """A SQLite database (file or memory) guarded by one re-entrant lock."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or ":memory:"
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            # Copied back into the database every 100 pages (SQLite's default: 1,000): each
            # checkpoint flushes the WAL and then the pages it copied, and at 1,000 pages that
            # sent the disk 7-10 MB within 100 ms, which the connector's next journal flush
            # on the same disk had to persist (the inbound benchmark's kernel trace).
            self.conn.execute("PRAGMA wal_autocheckpoint=100")
            # Statement and savepoint journals (every change set of a $batch is a savepoint)
            # in memory: as files they were created, written and deleted about 15 times a
            # second under the inbound benchmark, on the disk the connector's journal uses.
            self.conn.execute("PRAGMA temp_store=MEMORY")
        self.conn.executescript(_META)
        self.lock = threading.RLock()
        # Actions to run after the outermost commit, one list per open (nested) level: a
        # released savepoint hands its list to the level around it, a rolled-back one drops
        # it (each release touches only its own actions, however many the batch has asked).
        self._after: list[list[Callable[[], None]]] = []
        self._saved: dict[str, str] = {}  # table definitions as last stored (skip unchanged)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction; nested calls become savepoints that roll back on their own."""
        with self.lock:
            depth = len(self._after) + 1
            savepoint = f"sp{depth}"
            self.conn.execute("BEGIN IMMEDIATE" if depth == 1 else f"SAVEPOINT {savepoint}")
            self._after.append([])
            try:
                yield
                self.conn.execute("COMMIT" if depth == 1 else f"RELEASE {savepoint}")
            except BaseException:
                self._after.pop()
                if depth > 1:
                    self.conn.execute(f"ROLLBACK TO {savepoint}")
                    self.conn.execute(f"RELEASE {savepoint}")
                elif self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                self._saved.clear()  # what is stored is no longer known: save in full next time
                raise
            ready = self._after.pop()
            if self._after:
                self._after[-1].extend(ready)
                return
            for action in ready:
                action()

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the current transaction commits (now, outside one); dropped
        when the savepoint or transaction it was asked in rolls back."""
        if self._after:
            self._after[-1].append(action)
        else:
            action()

    # -- metadata ---------------------------------------------------------------------------

    def load_definitions(self) -> tuple[list[EntityDef], list[RelationshipDef]]:
        """Stored definitions (empty on a fresh database)."""
        bodies = [
            row[0] for row in self.conn.execute("SELECT body FROM _emu_entities ORDER BY rowid")
        ]
        entities = [from_json(json.loads(body)) for body in bodies]
        self._saved = {
            entity.logical_name: body for entity, body in zip(entities, bodies, strict=True)
        }
        rels = [
            relationship_from_json(json.loads(row[0]))
            for row in self.conn.execute("SELECT body FROM _emu_relationships ORDER BY rowid")
        ]
        return entities, rels

    def save_entity(self, entity: EntityDef) -> None:
        """Persist a definition and bring its SQLite table in line with it (nothing to do when
        the stored definition is already this one)."""
        body = json.dumps(to_json(entity))
        if self._saved.get(entity.logical_name) == body:
            return
        self.conn.execute(
            "INSERT INTO _emu_entities VALUES (?, ?) ON CONFLICT(logical_name) "
            "DO UPDATE SET body = excluded.body",
            (entity.logical_name, body),
        )
        self.ensure_table(entity)
        self._saved[entity.logical_name] = body

    def save_relationship(self, rel: RelationshipDef) -> None:
        """Persist a relationship definition."""
        self.conn.execute(
            "INSERT INTO _emu_relationships VALUES (?, ?) ON CONFLICT(schema_name) "
            "DO UPDATE SET body = excluded.body",
            (rel.schema_name, json.dumps(asdict(rel))),
        )

    def ensure_table(self, entity: EntityDef) -> None:
        """Create the table, add missing columns, create the standard indexes."""
        table = table_name(entity)
        existing = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
        if not existing:
            columns = [sql for attr in entity.attributes.values() for sql in column_sql(attr)]
            self.conn.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
        else:
            for attr in entity.attributes.values():
                if attr.logical_name not in existing:
                    for sql in column_sql(attr):
                        self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {sql}")
        for attr in entity.attributes.values():
            indexed = attr.format_name == "Phone" or (
                attr.is_lookup and not attr.extra.get("unindexed")
            )
            if indexed or attr.logical_name in ("modifiedon", "versionnumber"):
                index = q(f"ix_{entity.logical_name}_{attr.logical_name}")
                self.conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({q(attr.logical_name)})"
                )

    def create_key_index(self, entity: EntityDef, key: KeyDef) -> bool:
        """Build a key's unique index; False when existing rows hold duplicate values."""
        columns = ", ".join(q(c) for c in key.key_attributes)
        index = q(f"uk_{entity.logical_name}_{key.logical_name}")
        try:
            self.conn.execute(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {table_name(entity)} ({columns})"
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def drop_key_index(self, entity: EntityDef, key: KeyDef) -> None:
        """Drop a key's unique index."""
        self.conn.execute(
            f"DROP INDEX IF EXISTS {q(f'uk_{entity.logical_name}_{key.logical_name}')}"
        )

    # -- rows -------------------------------------------------------------------------------

    def next_version(self) -> int:
        """Advance and return the global row version (call inside a transaction)."""
        self.conn.execute("UPDATE _emu_counter SET value = value + 1 WHERE name = 'version'")
        return self.current_version()

    def current_version(self) -> int:
        """The newest row version handed out."""
        row = self.conn.execute("SELECT value FROM _emu_counter WHERE name = 'version'").fetchone()
        return int(row[0])

    def insert(self, entity: EntityDef, row: dict[str, Any]) -> None:
        """Insert one row given as storage columns (raises sqlite3.IntegrityError)."""
        names = ", ".join(q(c) for c in row)
        marks = ", ".join("?" for _ in row)
        self.conn.execute(
            f"INSERT INTO {table_name(entity)} ({names}) VALUES ({marks})", list(row.values())
        )

    def drop_plain_indexes(self, entity: EntityDef) -> list[str]:
        """Drop a table's non-unique indexes (before a bulk load); returns their names."""
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND name LIKE 'ix_%'",
            [f"e_{entity.logical_name}"],
        ).fetchall()
        for (name,) in rows:
            self.conn.execute(f"DROP INDEX {q(name)}")
        return [str(name) for (name,) in rows]

    def bulk_insert(
        self, entity: EntityDef, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        """Fast path for seeding many rows (benchmarks, fixtures): one executemany."""
        names = ", ".join(q(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        with self.transaction():
            self.conn.executemany(
                f"INSERT INTO {table_name(entity)} ({names}) VALUES ({marks})", rows
            )

    def update(self, entity: EntityDef, record_id: str, row: dict[str, Any]) -> None:
        """Update columns of one row by primary key."""
        sets = ", ".join(f"{q(c)} = ?" for c in row)
        self.conn.execute(
            f"UPDATE {table_name(entity)} SET {sets} WHERE {q(entity.primary_id)} = ?",
            [*row.values(), record_id],
        )

    def delete(self, entity: EntityDef, record_id: str, version: int) -> None:
        """Delete one row and leave a tombstone for change tracking."""
        self.conn.execute(
            f"DELETE FROM {table_name(entity)} WHERE {q(entity.primary_id)} = ?", [record_id]
        )
        self.conn.execute(
            "INSERT INTO _emu_tombstones VALUES (?, ?, ?)",
            (entity.logical_name, record_id, version),
        )

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a SELECT as dicts (built from plain tuples: ``dict(sqlite3.Row)`` costs
        about half a millisecond for a standard table's hundreds of columns)."""
        with self.lock:
            cursor = self.conn.cursor()
            cursor.row_factory = None
            cursor.execute(sql, list(params))
            names = [column[0] for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row."""
        with self.lock:
            row = self.conn.execute(sql, list(params)).fetchone()
        return None if row is None else row[0]

    def tombstones(self, entity: EntityDef, since: int, upto: int) -> list[str]:
        """Ids deleted after version ``since`` up to ``upto``."""
        rows = self.select(
            "SELECT id FROM _emu_tombstones WHERE entity = ? AND version > ? AND version <= ? "
            "ORDER BY version",
            (entity.logical_name, since, upto),
        )
        return [str(row["id"]) for row in rows]

    def wipe(self) -> None:
        """Drop every table (``POST /_emulator/reset``)."""
        with self.lock:
            names = [
                row[0]
                for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for name in names:
                self.conn.execute(f"DROP TABLE IF EXISTS {q(name)}")
            self._saved.clear()
            self.conn.executescript(_META)
