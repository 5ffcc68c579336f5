"""Templates and the record a message regards, read from Dataverse for the send path.

:class:`DataverseTemplates` implements :class:`~connector.ports.TemplateCatalog`: every
``smsc_template`` row in one query (templates are few), kept for ``ttl_seconds`` and read
again when that has passed or when an id is asked for that the cache does not hold (a
template created a second ago is found).

:class:`DataverseRecordReader` implements :class:`~connector.ports.RecordReader`: ONE ``GET``
of the record with ``$select`` of the plain columns, the owner, the primary name and the
``_<lookup>_value`` of each lookup a ``lookup.column`` field goes through, asked with
``Prefer: odata.include-annotations="*"`` so choices, dates, money and lookups come with
their display text (``FormattedValue``) and lookups with the table they point to
(``lookuplogicalname``). ``lookup.<primary name>`` (or ``lookup.name``) is the lookup's own
display text; any other column of the target costs one more ``GET`` per lookup.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.crm import tables
from connector.dataverse import odata
from connector.dataverse.client import DataverseClient
from connector.domain.model import Template
from connector.errors import DataverseError, DataverseNotFoundError, InvalidInputError
from connector.ports import RegardingRecord

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
LOOKUP_TABLE = "@Microsoft.Dynamics.CRM.lookuplogicalname"
ANNOTATIONS = {"Prefer": 'odata.include-annotations="*"'}
OWNER = "ownerid"
NAME_ALIAS = "name"  # ``lookup.name``: the target's primary name, whatever its column
_UNKNOWN_PROPERTY = re.compile(r"property named '([^']+)'")
_FIELD = re.compile(r"^[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?$")


class DataverseTemplates:
    """The ``smsc_template`` rows, cached for ``ttl_seconds`` (thread-safe)."""

    def __init__(
        self,
        client: DataverseClient,
        ttl_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._by_id: Mapping[str, Template] = {}
        self._loaded_at: float | None = None

    def get(self, template_id: str) -> Template | None:
        """The template with this id (published or not); None when there is none."""
        key = template_id.lower()
        cached, just_read = self._current()
        found = cached.get(key)
        if found is not None or just_read:
            return found
        with self._lock:
            if key not in self._by_id:
                self._load()
            return self._by_id.get(key)

    def published(self) -> Sequence[Template]:
        """Every published template, by title."""
        shown = (t for t in self._current()[0].values() if t.published)
        return sorted(shown, key=lambda t: (t.title.lower(), t.id or ""))

    def invalidate(self) -> None:
        """Forget the cache: the next call reads the rows again."""
        with self._lock:
            self._loaded_at = None

    def _current(self) -> tuple[Mapping[str, Template], bool]:
        """The cached rows, read again first when older than the TTL (then True)."""
        loaded = self._loaded_at
        if loaded is not None and self._clock() - loaded < self._ttl:
            return self._by_id, False
        with self._lock:
            loaded = self._loaded_at
            if loaded is not None and self._clock() - loaded < self._ttl:
                return self._by_id, False  # another thread read them meanwhile
            self._load()
            return self._by_id, True

    def _load(self) -> None:
        """One query of every template (caller holds the lock)."""
        rows = self._client.query(tables.TEMPLATE.entity_set, select=tables.TEMPLATE_COLUMNS)
        templates = (tables.template_from_row(row) for row in rows)
        self._by_id = {str(t.id).lower(): t for t in templates if t.id}
        self._loaded_at = self._clock()


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one read selects: plain columns, and the columns wanted through each lookup."""

    plain: tuple[str, ...]
    through: Mapping[str, tuple[str, ...]]


def plan_fields(table: str, fields: Sequence[str]) -> _Plan:
    """The fields split into plain columns and ``lookup -> columns`` (lower case, in order)."""
    plain: dict[str, None] = {}
    through: dict[str, dict[str, None]] = {}
    for raw in fields:
        field = raw.strip().lower()
        if not _FIELD.match(field):
            raise InvalidInputError(
                f"not a column of {table}: {raw[:80]!r}",
                code="unknown_column",
                details={"table": table, "field": raw},
            )
        lookup, dot, column = field.partition(".")
        if dot:
            through.setdefault(lookup, {})[column] = None
        else:
            plain[field] = None
    return _Plan(tuple(plain), {k: tuple(v) for k, v in through.items()})


def display(row: Mapping[str, Any], column: str) -> str | None:
    """The display text of ``column`` in an annotated row: its formatted value, else the value
    as text (a lookup read by its plain name uses its ``_x_value`` annotations)."""
    for key in (column, f"_{column}_value"):
        formatted = row.get(key + FORMATTED)
        if formatted not in (None, ""):
            return str(formatted)
        value = row.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def _unknown_column(
    exc: DataverseError, table: str, fields: Mapping[str, str]
) -> InvalidInputError | None:
    """The ``unknown_column`` error for a 400 naming a property (``fields``: column -> field);
    None for any other failure."""
    named = _UNKNOWN_PROPERTY.search(exc.message)
    if exc.status != 400 or named is None:
        return None
    column = named.group(1).lower()
    if column.startswith("_") and column.endswith("_value"):
        column = column[1:-6]
    field = fields.get(column, column)
    return InvalidInputError(
        f"{table} has no column {field!r}",
        code="unknown_column",
        details={"table": table, "field": field},
    )


