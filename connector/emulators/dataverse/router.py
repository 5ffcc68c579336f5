"""The emulator's dispatcher: which handler answers a Web API path and method.

:class:`Emulator` is the state of ``state`` plus routing; this module imports the handlers
(rows, metadata, actions, ``$batch``), they import only the state, so arrows go one way.
``Emulator.handle`` takes a framework-free request and always returns a response (errors in
the Web API envelope), so the Starlette app, ``$batch`` parts and unit tests share it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.emulators.dataverse import (
    actions,
    associations,
    batch,
    components,
    entity_api,
    impersonation,
    metadata_api,
    metadata_changes,
    reads,
)
from connector.emulators.dataverse.addressing import parse_key, split_segment
from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.metadata import EntityDef
from connector.emulators.dataverse.protocol import (
    EmuRequest,
    EmuResponse,
    bad_request,
    fault_response,
)
from connector.emulators.dataverse.state import EmulatorState
from connector.emulators.dataverse.store import q, table_name
from connector.emulators.dataverse.tables import create_table
from connector.log_config import get_logger

METADATA_SETS = ("EntityDefinitions", "RelationshipDefinitions", "CreateCustomerRelationships")
log = get_logger(__name__)
BULK_ACTIONS = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")


class Emulator(EmulatorState):
    """A Dataverse-compatible Web API over one SQLite store: the state, and its routing."""

    def handle(self, req: EmuRequest) -> EmuResponse:
        """Route one request; faults become the Web API error envelope."""
        try:
            return self.dispatch(req)
        except EmulatorRequestError as fault:
            return fault_response(fault)
        except Exception:  # an emulator bug: answer like the service does, and log it
            log.exception("emulator.unexpected_error", method=req.method, path=req.path)
            return fault_response(
                EmulatorRequestError(500, "0x80040216", "An unexpected error occurred.")
            )

    def dispatch(self, req: EmuRequest) -> EmuResponse:
        """Route one request, raising :class:`EmulatorRequestError` on errors."""
        segments = [s for s in req.path.split("/") if s]
        self.activate_keys()
        if not segments:
            return self._service_document(req)
        name = split_segment(segments[0])[0]
        if name in METADATA_SETS:
            return metadata_api.handle(self, req, segments)
        special = self._operations().get((req.method, name.removesuffix("()")))
        if special is not None:
            return special(req)
        if name == "$metadata":
            raise EmulatorRequestError(501, "0x8006088b", "The emulator does not serve $metadata.")
        if name == "roles" and len(segments) == 2 and segments[1].endswith("AddPrivilegesRole"):
            return components.add_privileges_role(self, req, split_segment(segments[0])[1] or "")
        return self._entity_set(req, segments)

    def _operations(self) -> dict[tuple[str, str], Callable[[EmuRequest], EmuResponse]]:
        return {
            ("POST", "$batch"): lambda req: batch.handle(self, req),
            ("GET", "WhoAmI"): actions.who_am_i,
            ("POST", "PublishXml"): lambda req: EmuResponse.empty(204),
            ("POST", "PublishAllXml"): lambda req: EmuResponse.empty(204),
            ("POST", "SendAppNotification"): lambda req: actions.send_app_notification(
                self.records, req
            ),
            ("POST", "CreateEntities"): self._create_entities,
            ("POST", "InsertOptionValue"): lambda req: metadata_changes.insert_option_value(
                self, req
            ),
            ("GET", "RetrieveRolePrivilegesRole"): self._role_privileges,
            ("POST", "AddAppComponents"): lambda req: components.add_app_components(self, req),
        }

    def _role_privileges(self, req: EmuRequest) -> EmuResponse:
        _, key = split_segment(req.path.strip("/").split("/")[0])
        role_id = (key or "").partition("=")[2].strip("'")
        return components.retrieve_role_privileges(self, req, role_id)

    def _create_entities(self, req: EmuRequest) -> EmuResponse:
        solution = req.header("mscrm.solutionuniquename") or req.query.get("SolutionUniqueName")
        entities = req.json().get("Entities")
        if not isinstance(entities, list) or not entities:
            raise bad_request("Entities must be a non-empty list.", "0x80040203")
        with self.store.transaction():
            created = [create_table(self, body, solution) for body in entities]
        context = f"{req.api_root}/$metadata#Microsoft.Dynamics.CRM.CreateEntitiesResponse"
        ids = [entity.metadata_id for entity in created]
        return EmuResponse.of_json(200, {"@odata.context": context, "EntityIds": ids})

    def _entity_set(self, req: EmuRequest, segments: list[str]) -> EmuResponse:
        name, key = split_segment(segments[0])
        entity = self.schema.require_set(name)
        rest = segments[1:]
        records = self.records
        if key is None:
            return self._collection(req, entity, rest)
        if not rest:
            return self._row(req, entity, key)
        if rest[-1] == "$ref" and split_segment(rest[0])[0] in self.schema.many.get(
            entity.logical_name, {}
        ):
            return associations.reference(self.records, req, entity, key, rest[0])
        if rest[-1] == "$ref":
            return entity_api.reference_op(records, req, entity, key, rest[0])
        related = {
            *self.schema.collection_navs(entity.logical_name),
            *self.schema.many.get(entity.logical_name, {}),
        }
        if rest[0] in related and req.method == "GET":
            return self._related(req, entity, key, rest[0])
        return entity_api.property_op(records, req, entity, key, rest[0])

    def _row(self, req: EmuRequest, entity: EntityDef, key: str) -> EmuResponse:
        handlers: dict[str, Any] = {
            "GET": entity_api.retrieve,
            "PATCH": entity_api.patch,
            "DELETE": entity_api.delete,
        }
        if req.method not in handlers:
            raise _method(req)
        if req.method == "GET":
            result: EmuResponse = handlers[req.method](self.records, req, entity, key)
            return result
        self._refuse_read_only(entity)
        caller = impersonation.check_write(self.records, req, entity, key)
        result = handlers[req.method](self.records, req, entity, key)
        self._note_caller(caller, result)
        return result

    def _collection(self, req: EmuRequest, entity: EntityDef, rest: list[str]) -> EmuResponse:
        records = self.records
        if not rest and req.method == "GET":
            return reads.list_rows(records, req, entity)
        if not rest and req.method == "POST":
            self._refuse_read_only(entity)
            caller = impersonation.check_write(records, req, entity, None)
            created = entity_api.create(records, req, entity)
            self._note_caller(caller, created)
            return created
        if not rest:
            raise _method(req)
        if rest == ["$count"] and req.method == "GET":
            return reads.count_rows(records, entity)
        action = rest[0].removeprefix("Microsoft.Dynamics.CRM.")
        if action in BULK_ACTIONS and req.method == "POST":
            return actions.bulk(records, req, entity, action)
        raise bad_request(f"Resource not found for the segment '{rest[0]}'.", "0x8006088a")

    def _related(self, req: EmuRequest, entity: EntityDef, key: str, nav_name: str) -> EmuResponse:
        row = self.records.find(entity, parse_key(entity, key))
        if row is None:
            raise EmulatorRequestError(404, "0x80040217", f"{entity.logical_name} Does Not Exist")
        record_id = row[entity.primary_id]
        many = self.schema.many.get(entity.logical_name, {}).get(nav_name)
        if many is not None:
            child = self.schema.entity(many.target)
            scope = (
                f"{q(child.primary_id)} IN (SELECT {q(many.target_column)} FROM "
                f"{table_name(many.intersect)} WHERE {q(many.self_column)} = ?)",
                [record_id],
            )
        else:
            nav = self.schema.collection_navs(entity.logical_name)[nav_name]
            child = self.schema.entity(nav.entity)
            scope = (f"{q(nav.attribute)} = ?", [record_id])
        return reads.list_rows(self.records, req, child, scope)

    def _note_caller(self, caller: impersonation.WriteCaller | None, result: EmuResponse) -> None:
        if caller is not None and result.status < 300:
            self.callers.append(caller)

    def _refuse_read_only(self, entity: EntityDef) -> None:
        if entity.logical_name in ("activityparty", "activitypointer"):
            raise EmulatorRequestError(
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


def _method(req: EmuRequest) -> EmulatorRequestError:
    return EmulatorRequestError(
        405, "0x80060888", f"The HTTP method '{req.method}' is not allowed for this resource."
    )
