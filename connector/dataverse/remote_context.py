"""The body of a Dataverse service-endpoint webhook: a ``RemoteExecutionContext`` as JSON.

Dataverse serialises the context with .NET's ``DataContractJsonSerializer`` (see section 11.7
of the Web API notes): PascalCase top-level fields, ``{"key", "value"}`` lists for
parameters, images and attributes, ``__type``-tagged values (``EntityReference``,
``OptionSetValue``, ``Money``, ``Entity``, ``EntityCollection``) and dates as
``/Date(<ms since 1970>[+hhmm])/`` (the suffix does not shift the instant).
:func:`parse_remote_context` turns such a body into a :class:`RemoteContext` of plain Python
values, and refuses (:class:`~connector.errors.InvalidInputError`) a body that is not one.
``InputParameters`` may be missing: past 256 KB Dataverse trims it (and the images) and keeps
``PrimaryEntityName`` / ``PrimaryEntityId``, so ``target`` is then None and the row must be
read back. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.dataverse.odata import is_guid
from connector.errors import InvalidInputError

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


@dataclass(frozen=True, slots=True)
class EntityReference:
    """A lookup value: the table and the row id (and its name when Dataverse sent one)."""

    logical_name: str
    id: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteContext:
    """What the connector uses of a ``RemoteExecutionContext``.

    ``target`` is the ``Target`` entity's attributes as plain values (None when trimmed);
    ``owning_extension_id`` is the step that posted it.
    """

    message_name: str
    primary_entity_name: str
    primary_entity_id: str
    target: Mapping[str, Any] | None = None
    correlation_id: str | None = None
    owning_extension_id: str | None = None
    user_id: str | None = None
    depth: int = 1


def dc_value(value: Any) -> Any:
    """One DataContract JSON value as plain Python (dates become aware datetimes)."""
    if isinstance(value, str):
        match = _MS_DATE.match(value)
        if match:
            return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)
        return value
    if isinstance(value, list):
        return [dc_value(item) for item in value]
    if isinstance(value, dict):
        return _dc_object(value)
    return value


def _dc_object(value: dict[str, Any]) -> Any:
    """A ``__type``-tagged object (or an untagged image entity / reference)."""
    kind = str(value.get("__type", "")).split(":", 1)[0]
    untagged_reference = not kind and {"LogicalName", "Id"} <= value.keys()
    if kind == "EntityReference" or (untagged_reference and "Attributes" not in value):
        name = value.get("Name")
        return EntityReference(
            str(value.get("LogicalName") or ""),
            str(value.get("Id") or "").lower(),
            name if isinstance(name, str) else None,
        )
    if kind in ("OptionSetValue", "Money"):
        return value.get("Value")
    if kind == "EntityCollection":
        entities = value.get("Entities", [])
        return [dc_attributes(e.get("Attributes")) for e in entities if isinstance(e, dict)]
    if kind == "Entity" or "Attributes" in value:
        return dc_attributes(value.get("Attributes"))
    return value


def dc_attributes(pairs: Any) -> dict[str, Any]:
    """A ``[{"key", "value"}...]`` list as a dict of plain values (malformed pairs: 400)."""
    if pairs is None:
        return {}
    if not isinstance(pairs, list):
        raise _bad("a key/value list is not a list")
    found: dict[str, Any] = {}
    for pair in pairs:
        if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
            raise _bad("a key/value pair has no string key")
        found[pair["key"]] = dc_value(pair.get("value"))
    return found


def _raw_pairs(pairs: Any) -> dict[str, Any]:
    if not isinstance(pairs, list):
        return {}
    return {p["key"]: p.get("value") for p in pairs if isinstance(p, dict) and "key" in p}


def parse_remote_context(body: bytes | str) -> RemoteContext:
    """The context in a webhook body; :class:`InvalidInputError` when it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _bad("the body is not JSON") from None
    if not isinstance(data, dict):
        raise _bad("the body is not a JSON object")
    message = data.get("MessageName")
    table = data.get("PrimaryEntityName")
    row_id = data.get("PrimaryEntityId")
    if not (isinstance(message, str) and message and isinstance(table, str) and table):
        raise _bad("MessageName and PrimaryEntityName are required")
    if not is_guid(row_id):
        raise _bad("PrimaryEntityId is not a GUID")
    target = _target(data)
    extension = data.get("OwningExtension")
    depth = data.get("Depth")
    return RemoteContext(
        message_name=message,
        primary_entity_name=table,
        primary_entity_id=str(row_id).lower(),
        target=target,
        correlation_id=_text(data.get("CorrelationId")),
        owning_extension_id=_text(extension.get("Id")) if isinstance(extension, dict) else None,
        user_id=_text(data.get("UserId")),
        depth=depth if isinstance(depth, int) and not isinstance(depth, bool) else 1,
    )


def _target(data: Mapping[str, Any]) -> dict[str, Any] | None:
    if "InputParameters" not in data or data["InputParameters"] is None:
        return None  # trimmed past 256 KB, or a message without parameters
    raw = _raw_pairs(data["InputParameters"]).get("Target")
    if raw is None:
        if not isinstance(data["InputParameters"], list):
            raise _bad("InputParameters is not a key/value list")
        return None
    if not isinstance(raw, dict) or "Attributes" not in raw:
        raise _bad("the Target is not an entity")
    return dc_attributes(raw.get("Attributes"))


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def _bad(reason: str) -> InvalidInputError:
    return InvalidInputError(
        f"not a Dataverse RemoteExecutionContext: {reason}", code="invalid_remote_context"
    )
