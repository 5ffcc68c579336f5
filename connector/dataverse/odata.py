"""Pure OData helpers for the Dataverse Web API: literals, filters, key segments, query strings.

No I/O. Every value that reaches a URL goes through :func:`literal` (single quotes doubled)
and then percent-encoding (:func:`query_string`, :func:`key_segment`), so a value taken from a
webhook (``' or 1 eq 1``, ``%27``, ``&``, ``#``...) stays one string literal and can never
change the meaning of a filter or add a query option. Column and entity-set names are checked
against the identifier grammar instead of being escaped: they come from configuration, and a
bad one is a configuration error, not something to smuggle through.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import quote

from connector.errors import InvalidInputError

Scalar = str | int | float | bool | None | uuid.UUID | datetime | date
KeyValue = str | int | uuid.UUID

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROPERTY_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*$")
_ENTITY_URL_KEY = re.compile(r"\(([^()]*)\)\s*$")
_GUID_IN = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# Characters left unencoded in a query option value: OData syntax that reads better raw and
# means the same encoded. Everything else (%, &, #, +, =, ;, ?, /, :, spaces...) is encoded.
_QUERY_SAFE = "'(),"


def is_guid(value: object) -> bool:
    """Whether ``value`` is a GUID in the 8-4-4-4-12 form Dataverse uses."""
    return isinstance(value, uuid.UUID) or (isinstance(value, str) and bool(_GUID.match(value)))


def guid(value: object) -> str:
    """``value`` as a lower-case GUID string; :class:`InvalidInputError` if it is not one."""
    if not is_guid(value):
        raise InvalidInputError(f"not a GUID: {str(value)[:80]!r}", details={"value": str(value)})
    return str(value).lower()


def identifier(name: str) -> str:
    """An entity-set, column or navigation-property name, checked against OData's grammar."""
    if not _IDENTIFIER.match(name):
        raise InvalidInputError(f"not an OData identifier: {name[:80]!r}")
    return name


def property_path(path: str) -> str:
    """A column name or navigation path (``primarycontactid/fullname``), checked."""
    if not _PROPERTY_PATH.match(path):
        raise InvalidInputError(f"not an OData property path: {path[:80]!r}")
    return path


