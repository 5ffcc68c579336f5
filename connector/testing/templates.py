"""In-memory :class:`~connector.ports.TemplateCatalog` and :class:`~connector.ports.RecordReader`
(the shipped fakes) for service tests.

The fake reader is given rows as dicts keyed by field name as templates spell them, lower
case: ``{"firstname": "Ana", "parentcustomerid.name": "Contoso"}``. A field the row does not
name is an unknown column (``unknown_column``, as Dataverse refuses it), except that a lookup
given as None (``{"parentcustomerid": None}``) is an empty lookup: every ``lookup.column``
through it reads None. Values are shown as Dataverse's display text would be for plain
values: ``str(value)``; None and empty text are no value.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from connector.domain.model import Template
from connector.errors import InvalidInputError
from connector.ports import RegardingRecord


class FakeTemplateCatalog:
    """Templates in a dictionary; ``add`` gives a template without an id a new one."""

    def __init__(self, templates: Iterable[Template] = ()) -> None:
        self.templates: dict[str, Template] = {}
        for template in templates:
            self.add(template)

    def add(self, template: Template) -> Template:
        """Store ``template`` (replacing one with its id); returns it with its id."""
        stored = template if template.id else replace(template, id=str(uuid.uuid4()))
        self.templates[str(stored.id).lower()] = stored
        return stored

    def get(self, template_id: str) -> Template | None:
        """The template with this id (published or not)."""
        return self.templates.get(template_id.lower())

    def published(self) -> Sequence[Template]:
        """Every published template, by title."""
        shown = (t for t in self.templates.values() if t.published)
        return sorted(shown, key=lambda t: (t.title.lower(), t.id or ""))


@dataclass
class _Row:
    values: dict[str, Any]
    name: str | None
    owner_id: str | None
    owner_is_team: bool


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


@dataclass
class FakeRecordReader:
    """CRM records by (table, id), given as dicts of field values; ``reads`` logs each read."""

    rows: dict[tuple[str, str], _Row] = field(default_factory=dict)
    reads: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def put(
        self,
        table: str,
        record_id: str,
        values: Mapping[str, Any],
        *,
        name: str | None = None,
        owner_id: str | None = None,
        owner_is_team: bool = False,
    ) -> None:
        """Store a record: ``values`` by field name (see the module docstring)."""
        lowered = {k.lower(): v for k, v in values.items()}
        self.rows[(table, record_id.lower())] = _Row(lowered, name, owner_id, owner_is_team)

    def read(self, table: str, record_id: str, fields: Sequence[str]) -> RegardingRecord | None:
        """The record with the display text of ``fields``; None when there is none."""
        self.reads.append((table, record_id, tuple(fields)))
        row = self.rows.get((table, record_id.lower()))
        if row is None:
            return None
        values = {}
        for name in dict.fromkeys(f.strip().lower() for f in fields):
            lookup, dot, _ = name.partition(".")
            if name in row.values:
                values[name] = _text(row.values[name])
            elif dot and lookup in row.values and row.values[lookup] is None:
                values[name] = None
            else:
                raise InvalidInputError(
                    f"{table} has no column {name!r}",
                    code="unknown_column",
                    details={"table": table, "field": name},
                )
        return RegardingRecord(
            table=table,
            id=record_id.lower(),
            name=row.name,
            owner_id=row.owner_id,
            owner_is_team=row.owner_is_team,
            values=values,
            raw={name: row.values[name] for name in values if name in row.values},
        )
