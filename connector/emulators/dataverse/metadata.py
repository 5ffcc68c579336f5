"""Table, column, relationship and key definitions the emulator serves and stores.

These are the emulator's model of Dataverse metadata: enough to derive storage columns,
navigation-property names (``parentcustomerid_account``, ``regardingobjectid_contact_task``)
and the ``EntityDefinitions`` / ``RelationshipDefinitions`` / ``Keys`` JSON shapes. They are
plain dataclasses kept as JSON in the emulator's SQLite file so custom tables survive a
restart.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

STRING_TYPES = frozenset({"String", "Memo", "EntityName"})
LOOKUP_TYPES = frozenset({"Lookup", "Customer", "Owner"})
INTEGER_TYPES = frozenset({"Integer", "BigInt", "Picklist", "State", "Status"})
DECIMAL_TYPES = frozenset({"Decimal", "Double", "Money"})


def new_id() -> str:
    """A fresh lowercase GUID string that sorts after those minted before it (the UUID
    version 7 layout: the time in ms, then random bits).

    SQL Server gives rows sequential GUIDs so that its indexes grow at their end; with random
    ones, each new record of the emulator's wrote a random page of every index over its id
    (its own primary key, the activity pointer's, the activity parties' ``activityid``): a
    fifth to a quarter of what the emulator wrote under the inbound benchmark (114-123 KB a
    message before, 88-92 KB after)."""
    millis = time.time_ns() // 1_000_000
    value = (millis & (1 << 48) - 1) << 80 | 0x7 << 76 | secrets.randbits(76)
    value = value & ~(0x3 << 62) | 0x2 << 62  # the RFC 4122 variant
    return str(uuid.UUID(int=value))


def label(text: str, code: int = 1033) -> dict[str, Any]:
    """A ``Microsoft.Dynamics.CRM.Label`` with one localized label."""
    localized = {
        "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel",
        "Label": text,
        "LanguageCode": code,
    }
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.Label",
        "LocalizedLabels": [localized],
        "UserLocalizedLabel": localized,
    }


def label_text(value: Any) -> str:
    """The first localized label's text of a Label payload ('' when absent)."""
    if isinstance(value, dict):
        labels = value.get("LocalizedLabels") or []
        if labels and isinstance(labels[0], dict):
            return str(labels[0].get("Label", ""))
    return ""


@dataclass
class AttributeDef:
    """One column: its type decides storage, validation and JSON shape."""

    logical_name: str
    attribute_type: str
    schema_name: str = ""
    max_length: int | None = None
    targets: list[str] = field(default_factory=list)
    options: dict[int, str] = field(default_factory=dict)
    display_name: str = ""
    is_primary_id: bool = False
    is_primary_name: bool = False
    format_name: str | None = None
    metadata_id: str = field(default_factory=new_id)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.schema_name:
            self.schema_name = self.logical_name

    @property
    def is_lookup(self) -> bool:
        """Lookup, Customer and Owner columns are read as ``_x_value``."""
        return self.attribute_type in LOOKUP_TYPES


@dataclass
class KeyDef:
    """An alternate key; usable for addressing only once ``status`` is Active."""

    schema_name: str
    key_attributes: list[str]
    status: str = "Active"
    display_name: str = ""
    metadata_id: str = field(default_factory=new_id)
    active_after: float = 0.0

    @property
    def logical_name(self) -> str:
        """Keys' logical names are their lowercased schema names."""
        return self.schema_name.lower()


@dataclass
class RelationshipDef:
    """A one-to-many relationship: the referencing table's lookup points at the referenced."""

    schema_name: str
    referenced_entity: str
    referenced_attribute: str
    referencing_entity: str
    referencing_attribute: str
    referencing_nav: str
    referenced_nav: str
    metadata_id: str = field(default_factory=new_id)
    cascade: dict[str, Any] = field(default_factory=dict)


@dataclass
class EntityDef:
    """One table."""

    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str
    schema_name: str = ""
    is_activity: bool = False
    ownership: str = "UserOwned"
    has_activities: bool = False
    has_notes: bool = False
    change_tracking: bool = False
    is_custom: bool = False
    object_type_code: int = 0
    display_name: str = ""
    display_collection_name: str = ""
    description: str = ""
    attributes: dict[str, AttributeDef] = field(default_factory=dict)
    keys: list[KeyDef] = field(default_factory=list)
    metadata_id: str = field(default_factory=new_id)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.schema_name:
            self.schema_name = self.logical_name

    def add(self, attribute: AttributeDef) -> AttributeDef:
        """Add (or replace) a column definition."""
        self.attributes[attribute.logical_name] = attribute
        return attribute

    def active_keys(self) -> list[KeyDef]:
        """Alternate keys whose index is built."""
        return [key for key in self.keys if key.status == "Active"]


def to_json(entity: EntityDef) -> dict[str, Any]:
    """Serialise a definition for the emulator's own storage (what ``dataclasses.asdict``
    gives, built shallowly: the standard tables have hundreds of columns, and the whole schema
    is saved after every metadata change)."""
    data = {f.name: getattr(entity, f.name) for f in dataclasses.fields(entity)}
    data["attributes"] = {name: dict(vars(a)) for name, a in entity.attributes.items()}
    data["keys"] = [dict(vars(k)) for k in entity.keys]
    return data


def from_json(data: dict[str, Any]) -> EntityDef:
    """Rebuild a definition stored by :func:`to_json`."""
    attributes = {}
    for name, raw in data.pop("attributes").items():
        raw["options"] = {int(k): v for k, v in raw.get("options", {}).items()}
        attributes[name] = AttributeDef(**raw)
    keys = [KeyDef(**raw) for raw in data.pop("keys")]
    return EntityDef(**data, attributes=attributes, keys=keys)


def relationship_from_json(data: dict[str, Any]) -> RelationshipDef:
    """Rebuild a relationship stored with ``dataclasses.asdict``."""
    return RelationshipDef(**data)


def pluralise(logical_name: str) -> str:
    """Dataverse's EntitySetName rule for new tables (English plural of the logical name)."""
    if logical_name.endswith(("s", "x", "z", "ch", "sh")):
        return logical_name + "es"
    if logical_name.endswith("y") and logical_name[-2:-1] not in ("a", "e", "i", "o", "u"):
        return logical_name[:-1] + "ies"
    return logical_name + "s"
