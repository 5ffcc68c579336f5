"""Row operations: create, find, update, delete, with binds, parties, keys and versions.

The rules Dataverse applies to a write live here: ``@odata.bind`` names checked against the
table's navigation properties (case-sensitive) and the bound row must exist; activity parties
written by deep insert; system columns (created/modified, state, owner, version) defaulted;
alternate-key uniqueness reported as ``0x80060892``. Every write takes a new row version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from connector.emulators.dataverse import activities, components
from connector.emulators.dataverse.addressing import (
    Address,
    parse_key,
    reference_path,
    split_segment,
)
from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.metadata import EntityDef, new_id
from connector.emulators.dataverse.protocol import bad_request, not_found
from connector.emulators.dataverse.schema import Schema
from connector.emulators.dataverse.seed import SEED_USER_ID
from connector.emulators.dataverse.store import Store, q, table_name
from connector.emulators.dataverse.values import now_text, to_storage

READ_ONLY = frozenset({"createdon", "modifiedon", "versionnumber", "activitytypecode"})
ContentIds = dict[str, str]


class Records:
    """Row-level operations over a store and a schema."""

    def __init__(self, store: Store, schema: Schema) -> None:
        self.store = store
        self.schema = schema
        self.observer: Callable[[EntityDef, str, str], None] | None = None
        """Told ``(table, row id, "create" | "update" | "delete")`` once a write commits."""

    def _notify(self, entity: EntityDef, record_id: str, operation: str) -> None:
        observer = self.observer
        if observer is not None:
            self.store.after_commit(lambda: observer(entity, record_id, operation))

    # -- reads ------------------------------------------------------------------------------

    def get(
        self, entity: EntityDef, record_id: str, columns: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        """A row by primary key (only ``columns``, when given: standard tables have hundreds)."""
        rows = self.store.select(
            f"SELECT {_listed(columns)} FROM {table_name(entity)} WHERE {q(entity.primary_id)} = ?",
            (record_id,),
        )
        return rows[0] if rows else None

    def find(
        self, entity: EntityDef, address: Address, columns: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        """A row by primary key or alternate-key values (only ``columns``, when given)."""
        if address.record_id is not None:
            return self.get(entity, address.record_id, columns)
        values = address.alternate or {}
        where = " AND ".join(f"{q(name)} = ?" for name in values)
        rows = self.store.select(
            f"SELECT {_listed(columns)} FROM {table_name(entity)} WHERE {where} LIMIT 1",
            list(values.values()),
        )
        return rows[0] if rows else None

    def display_name(self, table: str, record_id: str) -> str | None:
        """The primary name of a row (lookup FormattedValue annotations)."""
        entity = self.schema.entities.get(table)
        if entity is None or not entity.primary_name:
            return None
        value = self.store.scalar(
            f"SELECT {q(entity.primary_name)} FROM {table_name(entity)} "
            f"WHERE {q(entity.primary_id)} = ?",
            [record_id],
        )
        return None if value is None else str(value)

    def resolve_reference(
        self, value: str, content_ids: ContentIds | None, *, id_only: bool = False
    ) -> tuple[EntityDef, dict[str, Any]]:
        """The row a bind or ``@odata.id`` names (``/contacts(<id>)``, ``$1``); 404 if none.
        ``id_only``: read only its primary id (a bind needs no more)."""
        path = reference_path(value)
        if path.startswith("$") and content_ids is not None:
            ref, _, rest = path.partition("/")
            if ref[1:] not in content_ids:
                raise bad_request(
                    f"Content-ID Reference: '{ref}' does not exist in the batch context."
                )
            path = reference_path(content_ids[ref[1:]]) + (f"/{rest}" if rest else "")
        name, key = split_segment(path)
        entity = self.schema.require_set(name)
        if key is None:
            raise bad_request(f"The reference '{value}' does not address a single row.")
        address = parse_key(entity, key)
        row = self.find(entity, address, (entity.primary_id,) if id_only else ())
        if row is None:
            raise not_found(entity.logical_name, address.record_id or str(address.alternate))
        return entity, row

    # -- writes -----------------------------------------------------------------------------

    def create(
        self,
        entity: EntityDef,
        body: dict[str, Any],
        defaults: dict[str, Any] | None = None,
        content_ids: ContentIds | None = None,
    ) -> dict[str, Any]:
        """Insert a row from a payload; returns the stored row."""
        body = activities.prepare_create(entity, body)
        with self.store.transaction():
            row, after = self._convert(entity, body, content_ids)
            _note_object_type(entity, row)
            for name, value in (defaults or {}).items():
                row.setdefault(name, value)
            for name, attr in entity.attributes.items():
                if "default" in attr.extra and row.get(name) is None:
                    row[name] = to_storage(entity, attr, attr.extra["default"])
            record_id = str(row.get(entity.primary_id) or new_id()).lower()
            stamp = now_text()
            row.update({entity.primary_id: record_id, "createdon": stamp, "modifiedon": stamp})
            row.setdefault("statecode", 0)
            row.setdefault("statuscode", 1)
            if "ownerid" in entity.attributes and row.get("ownerid") is None:
                row.update({"ownerid": SEED_USER_ID, "ownerid__type": "systemuser"})
            if entity.is_activity:
                row["activitytypecode"] = entity.logical_name
            row["versionnumber"] = self.store.next_version()
            components.validate(self.schema, entity, row)
            self._write(entity, lambda: self.store.insert(entity, row), record_id)
            for action in after:
                action(record_id)
            self._derive_fullname(entity, record_id)
            found = self.get(entity, record_id)
            self._mirror(entity, found)
            self._notify(entity, record_id, "create")
        assert found is not None
        return found

    def _mirror(self, entity: EntityDef, row: dict[str, Any] | None) -> None:
        pointer = self.schema.entities.get(activities.POINTER)
        if row is not None and pointer is not None:
            activities.mirror(self.store, pointer, entity, row)

    def _derive_fullname(self, entity: EntityDef, record_id: str) -> None:
        """contact, lead and systemuser compute ``fullname`` from first and last name."""
        if entity.primary_name != "fullname" or "lastname" not in entity.attributes:
            return
        key = q(entity.primary_id)
        self.store.conn.execute(
            f"UPDATE {table_name(entity)} SET fullname = NULLIF(TRIM(COALESCE(firstname, '') "
            f"|| ' ' || COALESCE(lastname, '')), '') WHERE {key} = ?",
            [record_id],
        )

    def update(
        self,
        entity: EntityDef,
        current: dict[str, Any],
        body: dict[str, Any],
        content_ids: ContentIds | None = None,
    ) -> dict[str, Any]:
        """Apply a payload to an existing row; returns the stored row."""
        record_id = str(current[entity.primary_id])
        body = activities.prepare_update(entity, current, body)
        with self.store.transaction():
            row, after = self._convert(entity, body, content_ids)
            _note_object_type(entity, row)
            row.pop(entity.primary_id, None)
            row["modifiedon"] = now_text()
            row["versionnumber"] = self.store.next_version()
            components.validate(self.schema, entity, {**current, **row})
            self._write(entity, lambda: self.store.update(entity, record_id, row), record_id)
            for action in after:
                action(record_id)
            self._derive_fullname(entity, record_id)
            found = self.get(entity, record_id)
            self._mirror(entity, found)
            self._notify(entity, record_id, "update")
        assert found is not None
        return found

    def delete(self, entity: EntityDef, row: dict[str, Any]) -> None:
        """Delete a row (and its activity parties), leaving a tombstone."""
        record_id = str(row[entity.primary_id])
        with self.store.transaction():
            if entity.is_activity and "activityparty" in self.schema.entities:
                self.store.conn.execute(
                    f"DELETE FROM {table_name('activityparty')} WHERE activityid = ?", [record_id]
                )
            self.store.delete(entity, record_id, self.store.next_version())
            activities.unmirror(self.store, entity, record_id)
            self._notify(entity, record_id, "delete")

    def _write(self, entity: EntityDef, action: Callable[[], None], record_id: str) -> None:
        try:
            action()
        except sqlite3.IntegrityError as exc:
            raise self._duplicate(entity, str(exc), record_id) from exc

    def _duplicate(self, entity: EntityDef, detail: str, record_id: str) -> EmulatorRequestError:
        for key in entity.active_keys():
            columns = [f"e_{entity.logical_name}.{c}" for c in key.key_attributes]
            if ", ".join(columns) in detail:
                return EmulatorRequestError(
                    412,
                    "0x80060892",
                    f"A record that has the attribute values {', '.join(key.key_attributes)} "
                    f"already exists. The entity key {key.schema_name} requires that this set "
                    f"of attributes contains unique values.",
                )
        return EmulatorRequestError(412, "0x80040237", "Cannot insert duplicate key.")

    def _convert(
        self, entity: EntityDef, body: dict[str, Any], content_ids: ContentIds | None
    ) -> tuple[dict[str, Any], list[Callable[[str], None]]]:
        """Payload to storage columns, plus deep inserts to run once the row exists."""
        row: dict[str, Any] = {}
        after: list[Callable[[str], None]] = []
        navs = self.schema.single_navs(entity.logical_name)
        collections = self.schema.collection_navs(entity.logical_name)
        for name, value in body.items():
            if name.startswith("@odata.") or "@OData." in name or name in READ_ONLY:
                continue
            if name.endswith("@odata.bind"):
                nav = navs.get(name[: -len("@odata.bind")])
                if nav is None:
                    raise _undeclared(name[: -len("@odata.bind")])
                row.update(self._bind(nav.attribute, nav.targets, value, content_ids))
            elif name in collections and isinstance(value, list):
                coll = collections[name]
                after.append(
                    self._deep_insert(coll.entity, coll.attribute, entity, value, content_ids)
                )
            elif name in navs and (value is None or isinstance(value, dict)):
                nav = navs[name]
                linked = (
                    self._bind(nav.attribute, nav.targets, None, None)
                    if value is None
                    else self._deep_single(nav.attribute, nav.targets, value)
                )
                row.update(linked)
            else:
                row.update(self._column(entity, name, value))
        return row, after

    def _column(self, entity: EntityDef, name: str, value: Any) -> dict[str, Any]:
        attr = entity.attributes.get(name)
        if attr is None:
            raise bad_request(
                f"The property '{name}' does not exist on type "
                f"'Microsoft.Dynamics.CRM.{entity.logical_name}'. Make sure to only use "
                f"property names that are defined by the type."
            )
        if attr.is_lookup:
            if value is not None:
                raise bad_request(f"Set the lookup '{name}' through an @odata.bind.")
            return {name: None, f"{name}__type": None}
        return {name: to_storage(entity, attr, value)}

    def _bind(
        self, attribute: str, targets: tuple[str, ...], value: Any, content_ids: ContentIds | None
    ) -> dict[str, Any]:
        if value is None:
            return {attribute: None, f"{attribute}__type": None}
        if not isinstance(value, str):
            raise bad_request(f"The @odata.bind value for '{attribute}' must be a URL string.")
        target, row = self.resolve_reference(value, content_ids, id_only=True)
        if target.logical_name not in targets:
            raise bad_request(
                f"The @odata.bind for '{attribute}' points at '{target.logical_name}', "
                f"expected one of {', '.join(targets)}."
            )
        return {attribute: row[target.primary_id], f"{attribute}__type": target.logical_name}

    def _deep_single(
        self, attribute: str, targets: tuple[str, ...], body: dict[str, Any]
    ) -> dict[str, Any]:
        """Deep insert of a single-valued navigation: create the related row, then link it."""
        if len(targets) != 1:
            raise bad_request(f"Deep insert through '{attribute}' needs a single target table.")
        target = self.schema.entity(targets[0])
        created = self.create(target, body)
        return {attribute: created[target.primary_id], f"{attribute}__type": target.logical_name}

    def _deep_insert(
        self,
        child_name: str,
        attribute: str,
        parent: EntityDef,
        items: list[Any],
        content_ids: ContentIds | None,
    ) -> Callable[[str], None]:
        child = self.schema.entity(child_name)
        parties = child_name == "activityparty"
        if parties:
            activities.check_parties(parent, items)
        prepared = [dict(item) for item in items if isinstance(item, dict)]

        def insert_children(parent_id: str) -> None:
            link = {attribute: parent_id, f"{attribute}__type": parent.logical_name}
            if parties:
                activities.clear_parties(self.store, parent_id)
            for item in prepared:
                self.create(child, item, defaults=link, content_ids=content_ids)

        return insert_children


def _undeclared(name: str) -> EmulatorRequestError:
    return bad_request(
        f"An undeclared property '{name}' which only has property annotations in the payload "
        f"but no property value was found in the payload. In OData, only declared navigation "
        f"properties and declared named streams can be represented as properties without "
        f"values.",
        "0x80060888",
    )


def _note_object_type(entity: EntityDef, row: dict[str, Any]) -> None:
    """A note's ``objecttypecode`` is the table its ``objectid`` points at, set by Dataverse
    whenever the lookup is (the Web API reads it as that table's logical name)."""
    if entity.logical_name == "annotation" and row.get("objectid__type"):
        row["objecttypecode"] = row["objectid__type"]


def _listed(columns: Sequence[str]) -> str:
    """A SELECT list: the quoted ``columns``, or every column."""
    return ", ".join(q(name) for name in columns) if columns else "*"
