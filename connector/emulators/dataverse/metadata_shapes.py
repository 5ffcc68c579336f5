"""Metadata payloads in and out: EntityMetadata, AttributeMetadata, keys and relationships.

Reads the ``POST EntityDefinitions`` / ``Attributes`` / ``Keys`` / ``RelationshipDefinitions``
bodies documented for the Web API (``@odata.type`` naming the kind, ``Label`` objects, the
``Complex*`` variants Microsoft's SDK sends to ``CreateEntities``) and renders definitions
back in the PascalCase shapes ``GET EntityDefinitions`` returns.
"""

from __future__ import annotations

import re
from typing import Any

from connector.emulators.dataverse.components import privileges
from connector.emulators.dataverse.metadata import (
    AttributeDef,
    EntityDef,
    KeyDef,
    RelationshipDef,
    label,
    label_text,
)
from connector.emulators.dataverse.protocol import bad_request

_TYPE = re.compile(r"Microsoft\.Dynamics\.CRM\.(?:Complex)?(\w+)AttributeMetadata$")
SUPPORTED = {
    "String",
    "Memo",
    "Integer",
    "BigInt",
    "Decimal",
    "Double",
    "Money",
    "DateTime",
    "Boolean",
    "Picklist",
    "MultiSelectPicklist",
    "File",
    "Image",
    "Uniqueidentifier",
}
TYPE_NAMES = {
    "String": "StringType",
    "Memo": "MemoType",
    "Integer": "IntegerType",
    "BigInt": "BigIntType",
    "Decimal": "DecimalType",
    "Double": "DoubleType",
    "Money": "MoneyType",
    "DateTime": "DateTimeType",
    "Boolean": "BooleanType",
    "Picklist": "PicklistType",
    "State": "StateType",
    "Status": "StatusType",
    "Lookup": "LookupType",
    "Customer": "CustomerType",
    "Owner": "OwnerType",
    "Uniqueidentifier": "UniqueidentifierType",
    "EntityName": "EntityNameType",
    "MultiSelectPicklist": "MultiSelectPicklistType",
}
KEY_TYPES = {
    "String",
    "Integer",
    "Decimal",
    "DateTime",
    "Lookup",
    "Picklist",
    "Customer",
    "Owner",
    "BigInt",
}


def attribute_from_payload(payload: dict[str, Any]) -> AttributeDef:
    """An attribute definition from an AttributeMetadata payload."""
    schema_name = payload.get("SchemaName")
    if not isinstance(schema_name, str) or not schema_name:
        raise bad_request("SchemaName is required for an attribute.", "0x80040203")
    match = _TYPE.search(str(payload.get("@odata.type", "")))
    kind = match.group(1) if match else str(payload.get("AttributeType") or "")
    if kind in ("Lookup", "ComplexLookup"):
        raise bad_request(
            "Lookup columns are created through RelationshipDefinitions.", "0x80040203"
        )
    if kind not in SUPPORTED:
        raise bad_request(
            f"Attribute type '{kind or payload.get('@odata.type')}' is not supported.", "0x80040203"
        )
    options: dict[int, str] = {}
    option_set = payload.get("OptionSet") or {}
    for option in option_set.get("Options") or []:
        options[int(option["Value"])] = label_text(option.get("Label"))
    if kind == "Boolean":
        options = {0: "No", 1: "Yes"}
    stored = {
        "MultiSelectPicklist": "String",
        "File": "Uniqueidentifier",
        "Image": "Uniqueidentifier",
    }.get(kind, kind)
    max_length = payload.get("MaxLength")
    if stored == "String" and max_length is None:
        max_length = 4000 if kind == "MultiSelectPicklist" else 100
    fmt = payload.get("FormatName")
    extra: dict[str, Any] = {"declared_type": kind}
    if kind == "Boolean" and isinstance(payload.get("DefaultValue"), bool):
        extra["default"] = payload["DefaultValue"]  # applied when a create leaves it out
    return AttributeDef(
        logical_name=schema_name.lower(),
        attribute_type=stored,
        schema_name=schema_name,
        max_length=max_length,
        options=options,
        display_name=label_text(payload.get("DisplayName")),
        is_primary_name=bool(payload.get("IsPrimaryName")),
        format_name=fmt.get("Value") if isinstance(fmt, dict) else None,
        extra=extra,
    )


