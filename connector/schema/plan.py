"""What ``connector schema apply`` would do: the declared schema diffed with the live one (pure).

:class:`LiveState` is what the installer read from the metadata API (publisher, solution,
tables with their columns and keys, relationship names). :func:`plan` compares it with the
declared :class:`~connector.schema.spec.Schema` and returns the ordered steps: publisher,
solution, tables, columns, relationships, alternate keys, waits for keys still building, and
one publish when anything changed or a key is still building (an earlier run that stopped while
waiting for its keys never published). Nothing is ever dropped: a live column or option the schema
no longer declares, or a column longer than declared, is reported in ``Plan.notes`` and kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from connector.schema.payloads import (
    column_payload,
    key_payload,
    label,
    publish_xml,
    publisher_payload,
    relationship_payload,
    table_payload,
)
from connector.schema.spec import ColumnSpec, Schema, TableSpec, relationship_name

Action = Literal["create", "update", "wait", "publish"]
Kind = Literal[
    "publisher",
    "solution",
    "table",
    "column",
    "option",
    "relationship",
    "key",
    "xml",
    "view",
    "form",
    "sitemap",
    "app",
    "role",
    "privileges",
]
COMPONENT_KINDS: frozenset[str] = frozenset(
    {"view", "form", "sitemap", "app", "role", "privileges"}
)
CHANGING: frozenset[str] = frozenset({"create", "update", "publish"})


@dataclass(frozen=True, slots=True)
class LiveColumn:
    """A live column's facts the plan compares (length of text columns, choice values)."""

    max_length: int | None = None
    options: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class LiveTable:
    """A live table: its columns by logical name, its keys by schema name with index status."""

    columns: Mapping[str, LiveColumn] = field(default_factory=dict)
    keys: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LiveState:
    """What exists in the environment, as read by the installer."""

    publisher_id: str | None = None
    solution_id: str | None = None
    tables: Mapping[str, LiveTable] = field(default_factory=dict)
    relationships: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Step:
    """One request of the plan (``wait`` steps make none: they poll a key's status)."""

    action: Action
    kind: Kind
    name: str
    table: str | None = None
    method: str = "POST"
    path: str = ""
    body: dict[str, Any] | None = None
    detail: str = ""

    @property
    def changing(self) -> bool:
        """Whether the step changes the environment."""
        return self.action in CHANGING


@dataclass(frozen=True, slots=True)
class Plan:
    """The ordered steps and the differences kept as they are."""

    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()

    @property
    def changes(self) -> tuple[Step, ...]:
        """The steps that change the environment."""
        return tuple(step for step in self.steps if step.changing)

    @property
    def empty(self) -> bool:
        """Nothing to create, change, wait for or publish."""
        return not self.steps


def _entity(table: str) -> str:
    return f"EntityDefinitions(LogicalName='{table}')"


def _column_steps(
    schema: Schema, table: TableSpec, live: LiveTable | None, notes: list[str]
) -> Iterator[Step]:
    language = schema.language_code
    for column in table.attributes:
        current = live.columns.get(column.logical_name) if live else None
        if current is None:
            yield Step(
                "create",
                "column",
                column.logical_name,
                table.logical_name,
                path=f"{_entity(table.logical_name)}/Attributes",
                body=column_payload(column, language),
                detail=column.type,
            )
            continue
        yield from _column_changes(schema, table, column, current, notes)


def _length_change(
    schema: Schema, table: TableSpec, column: ColumnSpec, live: LiveColumn, notes: list[str]
) -> Iterator[Step]:
    declared = column.max_length
    if declared is None or live.max_length is None or declared == live.max_length:
        return
    if declared < live.max_length:
        where = f"{table.logical_name}.{column.logical_name}"
        notes.append(f"{where}: live max length {live.max_length} > {declared}, kept")
        return
    path = f"{_entity(table.logical_name)}/Attributes(LogicalName='{column.logical_name}')"
    body = column_payload(column, schema.language_code)
    detail = f"max length {live.max_length} -> {declared}"
    yield Step(
        "update",
        "column",
        column.logical_name,
        table.logical_name,
        method="PUT",
        path=path,
        body=body,
        detail=detail,
    )


