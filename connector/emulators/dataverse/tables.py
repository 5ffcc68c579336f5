"""Creating tables and relationships from metadata payloads, with Dataverse's derivations.

A table's LogicalName is its lowercased SchemaName, its EntitySetName the plural, its key
``<logicalname>id`` (``activityid`` for activity tables, which also inherit the
activitypointer columns, regarding lookups and ``<name>_activity_parties``). A one-to-many
relationship adds the lookup column to the referencing table; its single-valued navigation
property defaults to the lookup's SchemaName (case-sensitive), as in Dataverse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connector.emulators.dataverse import metadata_shapes as shapes
from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.metadata import (
    AttributeDef,
    EntityDef,
    RelationshipDef,
    label_text,
    pluralise,
)
from connector.emulators.dataverse.protocol import bad_request
from connector.emulators.dataverse.seed import new_table, wire

if TYPE_CHECKING:
    from connector.emulators.dataverse.state import EmulatorState

OWNERSHIP = {"UserOwned", "TeamOwned", "OrganizationOwned"}


def create_table(emulator: EmulatorState, body: dict[str, Any], solution: str | None) -> EntityDef:
    """``POST EntityDefinitions`` (or one entry of ``CreateEntities``)."""
    schema_name, attributes, primary, ownership = _validated(emulator, body)
    is_activity = bool(body.get("IsActivity"))
    logical = schema_name.lower()
    custom_count = sum(1 for e in emulator.schema.entities.values() if e.is_custom)
    entity = new_table(
        logical,
        pluralise(logical),
        primary.logical_name,
        is_activity=is_activity,
        ownership=ownership,
        has_activities=bool(body.get("HasActivities")),
        change_tracking=bool(body.get("ChangeTrackingEnabled")),
        otc=10000 + custom_count,
    )
    entity.schema_name = schema_name
    entity.is_custom = True
    entity.has_notes = bool(body.get("HasNotes"))
    entity.display_name = label_text(body.get("DisplayName")) or schema_name
    entity.display_collection_name = label_text(body.get("DisplayCollectionName"))
    entity.description = label_text(body.get("Description"))
    kept = ("IsAvailableOffline", "IsMailMergeEnabled", "ActivityTypeMask")
    entity.extra = {k: body[k] for k in kept if k in body}
    entity.extra["solution"] = solution
    for attr in attributes:
        entity.add(attr)
    with emulator.store.transaction():
        wire(emulator.schema, entity)
        emulator.persist_schema()
    emulator.table_created(entity)
    return entity


def _validated(
    emulator: EmulatorState, body: dict[str, Any]
) -> tuple[str, list[AttributeDef], AttributeDef, str]:
    """SchemaName, columns, primary name column and ownership of a valid table payload."""
    schema_name = body.get("SchemaName")
    if not isinstance(schema_name, str) or "_" not in schema_name:
        raise bad_request("SchemaName with a customization prefix is required.", "0x80040203")
    if schema_name.lower() in emulator.schema.entities:
        raise EmulatorRequestError(
            400, "0x80047013", f"An entity with the name {schema_name.lower()} already exists."
        )
    attributes = [shapes.attribute_from_payload(a) for a in body.get("Attributes") or []]
    primary = [a for a in attributes if a.is_primary_name]
    if len(primary) != 1 or primary[0].attribute_type != "String":
        raise bad_request(
            "Exactly one StringAttributeMetadata with IsPrimaryName true is required.", "0x80040203"
        )
    ownership = str(body.get("OwnershipType") or "UserOwned")
    if ownership not in OWNERSHIP:
        raise bad_request(f"OwnershipType '{ownership}' is not valid.", "0x80040203")
    if body.get("IsActivity"):
        _check_activity(body, primary[0], ownership)
        primary[0].logical_name = "subject"
    return schema_name, attributes, primary[0], ownership


def _check_activity(body: dict[str, Any], primary: AttributeDef, ownership: str) -> None:
    if primary.schema_name.lower() != "subject":
        raise bad_request("The primary attribute of an activity must be 'Subject'.", "0x80040203")
    if ownership not in ("UserOwned", "TeamOwned"):
        raise bad_request("An activity table must be UserOwned or TeamOwned.", "0x80040203")
    if body.get("HasActivities"):
        raise bad_request("An activity cannot have activities.", "0x80040203")


def new_relationship(
    emulator: EmulatorState, body: dict[str, Any], *, customer: bool = False
) -> RelationshipDef:
    """``POST RelationshipDefinitions`` for a OneToManyRelationshipMetadata with a Lookup."""
    schema = emulator.schema
    schema_name = body.get("SchemaName")
    lookup = body.get("Lookup") or {}
    lookup_schema = lookup.get("SchemaName")
    if not isinstance(schema_name, str) or not isinstance(lookup_schema, str):
        raise bad_request("SchemaName and Lookup.SchemaName are required.", "0x80040203")
    if schema_name in schema.relationships:
        raise bad_request(f"A relationship named {schema_name} already exists.", "0x80047013")
    referenced = schema.entity(str(body.get("ReferencedEntity")))
    referencing = schema.entity(str(body.get("ReferencingEntity")))
    attribute_name = body.get("ReferencedAttribute") or referenced.primary_id
    if attribute_name != referenced.primary_id:
        raise bad_request(
            f"ReferencedAttribute '{attribute_name}' is not the primary key of "
            f"'{referenced.logical_name}' ('{referenced.primary_id}').",
            "0x80040203",
        )
    logical = lookup_schema.lower()
    column = _lookup_column(referencing, lookup, customer=customer)
    column.targets.append(referenced.logical_name)
    rel = RelationshipDef(
        schema_name=schema_name,
        referenced_entity=referenced.logical_name,
        referenced_attribute=referenced.primary_id,
        referencing_entity=referencing.logical_name,
        referencing_attribute=logical,
        referencing_nav=str(body.get("ReferencingEntityNavigationPropertyName") or lookup_schema),
        referenced_nav=str(body.get("ReferencedEntityNavigationPropertyName") or schema_name),
        cascade=dict(body.get("CascadeConfiguration") or {}),
    )
    with emulator.store.transaction():
        schema.add_relationship(rel)
        emulator.persist_schema()
    return rel


def _lookup_column(
    referencing: EntityDef, lookup: dict[str, Any], *, customer: bool
) -> AttributeDef:
    """The lookup column a relationship adds (a customer lookup's second relationship reuses it)."""
    schema_name = str(lookup["SchemaName"])
    logical = schema_name.lower()
    column = referencing.attributes.get(logical)
    if column is None:
        return referencing.add(
            AttributeDef(
                logical,
                "Customer" if customer else "Lookup",
                schema_name=schema_name,
                display_name=label_text(lookup.get("DisplayName")),
            )
        )
    if not customer:
        raise bad_request(f"An attribute named {logical} already exists.", "0x80044363")
    return column