def attribute_json(entity: EntityDef, attr: AttributeDef) -> dict[str, Any]:
    """An attribute as ``GET .../Attributes`` returns it."""
    kind = attr.extra.get("declared_type", attr.attribute_type)
    writable = attr.logical_name not in ("createdon", "modifiedon", "versionnumber")
    body: dict[str, Any] = {
        "@odata.type": f"#Microsoft.Dynamics.CRM.{kind}AttributeMetadata",
        "MetadataId": attr.metadata_id,
        "LogicalName": attr.logical_name,
        "SchemaName": attr.schema_name,
        "EntityLogicalName": entity.logical_name,
        "AttributeType": kind,
        "AttributeTypeName": {"Value": TYPE_NAMES.get(kind, f"{kind}Type")},
        "IsPrimaryId": attr.is_primary_id,
        "IsPrimaryName": attr.is_primary_name,
        "IsCustomAttribute": "_" in attr.logical_name and not attr.extra.get("standard"),
        "IsValidForCreate": attr.extra.get("valid_for_create", writable),
        "IsValidForUpdate": attr.extra.get("valid_for_update", writable),
        "IsValidForRead": attr.extra.get("valid_for_read", True),
        "DisplayName": label(attr.display_name or attr.logical_name),
        "RequiredLevel": {"Value": attr.extra.get("required_level", "None"), "CanBeChanged": True},
    }
    if attr.max_length is not None:
        body["MaxLength"] = attr.max_length
    if attr.format_name:
        body["FormatName"] = {"Value": attr.format_name}
    if attr.is_lookup:
        body["Targets"] = list(attr.targets)
    if "default" in attr.extra:
        body["DefaultValue"] = attr.extra["default"]
    if attr.options:
        body["OptionSet"] = {
            "IsGlobal": False,
            "OptionSetType": kind if kind in ("State", "Status", "Boolean") else "Picklist",
            "Options": [{"Value": v, "Label": label(t)} for v, t in attr.options.items()],
        }
    return body


def key_json(entity: EntityDef, key: KeyDef) -> dict[str, Any]:
    """An EntityKeyMetadata."""
    return {
        "MetadataId": key.metadata_id,
        "SchemaName": key.schema_name,
        "LogicalName": key.logical_name,
        "EntityLogicalName": entity.logical_name,
        "KeyAttributes": list(key.key_attributes),
        "EntityKeyIndexStatus": key.status,
        "DisplayName": label(key.display_name or key.schema_name),
    }


def entity_json(entity: EntityDef) -> dict[str, Any]:
    """An EntityMetadata (without Attributes/Keys unless expanded)."""
    return {
        "@odata.type": "#Microsoft.Dynamics.CRM.EntityMetadata",
        "MetadataId": entity.metadata_id,
        "LogicalName": entity.logical_name,
        "SchemaName": entity.schema_name,
        "EntitySetName": entity.entity_set,
        "LogicalCollectionName": entity.entity_set,
        "PrimaryIdAttribute": entity.primary_id,
        "PrimaryNameAttribute": entity.primary_name or None,
        "ObjectTypeCode": entity.object_type_code,
        "IsActivity": entity.is_activity,
        "IsCustomEntity": entity.is_custom,
        "IsPrivate": False,
        "IsIntersect": entity.logical_name == "teammembership",
        "OwnershipType": entity.ownership,
        "HasActivities": entity.has_activities,
        "HasNotes": entity.has_notes,
        "ChangeTrackingEnabled": entity.change_tracking,
        "IsOptimisticConcurrencyEnabled": True,
        "IsAvailableOffline": bool(entity.extra.get("IsAvailableOffline", True)),
        "IsMailMergeEnabled": bool(entity.extra.get("IsMailMergeEnabled", False)),
        "ActivityTypeMask": entity.extra.get("ActivityTypeMask"),
        "DisplayName": label(entity.display_name or entity.logical_name),
        "DisplayCollectionName": label(entity.display_collection_name or entity.entity_set),
        "Description": label(entity.description),
        "Privileges": privileges(entity),
    }


def relationship_json(rel: RelationshipDef) -> dict[str, Any]:
    """A OneToManyRelationshipMetadata."""
    return {
        "@odata.type": "#Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "MetadataId": rel.metadata_id,
        "SchemaName": rel.schema_name,
        "RelationshipType": "OneToManyRelationship",
        "ReferencedEntity": rel.referenced_entity,
        "ReferencedAttribute": rel.referenced_attribute,
        "ReferencingEntity": rel.referencing_entity,
        "ReferencingAttribute": rel.referencing_attribute,
        "ReferencingEntityNavigationPropertyName": rel.referencing_nav,
        "ReferencedEntityNavigationPropertyName": rel.referenced_nav,
        "IsCustomRelationship": "_" in rel.referencing_attribute,
        "CascadeConfiguration": rel.cascade or {"Delete": "RemoveLink", "Assign": "NoCascade"},
    }


def project(body: dict[str, Any], select: str | None) -> dict[str, Any]:
    """Apply a metadata ``$select`` (MetadataId and annotations always kept)."""
    if not select:
        return body
    wanted = {name.strip() for name in select.split(",")} | {
        "MetadataId",
        "Keys",
        "Attributes",
        "OptionSet",
    }
    return {k: v for k, v in body.items() if k in wanted or k.startswith("@")}