def _column_changes(
    schema: Schema, table: TableSpec, column: ColumnSpec, live: LiveColumn, notes: list[str]
) -> Iterator[Step]:
    yield from _length_change(schema, table, column, live, notes)
    for option in column.options:
        if option.value not in live.options:
            body = {
                "EntityLogicalName": table.logical_name,
                "AttributeLogicalName": column.logical_name,
                "Value": option.value,
                "Label": label(option.label, schema.language_code),
                "SolutionUniqueName": schema.solution.unique_name,
            }
            name = f"{column.logical_name}={option.value}"
            yield Step(
                "create",
                "option",
                name,
                table.logical_name,
                path="InsertOptionValue",
                body=body,
                detail=option.label,
            )
    extra = sorted(live.options - {o.value for o in column.options})
    if extra and column.options:
        where = f"{table.logical_name}.{column.logical_name}"
        notes.append(f"{where}: live options {extra} not declared, kept")


def _table_steps(schema: Schema, live: LiveState, notes: list[str]) -> Iterator[Step]:
    for table in schema.tables:
        if table.logical_name not in live.tables:
            kind = "activity" if table.activity else "standard"
            yield Step(
                "create",
                "table",
                table.logical_name,
                table.logical_name,
                path="EntityDefinitions",
                body=table_payload(table, schema.language_code),
                detail=f"{kind}, {table.ownership}",
            )
    for table in schema.tables:
        yield from _column_steps(schema, table, live.tables.get(table.logical_name), notes)
        current = live.tables.get(table.logical_name)
        if current is None:
            continue
        declared = table.column_names() | {"activityid", f"{table.logical_name}id"}
        undeclared = sorted(c for c in current.columns if c.startswith(schema.publisher.prefix))
        for name in (c for c in undeclared if c not in declared):
            notes.append(f"{table.logical_name}.{name}: live column not declared, kept")


def _relationship_steps(schema: Schema, live: LiveState) -> Iterator[Step]:
    for table in schema.tables:
        for column in table.lookups:
            name = relationship_name(table, column)
            if name not in live.relationships:
                yield Step(
                    "create",
                    "relationship",
                    name,
                    table.logical_name,
                    path="RelationshipDefinitions",
                    body=relationship_payload(schema, table, column),
                    detail=f"{column.logical_name} -> {column.target}",
                )


def _key_steps(schema: Schema, live: LiveState, notes: list[str]) -> Iterator[Step]:
    waits: list[Step] = []
    for table in schema.tables:
        current = live.tables.get(table.logical_name)
        keys = {k.lower(): v for k, v in (current.keys if current else {}).items()}
        for key in table.keys:
            status = keys.get(key.schema_name.lower())
            if status is None:
                yield Step(
                    "create",
                    "key",
                    key.schema_name,
                    table.logical_name,
                    path=f"{_entity(table.logical_name)}/Keys",
                    body=key_payload(key, schema.language_code),
                    detail=", ".join(key.columns),
                )
            if status == "Failed":
                notes.append(
                    f"{table.logical_name}: key {key.schema_name} failed to build "
                    "(fix duplicate values, then reactivate it)"
                )
            elif status != "Active":
                detail = f"{status or 'new'} -> Active"
                waits.append(
                    Step(
                        "wait",
                        "key",
                        key.schema_name,
                        table.logical_name,
                        method="GET",
                        detail=detail,
                    )
                )
    yield from waits


def _container_steps(schema: Schema, live: LiveState) -> Iterator[Step]:
    if live.publisher_id is None:
        publisher = schema.publisher
        yield Step(
            "create",
            "publisher",
            publisher.unique_name,
            path="publishers",
            body=publisher_payload(publisher),
            detail=f"prefix {publisher.prefix}",
        )
    if live.solution_id is None:
        solution = schema.solution
        yield Step(
            "create",
            "solution",
            solution.unique_name,
            path="solutions",
            detail=f"version {solution.version}",
        )


def _publish_step(steps: list[Step]) -> Iterator[Step]:
    # Keys still building mean an earlier run stopped before it published: publish again.
    touched = sorted(
        {s.table for s in steps if s.table and s.action in ("create", "update", "wait")}
    )
    if touched:
        yield Step(
            "publish",
            "xml",
            "PublishXml",
            path="PublishXml",
            body=publish_xml(touched),
            detail=f"{len(touched)} tables",
        )


def plan(schema: Schema, live: LiveState) -> Plan:
    """The steps that bring ``live`` to ``schema``, in the order they must run."""
    notes: list[str] = []
    steps = list(_container_steps(schema, live))
    steps += _table_steps(schema, live, notes)
    steps += _relationship_steps(schema, live)
    steps += _key_steps(schema, live, notes)
    steps += _publish_step(steps)
    return Plan(tuple(steps), tuple(notes))