class DataverseRecordReader:
    """Reads one CRM record's display values for a template, lookups one level deep."""

    def __init__(self, client: DataverseClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._shapes: dict[str, tuple[tables.Table, bool]] = {}

    def read(self, table: str, record_id: str, fields: Sequence[str]) -> RegardingRecord | None:
        """The record with the display text of ``fields``; None when it does not exist."""
        shape, owned = self._shape(table)
        plan = plan_fields(table, fields)
        select = [shape.name_column, f"_{OWNER}_value" if owned else ""]
        select += [c for c in plan.plain if not (owned and c == OWNER)]
        select += [f"_{lookup}_value" for lookup in plan.through]
        named = {c: c for c in plan.plain}
        named |= {lookup: f"{lookup}.{cols[0]}" for lookup, cols in plan.through.items()}
        row = self._get(table, shape.entity_set, record_id, select, named)
        if row is None:
            return None
        values: dict[str, str | None] = {c: display(row, c) for c in plan.plain}
        for lookup, wanted in plan.through.items():
            values |= self._through(row, lookup, wanted)
        owner = row.get(f"_{OWNER}_value")
        return RegardingRecord(
            table=table,
            id=str(row.get(shape.id_column) or record_id).lower(),
            name=display(row, shape.name_column) if shape.name_column else None,
            owner_id=str(owner) if owner else None,
            owner_is_team=row.get(f"_{OWNER}_value{LOOKUP_TABLE}") == "team",
            values={f: values.get(f) for f in _normalised(fields)},
            raw={c: row.get(c) for c in plan.plain},
        )

    def _through(
        self, row: Mapping[str, Any], lookup: str, wanted: Sequence[str]
    ) -> dict[str, str | None]:
        """``lookup.column`` values: the lookup's display text for the primary name, one GET
        of the target for any other column; all None when the lookup is empty."""
        key = f"_{lookup}_value"
        target_id, target_table = row.get(key), row.get(key + LOOKUP_TABLE)
        if not target_id or not target_table:
            return dict.fromkeys((f"{lookup}.{c}" for c in wanted), None)
        shape, _ = self._shape(str(target_table))
        primary = {NAME_ALIAS, shape.name_column}
        found: dict[str, str | None] = {
            f"{lookup}.{c}": display(row, lookup) for c in wanted if c in primary
        }
        others = [c for c in wanted if c not in primary]
        if others:
            fields = {c: f"{lookup}.{c}" for c in others}
            target = self._get(shape.logical_name, shape.entity_set, str(target_id), others, fields)
            found |= {f"{lookup}.{c}": display(target, c) if target else None for c in others}
        return found

    def _get(
        self,
        table: str,
        entity_set: str,
        record_id: str,
        select: Sequence[str],
        fields: Mapping[str, str],
    ) -> dict[str, Any] | None:
        """One annotated row by id; None on 404; ``unknown_column`` for a 400 naming one."""
        query = odata.query_options(select=[c for c in dict.fromkeys(select) if c])
        try:
            answer = self._client.request(
                "GET", odata.entity_path(entity_set, record_id), query=query, headers=ANNOTATIONS
            )
        except DataverseNotFoundError:
            return None
        except DataverseError as exc:
            unknown = _unknown_column(exc, table, fields)
            if unknown is None:
                raise
            raise unknown from exc
        return dict(answer.json() or {})

    def _shape(self, table: str) -> tuple[tables.Table, bool]:
        """A table's entity set, id and primary name, and whether it has an owner."""
        known = tables.crm_table(table)
        if known is not None:
            return known, table not in {t.logical_name for t in tables.ALL_TABLES}
        with self._lock:
            cached = self._shapes.get(table)
        if cached is not None:
            return cached
        learned = self._learn(table)
        with self._lock:
            self._shapes[table] = learned
        return learned

    def _learn(self, table: str) -> tuple[tables.Table, bool]:
        """A table not known by name, from its metadata (once per reader)."""
        path = f"EntityDefinitions(LogicalName={odata.literal(odata.identifier(table))})"
        select = "EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute,OwnershipType"
        try:
            body = self._client.request("GET", path, query={"$select": select}).json() or {}
        except DataverseNotFoundError as exc:
            raise InvalidInputError(
                f"no table named {table!r}", code="unknown_table", details={"table": table}
            ) from exc
        shape = tables.Table(
            table,
            str(body.get("EntitySetName") or f"{table}s"),
            str(body.get("PrimaryIdAttribute") or f"{table}id"),
            str(body.get("PrimaryNameAttribute") or ""),
        )
        return shape, body.get("OwnershipType") in ("UserOwned", "TeamOwned")


def _normalised(fields: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(f.strip().lower() for f in fields))
