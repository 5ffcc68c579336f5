"""Resource addressing: ``contacts(<guid>)``, ``accounts(accountnumber='A''1')``, binds.

Turns a URL segment's key part into either a primary-key GUID or a set of alternate-key
values, checking the names against the table's primary key and *active* alternate keys the
way Dataverse does (a non-key column gives 400 with the documented message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from connector.emulators.dataverse.metadata import EntityDef
from connector.emulators.dataverse.protocol import API_PREFIX, bad_request, decode_segment
from connector.emulators.dataverse.query import split_top_level

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SEGMENT = re.compile(r"^(?P<name>[^()]+)(?:\((?P<key>.*)\))?$", re.DOTALL)


@dataclass(frozen=True)
class Address:
    """A row address: ``record_id`` for the primary key, ``alternate`` for key values."""

    record_id: str | None = None
    alternate: dict[str, Any] | None = None


def is_guid(text: str) -> bool:
    """Whether ``text`` is a GUID."""
    return bool(_GUID.match(text))


def split_segment(segment: str) -> tuple[str, str | None]:
    """``contacts(abc)`` -> ('contacts', 'abc'); the key part is percent-decoded."""
    match = _SEGMENT.match(segment)
    if match is None:
        raise bad_request(f"Invalid URL segment '{segment}'.")
    key = match.group("key")
    return decode_segment(match.group("name")), None if key is None else decode_segment(key)


def parse_literal(text: str) -> Any:
    """A key literal: quoted string (with '' unescaped), GUID, or number."""
    text = text.strip()
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if is_guid(text):
        return text.lower()
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise bad_request(f"Invalid key value '{text}'.") from None


def parse_key(entity: EntityDef, key: str) -> Address:
    """Resolve the text between the parentheses against the table's keys."""
    key = key.strip()
    if is_guid(key):
        return Address(record_id=key.lower())
    values: dict[str, Any] = {}
    for part in split_top_level(key):
        name, sep, literal = part.partition("=")
        if not sep:
            raise _invalid_key(entity)
        name = name.strip()
        if name.startswith("_") and name.endswith("_value"):
            name = name[1:-6]
        values[name] = parse_literal(literal)
    if set(values) == {entity.primary_id} and entity.logical_name not in ("systemuser", "team"):
        return Address(record_id=str(values[entity.primary_id]).lower())
    for alt in entity.active_keys():
        if set(alt.key_attributes) == set(values):
            return Address(alternate=values)
    raise _invalid_key(entity)


def _invalid_key(entity: EntityDef) -> Exception:
    name = f"Microsoft.Dynamics.CRM.{entity.logical_name}"
    return bad_request(
        f"The key in the request URI is not valid for resource '{name}'. Ensure that the names "
        f"and number of key properties match the declared or alternate key properties for the "
        f"resource '{name}'.",
        "0x80060888",
    )


def key_text(values: dict[str, Any]) -> str:
    """The key form of a URL segment, as echoed in an upsert's OData-EntityId."""
    parts = []
    for name, value in values.items():
        literal = "'" + value.replace("'", "''") + "'" if isinstance(value, str) else str(value)
        parts.append(f"{name}={literal}")
    return ",".join(parts)


def reference_path(value: str) -> str:
    """The ``set(key)`` part of a bind or ``@odata.id`` value (absolute, rooted or bare)."""
    marker = API_PREFIX + "/"
    if marker in value:
        value = value.split(marker, 1)[1]
    return value.lstrip("/")
