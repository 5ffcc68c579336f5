"""The emulator's state: one object owning the SQLite store, the schema and the counters.

Every handler (rows, metadata, ``$batch``) reads and writes through :class:`EmulatorState`;
routing a request to a handler is ``router``'s job, so this module imports no handler and the
handlers import it. A fresh store gets the standard tables and the application user; a store
that has definitions already is loaded as it is.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter

from connector.emulators.dataverse import plugins
from connector.emulators.dataverse.impersonation import WriteCaller
from connector.emulators.dataverse.metadata import EntityDef
from connector.emulators.dataverse.records import Records
from connector.emulators.dataverse.reference_columns import add_reference_columns
from connector.emulators.dataverse.schema import Schema
from connector.emulators.dataverse.seed import SEED_BUSINESS_UNIT_ID, SEED_USER_ID
from connector.emulators.dataverse.standard import add_many_to_many, standard_schema
from connector.emulators.dataverse.store import Store
from connector.emulators.dataverse.webhooks import WebhookDispatcher


class EmulatorState:
    """Store, schema, rows and counters of one Dataverse emulator."""

    def __init__(self, db_path: str | None = None, key_delay: float = 0.0) -> None:
        self.store = Store(db_path)
        self.key_delay = key_delay
        self.stats: Counter[str] = Counter()
        self.callers: list[WriteCaller] = []  # writes made with CallerObjectId, in order
        self.webhooks = WebhookDispatcher(lambda: self.records)
        self.schema = self._load_schema()
        self.records = self._records()
        self._keys_settled: Schema | None = None
        """The schema last seen with no key pending (every request asks; most find none)."""

    def _records(self) -> Records:
        """Rows over the current schema, with the plug-in registration tables and the
        webhook dispatcher told about each committed write."""
        added = plugins.add_registration_tables(self.schema)
        if added:
            with self.store.transaction():
                for entity in added:
                    self.store.save_entity(entity)
                for rel in self.schema.relationships.values():
                    self.store.save_relationship(rel)
        records = Records(self.store, self.schema)
        plugins.seed_messages(records)
        records.observer = self.webhooks.written
        self.webhooks.forget_registrations()  # a reset or restore brings other rows
        return records

    def table_created(self, entity: EntityDef) -> None:
        """A table created through the metadata API gets its message filters."""
        plugins.add_filters(self.records, entity)

    def _load_schema(self) -> Schema:
        entities, rels = self.store.load_definitions()
        if entities:
            schema = Schema()
            names = {entity.logical_name for entity in entities}
            for entity in entities:
                add_reference_columns(entity, names)  # a file from an older emulator catches up
                schema.add_entity(entity)
            for rel in rels:
                schema.add_relationship(rel)
            add_many_to_many(schema)
            with self.store.transaction():
                for entity in entities:
                    self.store.save_entity(entity)  # only the tables that changed are written
            return schema
        schema = standard_schema()
        with self.store.transaction():
            for entity in schema.entities.values():
                self.store.save_entity(entity)
            for rel in schema.relationships.values():
                self.store.save_relationship(rel)
        self._seed_rows(schema)
        return schema

    def _seed_rows(self, schema: Schema) -> None:
        records = Records(self.store, schema)
        records.create(
            schema.entities["businessunit"],
            {"businessunitid": SEED_BUSINESS_UNIT_ID, "name": "Emulator organization"},
        )
        records.create(
            schema.entities["systemuser"],
            {
                "systemuserid": SEED_USER_ID,
                "fullname": "Emulator Application User",
                "firstname": "Emulator",
                "lastname": "Application User",
                "internalemailaddress": "emulator@example.invalid",
                "isdisabled": False,
            },
        )

    def reset(self) -> None:
        """Drop all data and definitions and reseed (``POST /_emulator/reset``)."""
        with self.store.lock:
            self.store.wipe()
            self._reload()

    def snapshot(self) -> sqlite3.Connection:
        """A copy of everything stored now (rows and definitions), for :meth:`restore`."""
        copy = sqlite3.connect(":memory:", check_same_thread=False)
        with self.store.lock:
            self.store.conn.backup(copy)
        return copy

    def restore(self, snapshot: sqlite3.Connection) -> None:
        """Back to the state :meth:`snapshot` copied (counters at zero), as a restart would
        load it: rows, tables, columns and keys as they were then."""
        with self.store.lock:
            snapshot.backup(self.store.conn)
            self._reload()

    def _reload(self) -> None:
        self.stats.clear()
        self.schema = self._load_schema()
        self.records = self._records()

    def persist_schema(self) -> None:
        """Write every definition back to the store (after a metadata change)."""
        with self.store.transaction():
            self.store.conn.execute("DELETE FROM _emu_relationships")
            for entity in self.schema.entities.values():
                self.store.save_entity(entity)
            for rel in self.schema.relationships.values():
                self.store.save_relationship(rel)

    def keys_changed(self) -> None:
        """A key was added: the next request looks for pending keys again."""
        self._keys_settled = None

    def activate_keys(self) -> None:
        """Build the indexes of pending alternate keys that are due (Pending -> Active/Failed)."""
        if self._keys_settled is self.schema:
            return
        pending = [
            (entity, key)
            for entity in self.schema.entities.values()
            for key in entity.keys
            if key.status == "Pending"
        ]
        if not pending:
            self._keys_settled = self.schema
            return
        now = time.monotonic()
        due = [(entity, key) for entity, key in pending if key.active_after <= now]
        if not due:
            return
        with self.store.transaction():
            for entity, key in due:
                if key.status == "Pending":
                    ok = self.store.create_key_index(entity, key)
                    key.status = "Active" if ok else "Failed"
            self.persist_schema()
