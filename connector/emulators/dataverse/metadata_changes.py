"""Changing existing columns in the emulator: ``PUT .../Attributes(...)`` and ``InsertOptionValue``.

What a schema upgrade sends: a column definition replaced with PUT (the emulator keeps the
column's name and type, as Dataverse refuses to change them, and takes the new length and
display name) and a new choice option added with the ``InsertOptionValue`` action (a value
that exists already is refused). Options are never removed here: Dataverse's PUT does not
touch the option set either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector.emulators.dataverse import metadata_shapes as shapes
from connector.emulators.dataverse.addressing import is_guid, parse_literal
from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.metadata import AttributeDef, EntityDef, label_text
from connector.emulators.dataverse.protocol import EmuRequest, EmuResponse, bad_request

if TYPE_CHECKING:
    from connector.emulators.dataverse.state import EmulatorState


def _find(entity: EntityDef, key: str) -> AttributeDef:
    for attr in entity.attributes.values():
        if is_guid(key) and attr.metadata_id == key.lower():
            return attr
        name, _, value = key.partition("=")
        if name.strip() == "LogicalName" and attr.logical_name == parse_literal(value):
            return attr
    raise EmulatorRequestError(404, "0x80040217", f"Could not find attribute '{key}'.")


def replace_attribute(
    emulator: EmulatorState, req: EmuRequest, entity: EntityDef, key: str
) -> EmuResponse:
    """``PUT EntityDefinitions(...)/Attributes(...)``: new length and label, same name/type."""
    current = _find(entity, key)
    new = shapes.attribute_from_payload(req.json())
    if new.logical_name != current.logical_name or new.attribute_type != current.attribute_type:
        raise bad_request(
            f"The name or type of attribute {current.logical_name} cannot be changed.",
            "0x80044363",
        )
    current.max_length = new.max_length
    current.display_name = new.display_name or current.display_name
    emulator.persist_schema()
    return EmuResponse.empty(204)


def insert_option_value(emulator: EmulatorState, req: EmuRequest) -> EmuResponse:
    """``POST InsertOptionValue``: one new option on a local choice column."""
    body = req.json()
    entity = emulator.schema.entity(str(body.get("EntityLogicalName")))
    attr = entity.attributes.get(str(body.get("AttributeLogicalName")))
    if attr is None or attr.attribute_type != "Picklist":
        raise bad_request("AttributeLogicalName must name a choice column.", "0x80040203")
    value = body.get("Value")
    if not isinstance(value, int):
        raise bad_request("Value must be an integer.", "0x80040203")
    if value in attr.options:
        raise bad_request(f"An option with the value {value} already exists.", "0x8004431a")
    attr.options[value] = label_text(body.get("Label"))
    emulator.persist_schema()
    context = f"{req.api_root}/$metadata#Microsoft.Dynamics.CRM.InsertOptionValueResponse"
    return EmuResponse.of_json(200, {"@odata.context": context, "NewOptionValue": value})
