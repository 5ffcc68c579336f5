"""Column values between JSON payloads and storage, with Dataverse's validation messages.

Incoming values are type-checked per attribute type (strings against ``MaxLength`` with the
``0x80044331`` validation error, numbers, booleans, ISO dates); stored rows become the Web API
JSON shape (``@odata.etag`` first, lookups as ``_x_value``, booleans as JSON booleans) with
the lookup and formatted-value annotations when the caller asks for them. A choice value
outside the column's options is Dataverse's ``0x8004431a`` validation error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.metadata import (
    DECIMAL_TYPES,
    INTEGER_TYPES,
    STRING_TYPES,
    AttributeDef,
    EntityDef,
)
from connector.emulators.dataverse.protocol import bad_request
from connector.emulators.dataverse.query import normalise_datetime
from connector.emulators.dataverse.schema import Schema

LOOKUP_NAME = "@Microsoft.Dynamics.CRM.lookuplogicalname"
NAV_NAME = "@Microsoft.Dynamics.CRM.associatednavigationproperty"
FORMATTED = "@OData.Community.Display.V1.FormattedValue"


_NOW: list[tuple[int, str]] = [(-1, "")]  # the last second formatted, and its text


def now_text() -> str:
    """The current UTC time in the Web API's format (whole seconds: formatted once a second,
    it is asked for several times per row written)."""
    second = int(time.time())
    last, text = _NOW[0]
    if second != last:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _NOW[0] = (second, text)
    return text


def _type_error(
    entity: EntityDef, attr: AttributeDef, value: Any, edm: str
) -> EmulatorRequestError:
    return bad_request(
        f"Error identified in Payload provided by the user for Entity :'{entity.logical_name}', "
        f"Cannot convert the literal '{value}' to the expected type '{edm}' for "
        f"'{attr.logical_name}'.",
        "0x80048d19",
    )


def _string(entity: EntityDef, attr: AttributeDef, value: Any) -> Any:
    if not isinstance(value, str):
        raise _type_error(entity, attr, value, "Edm.String")
    if attr.max_length is not None and len(value) > attr.max_length:
        raise bad_request(
            f"A validation error occurred.  The length of the '{attr.logical_name}' "
            f"attribute of the '{entity.logical_name}' entity exceeded the maximum allowed "
            f"length of '{attr.max_length}'.",
            "0x80044331",
        )
    return value


def _checked(edm: str, accepts: Any, convert: Any) -> Any:
    def check(entity: EntityDef, attr: AttributeDef, value: Any) -> Any:
        if not accepts(value):
            raise _type_error(entity, attr, value, edm)
        return convert(value)

    return check


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _picklist(entity: EntityDef, attr: AttributeDef, value: Any) -> Any:
    """A choice value must be one of the column's options (when it declares any)."""
    if not _is_int(value):
        raise _type_error(entity, attr, value, "Edm.Int32")
    if attr.options and value not in attr.options:
        accepted = ",".join(str(option) for option in attr.options)
        raise bad_request(
            f"A validation error occurred. The value {value} of '{attr.logical_name}' on "
            f"record of type '{entity.logical_name}' is outside the valid range. "
            f"Accepted Values: {accepted}",
            "0x8004431a",
        )
    return int(value)


_CONVERTERS: dict[str, Any] = {
    **{kind: _string for kind in STRING_TYPES},
    **{kind: _checked("Edm.Int32", _is_int, int) for kind in INTEGER_TYPES},
    "Picklist": _picklist,
    **{kind: _checked("Edm.Decimal", _is_number, float) for kind in DECIMAL_TYPES},
    "Boolean": _checked("Edm.Boolean", lambda v: isinstance(v, bool), int),
    "DateTime": _checked("Edm.DateTimeOffset", lambda v: isinstance(v, str), normalise_datetime),
    "Uniqueidentifier": _checked("Edm.Guid", lambda v: isinstance(v, str), str.lower),
}


def to_storage(entity: EntityDef, attr: AttributeDef, value: Any) -> Any:
    """Validate one payload value and convert it for storage."""
    if value is None:
        return None
    converter = _CONVERTERS.get(attr.attribute_type)
    if converter is None:
        raise _type_error(entity, attr, value, "Edm.Guid")
    return converter(entity, attr, value)


def select_names(schema: Schema, entity: EntityDef, select: str | None) -> list[str] | None:
    """Validated attribute names of a ``$select`` (None means every column)."""
    if not select:
        return None
    names = []
    for raw in select.split(","):
        attr = schema.attribute(entity, raw.strip())
        names.append(attr.logical_name)
    if entity.primary_id not in names:
        names.append(entity.primary_id)
    return names


def row_to_json(
    schema: Schema,
    entity: EntityDef,
    row: dict[str, Any],
    names: list[str] | None,
    annotations: bool = False,
    *,
    display: Callable[[str, str], str | None] | None = None,
) -> dict[str, Any]:
    """A stored row in the Web API's JSON shape; ``display`` names lookup targets."""
    result: dict[str, Any] = {"@odata.etag": f'W/"{row.get("versionnumber")}"'}
    for name in names or list(entity.attributes):
        attr = entity.attributes[name]
        if attr.extra.get("write_only"):  # serviceendpoint.authvalue: never read back
            continue
        value = row.get(name)
        if attr.is_lookup:
            key = f"_{name}_value"
            result[key] = value
            if annotations and value is not None:
                target = row.get(f"{name}__type")
                result[key + LOOKUP_NAME] = target
                result[key + NAV_NAME] = _nav_name(schema, entity, name, str(target))
                shown = display(str(target), str(value)) if display else None
                if shown is not None:
                    result[key + FORMATTED] = shown
            continue
        if attr.attribute_type == "Boolean" and value is not None:
            value = bool(value)
        result[name] = value
        if annotations and value is not None and attr.options:
            label = attr.options.get(int(value))
            if label is not None:
                result[name + FORMATTED] = label
    return result


def _nav_name(schema: Schema, entity: EntityDef, attribute: str, target: str) -> str | None:
    for nav in schema.single_navs(entity.logical_name).values():
        if nav.attribute == attribute and target in nav.targets:
            return nav.name
    return None


def etag_matches(header: str, version: Any) -> bool:
    """Whether an If-Match / If-None-Match value names this row version (or is ``*``)."""
    for raw in header.split(","):
        tag = raw.strip()
        if tag == "*" or tag.removeprefix("W/").strip('"') == str(version):
            return True
    return False
