"""The emulator core: one object owning store, schema and counters, routing Web API paths.

``Emulator.handle`` takes a framework-free request and always returns a response (errors in
the Web API envelope), so the Starlette app, ``$batch`` parts and unit tests share it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from connector.emulator import actions, entity_api, reads
from connector.emulator.addressing import parse_key, split_segment
from connector.emulator.metadata import EntityDef
from connector.emulator.protocol import EmuRequest, EmuResponse, bad_request, fault_response
from connector.emulator.records import Records
from connector.emulator.schema import Schema
from connector.emulator.seed import SEED_USER_ID, standard_schema
from connector.emulator.store import Store
from connector.errors import EmulatorFault

BULK_ACTIONS = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")


class Emulator:
    """A Dataverse-compatible Web API over one SQLite store."""

    def __init__(self, db_path: str | None = None, key_delay: bool = False) -> None:
        self.store = Store(db_path)
        self.key_delay = key_delay
        self.stats: Counter[str] = Counter()
        self.schema = self._load_schema()
        self.records = Records(self.store, self.schema)

    def _load_schema(self) -> Schema:
        entities, rels = self.store.load_definitions()
        if entities:
            schema = Schema()
            for entity in entities:
                schema.add_entity(entity)
            for rel in rels:
                schema.add_relationship(rel)
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
            self.stats.clear()
            self.schema = self._load_schema()
            self.records = Records(self.store, self.schema)

    def save_entity(self, entity: EntityDef) -> None:
        """Register and persist a table definition (metadata API)."""
        self.schema.add_entity(entity)
        self.store.save_entity(entity)

    def handle(self, req: EmuRequest) -> EmuResponse:
        """Route one request; faults become the Web API error envelope."""
        try:
            return self.dispatch(req)
        except EmulatorFault as fault:
            return fault_response(fault)

    def dispatch(self, req: EmuRequest) -> EmuResponse:
        """Route one request, raising :class:`EmulatorFault` on errors."""
        segments = [s for s in req.path.split("/") if s]
        if not segments:
            return self._service_document(req)
        head = segments[0]
        name = split_segment(head)[0]
        if name in (
            "EntityDefinitions",
            "RelationshipDefinitions",
            "GlobalOptionSetDefinitions",
            "CreateCustomerRelationships",
        ):
            from connector.emulator import metadata_api

            return metadata_api.handle(self, req, segments)
        if name == "$batch":
            from connector.emulator import batch

            return batch.handle(self, req)
        if name in ("WhoAmI", "WhoAmI()"):
            return actions.who_am_i(req)
        if name in ("PublishXml", "PublishAllXml") and req.method == "POST":
            return EmuResponse.empty(204)
        if name == "SendAppNotification" and req.method == "POST":
            return actions.send_app_notification(self.records, req)
        if name == "$metadata":
            raise EmulatorFault(501, "0x8006088b", "The emulator does not serve $metadata.")
        return self._entity_set(req, segments)

    def _entity_set(self, req: EmuRequest, segments: list[str]) -> EmuResponse:
        name, key = split_segment(segments[0])
        entity = self.schema.require_set(name)
        rest = segments[1:]
        records = self.records
        if key is None:
            if not rest:
                if req.method == "GET":
                    return reads.list_rows(records, req, entity)
                if req.method == "POST":
                    self._refuse_read_only(entity)
                    return entity_api.create(records, req, entity)
                raise _method(req)
            if rest == ["$count"] and req.method == "GET":
                return reads.count_rows(records, entity)
            action = rest[0].removeprefix("Microsoft.Dynamics.CRM.")
            if action in BULK_ACTIONS and req.method == "POST":
                return actions.bulk(records, req, entity, action)
            raise bad_request(f"Resource not found for the segment '{rest[0]}'.", "0x8006088a")
        if not rest:
            handlers: dict[str, Any] = {
                "GET": entity_api.retrieve,
                "PATCH": entity_api.patch,
                "DELETE": entity_api.delete,
            }
            if req.method not in handlers:
                raise _method(req)
            if req.method != "GET":
                self._refuse_read_only(entity)
            result: EmuResponse = handlers[req.method](records, req, entity, key)
            return result
        if rest[-1] == "$ref":
            return entity_api.reference_op(records, req, entity, key, rest[0])
        if rest[0] in self.schema.collection_navs(entity.logical_name) and req.method == "GET":
            return self._related(req, entity, key, rest[0])
        return entity_api.property_op(records, req, entity, key, rest[0])

    def _related(self, req: EmuRequest, entity: EntityDef, key: str, nav_name: str) -> EmuResponse:
        nav = self.schema.collection_navs(entity.logical_name)[nav_name]
        row = self.records.find(entity, parse_key(entity, key))
        if row is None:
            raise EmulatorFault(404, "0x80040217", f"{entity.logical_name} Does Not Exist")
        child = self.schema.entity(nav.entity)
        condition = f"_{nav.attribute}_value eq {row[entity.primary_id]}"
        query = dict(req.query)
        query["$filter"] = (
            f"({query['$filter']}) and {condition}" if "$filter" in query else condition
        )
        inner = EmuRequest(req.method, child.entity_set, query, req.headers, b"", req.base_url)
        return reads.list_rows(self.records, inner, child)

    def _refuse_read_only(self, entity: EntityDef) -> None:
        if entity.logical_name in ("activityparty", "activitypointer"):
            raise EmulatorFault(
                405,
                "0x80040800",
                f"The '{entity.logical_name}' entity set only supports retrieving rows.",
            )

    def _service_document(self, req: EmuRequest) -> EmuResponse:
        value = [
            {"name": e.entity_set, "kind": "EntitySet", "url": e.entity_set}
            for e in self.schema.entities.values()
        ]
        return EmuResponse.of_json(
            200, {"@odata.context": f"{req.api_root}/$metadata", "value": value}
        )


def _method(req: EmuRequest) -> EmulatorFault:
    return EmulatorFault(
        405, "0x80060888", f"The HTTP method '{req.method}' is not allowed for this resource."
    )
