"""Pure builders of the metadata Web API bodies for the declared schema.

One function per component: publisher, solution, table (``EntityMetadata`` with its primary
name column; activity tables with the properties Dataverse requires of them), column
(``*AttributeMetadata``), lookup (``OneToManyRelationshipMetadata`` with explicit navigation
property names, so ``@odata.bind`` names are known in advance), alternate key
(``EntityKeyMetadata``) and the ``PublishXml`` parameter. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from connector.schema.spec import (
    ColumnSpec,
    KeySpec,
    PublisherSpec,
    Schema,
    SolutionInfo,
    TableSpec,
    relationship_name,
)

CRM = "Microsoft.Dynamics.CRM."
_ATTRIBUTE_TYPES = {
    "string": "StringAttributeMetadata",
    "memo": "MemoAttributeMetadata",
    "integer": "IntegerAttributeMetadata",
    "decimal": "DecimalAttributeMetadata",
    "boolean": "BooleanAttributeMetadata",
    "datetime": "DateTimeAttributeMetadata",
    "choice": "PicklistAttributeMetadata",
}
_FORMATS = {"text": "Text", "phone": "Phone", "url": "Url", "email": "Email"}


def label(text: str, language: int) -> dict[str, Any]:
    """A ``Label`` with one localized label."""
    localized = {"@odata.type": CRM + "LocalizedLabel", "Label": text, "LanguageCode": language}
    return {"@odata.type": CRM + "Label", "LocalizedLabels": [localized]}


def _required(required: bool) -> dict[str, Any]:
    return {
        "Value": "ApplicationRequired" if required else "None",
        "CanBeChanged": True,
        "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
    }


def publisher_payload(publisher: PublisherSpec) -> dict[str, Any]:
    """The body of ``POST publishers``."""
    return {
        "uniquename": publisher.unique_name,
        "friendlyname": publisher.friendly_name,
        "customizationprefix": publisher.prefix,
        "customizationoptionvalueprefix": publisher.option_value_prefix,
        "description": publisher.description,
    }


def solution_payload(solution: SolutionInfo, publisher_id: str) -> dict[str, Any]:
    """The body of ``POST solutions`` bound to the publisher ``publisher_id``."""
    return {
        "uniquename": solution.unique_name,
        "friendlyname": solution.friendly_name,
        "version": solution.version,
        "description": solution.description,
        "publisherid@odata.bind": f"/publishers({publisher_id})",
    }


def table_payload(table: TableSpec, language: int) -> dict[str, Any]:
    """The body of ``POST EntityDefinitions``: the table and its primary name column."""
    primary = {
        "@odata.type": CRM + "StringAttributeMetadata",
        "AttributeType": "String",
        "AttributeTypeName": {"Value": "StringType"},
        "SchemaName": table.primary.schema_name,
        "IsPrimaryName": True,
        "RequiredLevel": _required(not table.activity),
        "MaxLength": table.primary.max_length,
        "FormatName": {"Value": "Text"},
        "DisplayName": label(table.primary.display_name, language),
    }
    body: dict[str, Any] = {
        "@odata.type": CRM + "EntityMetadata",
        "SchemaName": table.schema_name,
        "DisplayName": label(table.display_name, language),
        "DisplayCollectionName": label(table.plural_name, language),
        "Description": label(table.description, language),
        "OwnershipType": table.ownership,
        "IsActivity": table.activity,
        "HasActivities": False,
        "HasNotes": table.activity,
        "Attributes": [primary],
    }
    if table.activity:
        body |= {"IsAvailableOffline": True, "IsMailMergeEnabled": False, "ActivityTypeMask": 1}
    return body


def _string(column: ColumnSpec, _language: int) -> dict[str, Any]:
    return {
        "MaxLength": column.max_length,
        "FormatName": {"Value": _FORMATS[column.format or "text"]},
    }


def _memo(column: ColumnSpec, _language: int) -> dict[str, Any]:
    return {"MaxLength": column.max_length, "Format": "TextArea"}


def _integer(column: ColumnSpec, _language: int) -> dict[str, Any]:
    low = -2147483648 if column.min_value is None else int(column.min_value)
    high = 2147483647 if column.max_value is None else int(column.max_value)
    return {"Format": "None", "MinValue": low, "MaxValue": high}


def _decimal(column: ColumnSpec, _language: int) -> dict[str, Any]:
    return {
        "MinValue": column.min_value,
        "MaxValue": column.max_value,
        "Precision": column.precision or 2,
    }


def _datetime(_column: ColumnSpec, _language: int) -> dict[str, Any]:
    return {"Format": "DateAndTime", "DateTimeBehavior": {"Value": "UserLocal"}}


def _boolean(column: ColumnSpec, language: int) -> dict[str, Any]:
    return {
        "DefaultValue": bool(column.default),
        "OptionSet": {
            "@odata.type": CRM + "BooleanOptionSetMetadata",
            "IsGlobal": False,
            "OptionSetType": "Boolean",
            "TrueOption": {"Value": 1, "Label": label("Yes", language)},
            "FalseOption": {"Value": 0, "Label": label("No", language)},
        },
    }


def _choice(column: ColumnSpec, language: int) -> dict[str, Any]:
    options = [{"Value": o.value, "Label": label(o.label, language)} for o in column.options]
    return {
        "DefaultFormValue": column.default if isinstance(column.default, int) else -1,
        "OptionSet": {
            "@odata.type": CRM + "OptionSetMetadata",
            "IsGlobal": False,
            "OptionSetType": "Picklist",
            "Options": options,
        },
    }


_TYPED: dict[str, Callable[[ColumnSpec, int], dict[str, Any]]] = {
    "string": _string,
    "memo": _memo,
    "integer": _integer,
    "decimal": _decimal,
    "datetime": _datetime,
    "boolean": _boolean,
    "choice": _choice,
}


def column_payload(column: ColumnSpec, language: int) -> dict[str, Any]:
    """The body of ``POST EntityDefinitions(LogicalName='t')/Attributes`` (not for lookups)."""
    if column.type == "lookup":
        raise ValueError(f"{column.schema_name} is a lookup: build a relationship")
    return {
        "@odata.type": CRM + _ATTRIBUTE_TYPES[column.type],
        "SchemaName": column.schema_name,
        "DisplayName": label(column.display_name, language),
        "Description": label(column.description, language),
        "RequiredLevel": _required(column.required),
        **_TYPED[column.type](column, language),
    }


def primary_key(schema: Schema, logical_name: str) -> str:
    """The primary key column of a table: ``activityid`` for activities, else ``<name>id``."""
    try:
        return "activityid" if schema.table(logical_name).activity else f"{logical_name}id"
    except KeyError:
        return f"{logical_name}id"


def relationship_payload(schema: Schema, table: TableSpec, column: ColumnSpec) -> dict[str, Any]:
    """The body of ``POST RelationshipDefinitions`` creating lookup ``column`` on ``table``."""
    name = relationship_name(table, column)
    target = str(column.target)
    language = schema.language_code
    return {
        "@odata.type": CRM + "OneToManyRelationshipMetadata",
        "SchemaName": name,
        "ReferencedEntity": target,
        "ReferencedAttribute": primary_key(schema, target),
        "ReferencingEntity": table.logical_name,
        "ReferencedEntityNavigationPropertyName": name,
        "ReferencingEntityNavigationPropertyName": column.schema_name,
        "CascadeConfiguration": {
            "Assign": "NoCascade",
            "Delete": column.on_delete,
            "Merge": "NoCascade",
            "Reparent": "NoCascade",
            "Share": "NoCascade",
            "Unshare": "NoCascade",
        },
        "AssociatedMenuConfiguration": {
            "Behavior": "UseCollectionName",
            "Group": "Details",
            "Label": label(table.plural_name, language),
            "Order": 10000,
        },
        "Lookup": {
            "@odata.type": CRM + "LookupAttributeMetadata",
            "AttributeType": "Lookup",
            "AttributeTypeName": {"Value": "LookupType"},
            "SchemaName": column.schema_name,
            "DisplayName": label(column.display_name, language),
            "Description": label(column.description, language),
            "RequiredLevel": _required(column.required),
        },
    }


def key_payload(key: KeySpec, language: int) -> dict[str, Any]:
    """The body of ``POST EntityDefinitions(LogicalName='t')/Keys``."""
    return {
        "SchemaName": key.schema_name,
        "DisplayName": label(key.display_name, language),
        "KeyAttributes": list(key.columns),
    }


def publish_xml(tables: list[str]) -> dict[str, Any]:
    """The body of ``POST PublishXml`` publishing ``tables``."""
    entities = "".join(f"<entity>{escape(name)}</entity>" for name in tables)
    return {"ParameterXml": f"<importexportxml><entities>{entities}</entities></importexportxml>"}