def literal(value: Scalar) -> str:
    """The OData literal for ``value``: strings quoted with ``'`` doubled, GUIDs bare."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, uuid.UUID | int | float):
        return str(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return "'" + str(value).replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class Filter:
    """A ``$filter`` expression; combine with ``&`` / ``|`` / ``~``, render with ``str()``."""

    text: str
    compound: bool = False

    def __str__(self) -> str:
        return self.text

    def __and__(self, other: Filter) -> Filter:
        return and_(self, other)

    def __or__(self, other: Filter) -> Filter:
        return or_(self, other)

    def __invert__(self) -> Filter:
        return not_(self)

    def _grouped(self) -> str:
        return f"({self.text})" if self.compound else self.text


def _compare(op: str, column: str, value: Scalar) -> Filter:
    return Filter(f"{property_path(column)} {op} {literal(value)}")


def eq(column: str, value: Scalar) -> Filter:
    """``column eq value`` (``eq null`` for ``None``)."""
    return _compare("eq", column, value)


def ne(column: str, value: Scalar) -> Filter:
    """``column ne value``."""
    return _compare("ne", column, value)


def gt(column: str, value: Scalar) -> Filter:
    """``column gt value``."""
    return _compare("gt", column, value)


def ge(column: str, value: Scalar) -> Filter:
    """``column ge value``."""
    return _compare("ge", column, value)


def lt(column: str, value: Scalar) -> Filter:
    """``column lt value``."""
    return _compare("lt", column, value)


def le(column: str, value: Scalar) -> Filter:
    """``column le value``."""
    return _compare("le", column, value)


def is_null(column: str) -> Filter:
    """``column eq null``."""
    return eq(column, None)


def not_null(column: str) -> Filter:
    """``column ne null``."""
    return ne(column, None)


def contains(column: str, value: str) -> Filter:
    """``contains(column,'value')`` (slow on large tables: no index use)."""
    return Filter(f"contains({property_path(column)},{literal(value)})")


def startswith(column: str, value: str) -> Filter:
    """``startswith(column,'value')``."""
    return Filter(f"startswith({property_path(column)},{literal(value)})")


def endswith(column: str, value: str) -> Filter:
    """``endswith(column,'value')``."""
    return Filter(f"endswith({property_path(column)},{literal(value)})")


def _join(op: str, parts: Iterable[Filter]) -> Filter:
    items = list(parts)
    if not items:
        raise InvalidInputError(f"'{op}' needs at least one condition")
    if len(items) == 1:
        return items[0]
    return Filter(f" {op} ".join(p._grouped() for p in items), compound=True)


def and_(*parts: Filter) -> Filter:
    """All of ``parts`` (each compound part parenthesised)."""
    return _join("and", parts)


def or_(*parts: Filter) -> Filter:
    """Any of ``parts`` (each compound part parenthesised)."""
    return _join("or", parts)


def not_(part: Filter) -> Filter:
    """``not (part)``."""
    return Filter(f"not ({part.text})")


def in_(column: str, values: Iterable[Scalar]) -> Filter:
    """``column`` equal to one of ``values`` (an ``or`` of ``eq``; portable to every server)."""
    return or_(*(eq(column, v) for v in values))


def key_segment(key: KeyValue | Mapping[str, KeyValue]) -> str:
    """The parenthesised key of a row: ``(<guid>)`` or ``(k1='v',k2=3)``, percent-encoded.

    A string key that is a GUID addresses by primary key; a mapping addresses by alternate key
    (string values quoted and escaped, numbers and GUIDs bare).
    """
    if isinstance(key, Mapping):
        if not key:
            raise InvalidInputError("an alternate key needs at least one column")
        parts = [f"{identifier(k)}={_encode(literal(v))}" for k, v in key.items()]
        return "(" + ",".join(parts) + ")"
    if isinstance(key, int):
        raise InvalidInputError("a primary key is a GUID, not a number")
    return f"({guid(key)})"


def entity_path(entity_set: str, key: KeyValue | Mapping[str, KeyValue]) -> str:
    """``entityset(key)``: the relative URL of one row."""
    return identifier(entity_set) + key_segment(key)


def bind(entity_set: str, key: KeyValue | Mapping[str, KeyValue]) -> str:
    """The value of a ``<nav>@odata.bind`` annotation: ``/entityset(key)``."""
    return "/" + entity_path(entity_set, key)


def entity_id_from_url(url: str | None) -> str | None:
    """The GUID in an ``OData-EntityId`` / ``Location`` URL, or None (e.g. a key-form URL)."""
    if not url:
        return None
    match = _ENTITY_URL_KEY.search(url)
    if match is None:
        return None
    found = _GUID_IN.fullmatch(match.group(1))
    return found.group(0).lower() if found else None


def _encode(text: str) -> str:
    return quote(text, safe=_QUERY_SAFE)


def query_string(options: Mapping[str, str | int | None]) -> str:
    """``$select=a,b&$filter=...``: option values percent-encoded, ``None`` options dropped."""
    pairs = []
    for name, value in options.items():
        if value is None:
            continue
        pairs.append(f"{quote(name, safe='$@')}={_encode(str(value))}")
    return "&".join(pairs)


def query_options(
    *,
    select: Iterable[str] | None = None,
    filter: Filter | str | None = None,
    orderby: Iterable[str] | None = None,
    top: int | None = None,
    expand: Iterable[str] | None = None,
) -> dict[str, str | int | None]:
    """The system query options of a collection read, validated (``expand`` given raw)."""
    if top is not None and not 0 < top <= 5000:
        raise InvalidInputError("$top must be between 1 and 5000")
    order = None
    if orderby is not None:
        order = ",".join(_order_item(item) for item in orderby)
    return {
        "$select": ",".join(property_path(c) for c in select) if select else None,
        "$filter": str(filter) if filter is not None else None,
        "$orderby": order or None,
        "$top": top,
        "$expand": ",".join(expand) if expand else None,
    }


def _order_item(item: str) -> str:
    column, _, direction = item.strip().partition(" ")
    if direction not in {"", "asc", "desc"}:
        raise InvalidInputError(f"bad $orderby direction in {item[:80]!r}")
    return property_path(column) + (f" {direction}" if direction else "")


def expand_clause(
    navigation: str,
    *,
    select: Iterable[str] | None = None,
    filter: Filter | None = None,
    top: int | None = None,
) -> str:
    """``nav($select=a,b;$filter=...;$top=n)`` for ``$expand``."""
    inner = []
    if select:
        inner.append("$select=" + ",".join(property_path(c) for c in select))
    if filter is not None:
        inner.append(f"$filter={filter}")
    if top is not None:
        inner.append(f"$top={int(top)}")
    name = identifier(navigation)
    return f"{name}({';'.join(inner)})" if inner else name
