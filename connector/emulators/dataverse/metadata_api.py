"""The metadata Web API: ``EntityDefinitions`` (with Attributes, Keys), ``RelationshipDefinitions``.

Creates tables (standard and activity), columns, one-to-many relationships (lookups with
their navigation-property names), customer relationships and alternate keys as the real
service does, and answers the reads Microsoft's Python SDK performs (``$filter=LogicalName eq``,
``$select``, ``$expand=Keys|Attributes``, the ``PicklistAttributeMetadata`` cast). A new key
starts ``Pending`` and turns ``Active`` once its index is built (after ``key_delay`` seconds).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from connector.emulators.dataverse import metadata_changes
from connector.emulators.dataverse import metadata_shapes as shapes
from connector.emulators.dataverse.addressing import is_guid, parse_literal, split_segment
from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.metadata import (
    AttributeDef,
    EntityDef,
    KeyDef,
    RelationshipDef,
    label_text,
)
from connector.emulators.dataverse.protocol import EmuRequest, EmuResponse, bad_request
from connector.emulators.dataverse.query import evaluate as matches
from connector.emulators.dataverse.query import parse_expand, parse_filter
from connector.emulators.dataverse.tables import create_table, new_relationship

if TYPE_CHECKING:
    from connector.emulators.dataverse.state import EmulatorState

CAST_PREFIX = "Microsoft.Dynamics.CRM."
RELATIONSHIP_SIDES = {
    "OneToManyRelationships": "referenced_entity",
    "ManyToOneRelationships": "referencing_entity",
    "ManyToManyRelationships": "none",
}


def handle(emulator: EmulatorState, req: EmuRequest, segments: list[str]) -> EmuResponse:
    """Route a metadata request."""
    name, key = split_segment(segments[0])
    if name == "RelationshipDefinitions":
        return _relationships(emulator, req, key)
    if name == "CreateCustomerRelationships":
        return _customer_relationships(emulator, req)
    if key is None:
        if req.method == "POST":
            entity = create_table(emulator, req.json(), _solution(req))
            url = f"{req.api_root}/EntityDefinitions({entity.metadata_id})"
            return EmuResponse.empty(204, {"OData-EntityId": url})
        if req.method != "GET":
            raise EmulatorRequestError(
                405, "0x80060888", "Method not allowed on EntityDefinitions."
            )
        items = [_entity_body(emulator, e, req.query) for e in emulator.schema.entities.values()]
        return _collection(req, "EntityDefinitions", items)
    return _one_entity(emulator, req, key, segments[1:])


def _one_entity(emulator: EmulatorState, req: EmuRequest, key: str, rest: list[str]) -> EmuResponse:
    entity = _find_entity(emulator, key)
    if not rest and req.method == "GET":
        body = shapes.project(_entity_body(emulator, entity, req.query), req.query.get("$select"))
        context = f"{req.api_root}/$metadata#EntityDefinitions/$entity"
        return EmuResponse.of_json(200, {"@odata.context": context, **body})
    if not rest:
        raise EmulatorRequestError(405, "0x80060888", "Use PUT to replace a table definition.")
    part, sub_key = split_segment(rest[0])
    if part == "Attributes":
        return _attributes(emulator, req, entity, sub_key, rest[1:])
    if part == "Keys":
        return _keys(emulator, req, entity, sub_key)
    if part in RELATIONSHIP_SIDES and req.method == "GET":
        rels = [
            shapes.relationship_json(rel)
            for rel in emulator.schema.relationships.values()
            if getattr(rel, RELATIONSHIP_SIDES[part], None) == entity.logical_name
        ]
        return _collection(req, f"EntityDefinitions/{part}", rels)
    raise EmulatorRequestError(404, "0x8006088a", f"Resource not found for the segment '{part}'.")


def _solution(req: EmuRequest) -> str | None:
    return req.header("mscrm.solutionuniquename") or req.query.get("SolutionUniqueName")


def _find_entity(emulator: EmulatorState, key: str) -> EntityDef:
    if is_guid(key):
        for entity in emulator.schema.entities.values():
            if entity.metadata_id == key.lower():
                return entity
        raise EmulatorRequestError(
            404, "0x80040217", f"Could not find entity with MetadataId '{key}'."
        )
    name, _, value = key.partition("=")
    if name.strip() != "LogicalName":
        raise bad_request(f"Invalid EntityDefinitions key '{key}'.")
    return emulator.schema.entity(str(parse_literal(value)))


def _collection(req: EmuRequest, name: str, items: list[dict[str, Any]]) -> EmuResponse:
    if req.query.get("$filter"):
        condition = parse_filter(req.query["$filter"])
        items = [item for item in items if matches(condition, item)]
    items = [shapes.project(item, req.query.get("$select")) for item in items]
    context = f"{req.api_root}/$metadata#{name}"
    return EmuResponse.of_json(200, {"@odata.context": context, "value": items})


def _entity_body(
    emulator: EmulatorState, entity: EntityDef, query: dict[str, str]
) -> dict[str, Any]:
    body = shapes.entity_json(entity)
    for item in parse_expand(query.get("$expand", "")):
        if item.nav == "Keys":
            keys = [shapes.key_json(entity, key) for key in entity.keys]
            body["Keys"] = [shapes.project(k, item.options.get("$select")) for k in keys]
        elif item.nav == "Attributes":
            attrs = [shapes.attribute_json(entity, a) for a in entity.attributes.values()]
            body["Attributes"] = [shapes.project(a, item.options.get("$select")) for a in attrs]
    return body


def _attributes(
    emulator: EmulatorState, req: EmuRequest, entity: EntityDef, key: str | None, rest: list[str]
) -> EmuResponse:
    cast = rest[0].removeprefix(CAST_PREFIX) if rest else None
    if req.method == "POST" and key is None:
        attr = shapes.attribute_from_payload(req.json())
        if attr.logical_name in entity.attributes:
            raise bad_request(
                f"An attribute named {attr.logical_name} already exists.", "0x80044363"
            )
        entity.add(attr)
        emulator.persist_schema()
        url = (
            f"{req.api_root}/EntityDefinitions({entity.metadata_id})/Attributes({attr.metadata_id})"
        )
        return EmuResponse.empty(204, {"OData-EntityId": url})
    if req.method == "PUT" and key is not None and not rest:
        return metadata_changes.replace_attribute(emulator, req, entity, key)
    if req.method != "GET":
        raise EmulatorRequestError(405, "0x80060888", "Method not allowed on Attributes.")
    attrs = list(entity.attributes.values())
    if cast:
        kind = cast.removesuffix("AttributeMetadata")
        attrs = [a for a in attrs if a.extra.get("declared_type", a.attribute_type) == kind]
    items = [_with_expand(shapes.attribute_json(entity, a), req) for a in attrs]
    if key is None:
        return _collection(req, "EntityDefinitions/Attributes", items)
    found = [i for i in items if _matches_key(i, key)]
    if not found:
        raise EmulatorRequestError(404, "0x80040217", f"Could not find attribute '{key}'.")
    return EmuResponse.of_json(200, shapes.project(found[0], req.query.get("$select")))


def _with_expand(body: dict[str, Any], req: EmuRequest) -> dict[str, Any]:
    if "OptionSet" in (req.query.get("$expand") or ""):
        body.setdefault("OptionSet", {"Options": []})
        return body
    body.pop("OptionSet", None)
    return body


def _matches_key(item: dict[str, Any], key: str) -> bool:
    if is_guid(key):
        return bool(item["MetadataId"] == key.lower())
    _, _, value = key.partition("=")
    return bool(item["LogicalName"] == parse_literal(value))


def _keys(
    emulator: EmulatorState, req: EmuRequest, entity: EntityDef, key: str | None
) -> EmuResponse:
    if req.method == "POST" and key is None:
        created = _create_key(emulator, entity, req.json())
        table = f"{req.api_root}/EntityDefinitions(LogicalName='{entity.logical_name}')"
        url = f"{table}/Keys({created.metadata_id})"
        return EmuResponse.empty(204, {"OData-EntityId": url})
    if req.method == "DELETE" and key is not None:
        for existing in list(entity.keys):
            if existing.metadata_id == key.lower():
                entity.keys.remove(existing)
                emulator.store.drop_key_index(entity, existing)
                emulator.persist_schema()
                return EmuResponse.empty(204)
        raise EmulatorRequestError(404, "0x80040217", f"Could not find key '{key}'.")
    emulator.activate_keys()
    items = [shapes.key_json(entity, k) for k in entity.keys]
    if key is not None:
        items = [i for i in items if _matches_key({**i, "LogicalName": i["LogicalName"]}, key)]
        if not items:
            raise EmulatorRequestError(404, "0x80040217", f"Could not find key '{key}'.")
        return EmuResponse.of_json(200, shapes.project(items[0], req.query.get("$select")))
    return _collection(req, "EntityDefinitions/Keys", items)


def _create_key(emulator: EmulatorState, entity: EntityDef, body: dict[str, Any]) -> KeyDef:
    schema_name = body.get("SchemaName")
    columns = body.get("KeyAttributes")
    if not isinstance(schema_name, str) or not isinstance(columns, list) or not columns:
        raise bad_request("SchemaName and KeyAttributes are required.", "0x80040203")
    if len(entity.keys) >= 10 or len(columns) > 16:
        raise bad_request("An entity can have at most 10 keys of at most 16 columns.", "0x80040203")
    for column in columns:
        attr = entity.attributes.get(str(column))
        if attr is None or attr.attribute_type not in shapes.KEY_TYPES:
            raise bad_request(f"'{column}' cannot be part of an alternate key.", "0x80040203")
    key = KeyDef(
        schema_name,
        [str(c) for c in columns],
        status="Pending",
        display_name=label_text(body.get("DisplayName")),
        active_after=time.monotonic() + emulator.key_delay,
    )
    entity.keys.append(key)
    emulator.keys_changed()
    emulator.persist_schema()
    emulator.activate_keys()
    return key


def _relationships(emulator: EmulatorState, req: EmuRequest, key: str | None) -> EmuResponse:
    schema = emulator.schema
    if req.method == "POST" and key is None:
        body = req.json()
        if "OneToMany" not in str(body.get("@odata.type", "")):
            raise EmulatorRequestError(
                501, "0x8006088b", "Only one-to-many relationships are supported by the emulator."
            )
        rel = new_relationship(emulator, body)
        url = f"{req.api_root}/RelationshipDefinitions({rel.metadata_id})"
        return EmuResponse.empty(204, {"OData-EntityId": url})
    rels = list(schema.relationships.values())
    if key is not None:
        found = [r for r in rels if r.metadata_id == key.lower()]
        if not found:
            raise EmulatorRequestError(404, "0x80040217", f"Could not find relationship '{key}'.")
        if req.method == "DELETE":
            schema.remove_relationship(found[0].schema_name)
            emulator.persist_schema()
            return EmuResponse.empty(204)
        return EmuResponse.of_json(
            200, shapes.project(shapes.relationship_json(found[0]), req.query.get("$select"))
        )
    return _collection(req, "RelationshipDefinitions", [shapes.relationship_json(r) for r in rels])


def _customer_relationships(emulator: EmulatorState, req: EmuRequest) -> EmuResponse:
    body = req.json()
    lookup = body.get("Lookup") or {}
    rels_in = body.get("OneToManyRelationships") or []
    if not lookup.get("SchemaName") or len(rels_in) != 2:
        raise bad_request("A Lookup and two OneToManyRelationships are required.", "0x80040203")
    ids = []
    attribute: AttributeDef | None = None
    for raw in rels_in:
        referenced = emulator.schema.entity(str(raw.get("ReferencedEntity")))
        payload = {**raw, "Lookup": lookup, "ReferencedAttribute": referenced.primary_id}
        payload.setdefault(
            "ReferencingEntityNavigationPropertyName",
            f"{lookup['SchemaName']}_{referenced.logical_name}",
        )
        rel: RelationshipDef = new_relationship(emulator, payload, customer=True)
        ids.append(rel.metadata_id)
        attribute = emulator.schema.entity(rel.referencing_entity).attributes[
            rel.referencing_attribute
        ]
    assert attribute is not None
    return EmuResponse.of_json(
        200,
        {
            "@odata.context": f"{req.api_root}/$metadata#Microsoft.Dynamics.CRM."
            "CreateCustomerRelationshipsResponse",
            "RelationshipIds": ids,
            "AttributeId": attribute.metadata_id,
        },
    )
