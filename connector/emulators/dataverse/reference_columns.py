"""The standard tables' real columns, from the data file generated off Microsoft's reference.

``standard_columns.json`` (written by ``scripts/generate_standard_columns.py`` from the
Dataverse table reference pages) lists, for contact, account, lead, opportunity, systemuser,
team, businessunit and activitypointer, every column with its type, max length, choice
values, lookup targets, required level and whether it is valid for create, update and read.
:func:`add_reference_columns` gives a seeded table those columns, so a payload that works
against Dataverse (``description``, ``donotphone``, ``address1_city``,
``preferredcontactmethodcode``...) works here, and a name that is not a column stays a 400.

A column the emulator already defines keeps what the emulator relies on (its kind when it
is a key or lookup, its lookup targets, which the relationships wire); its length, choices,
schema name and flags come from the reference. Image and party-list columns are not stored
by the emulator and are left out; lookup targets name only tables the emulator has, and the
lookups added here get no index (the emulator indexes the lookups it wires and queries).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from connector.emulators.dataverse.metadata import LOOKUP_TYPES, AttributeDef, EntityDef

DATA_FILE = "standard_columns.json"
_NOT_STORED = frozenset({"Image", "PartyList", "ManagedProperty", "Virtual", "File"})


@cache
def reference_tables() -> dict[str, dict[str, Any]]:
    """The data file's tables (logical name to facts and columns), read once."""
    text = resources.files(__package__).joinpath(DATA_FILE).read_text(encoding="utf-8")
    tables: dict[str, dict[str, Any]] = json.loads(text)["tables"]
    return tables


def _flags(fact: dict[str, Any]) -> dict[str, Any]:
    return {
        "valid_for_create": bool(fact["create"]),
        "valid_for_update": bool(fact["update"]),
        "valid_for_read": bool(fact["read"]),
        "required_level": str(fact["required"]),
        "standard": True,
    }


def add_reference_columns(entity: EntityDef, tables: set[str]) -> None:
    """Give a standard table its reference columns; ``tables`` are the emulator's tables."""
    reference = reference_tables().get(entity.logical_name)
    if reference is None:
        return
    for fact in reference["columns"]:
        kind = str(fact["type"])
        if kind in _NOT_STORED:
            continue
        options = {int(value): str(text) for value, text in fact.get("options", [])}
        existing = entity.attributes.get(fact["name"])
        if existing is not None:
            _merge(existing, fact, options)
            continue
        entity.add(
            AttributeDef(
                logical_name=fact["name"],
                attribute_type=kind,
                schema_name=fact["schema"],
                max_length=fact.get("max_length"),
                targets=[t for t in fact.get("targets", []) if t in tables],
                options=options,
                extra={**_flags(fact), "unindexed": kind in LOOKUP_TYPES},
            )
        )


def _merge(existing: AttributeDef, fact: dict[str, Any], options: dict[int, str]) -> None:
    kind = str(fact["type"])
    keeps_kind = existing.is_primary_id or existing.is_lookup or kind in LOOKUP_TYPES
    if not keeps_kind:
        existing.attribute_type = kind
    existing.schema_name = fact["schema"]
    if "max_length" in fact:
        existing.max_length = int(fact["max_length"])
    if options:
        existing.options = options
    existing.extra.update(_flags(fact))
