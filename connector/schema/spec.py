"""The declared solution schema: ``solution_schema/*.yaml`` loaded into validated, typed models.

``solution.yaml`` names the publisher (prefix ``smsc``), the solution and its version; each
``tables/<table>.yaml`` declares one table: activity or standard, ownership, primary name,
columns (types, lengths, choices with stable option values, lookups) and alternate keys.

:func:`load_schema` reads and validates the whole directory and raises one
:class:`~connector.errors.ConfigurationError` listing every problem: names without the
publisher prefix, lookups to tables that neither the schema nor Dataverse has, keys over
columns that do not exist, option values outside the publisher's option range. Building the
metadata payloads and planning changes live in :mod:`connector.schema.payloads`
and :mod:`connector.schema.plan`; this module is only the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connector.errors import ConfigurationError
from connector.schema.components import Components

DEFAULT_SCHEMA_DIR = Path(__file__).resolve().parents[2] / "solution_schema"
STANDARD_TABLES = frozenset({"contact", "account", "lead", "opportunity", "systemuser", "team"})
"""Tables Dataverse already has that our lookups may point at."""

ColumnType = Literal["string", "memo", "integer", "decimal", "boolean", "datetime", "choice"]
Ownership = Literal["OrganizationOwned", "UserOwned", "TeamOwned"]
OnDelete = Literal["Cascade", "RemoveLink", "Restrict", "NoCascade"]
SchemaName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{1,99}$")]
_LIMITS: dict[str, int] = {"string": 4000, "memo": 1048576}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Model):
    """One choice option: a stable value and its label."""

    value: int
    label: str = Field(min_length=1, max_length=200)


class ColumnSpec(_Model):
    """A column: a typed attribute, or (``type: lookup``) a one-to-many relationship."""

    schema_name: SchemaName
    type: ColumnType | Literal["lookup"]
    display_name: str = Field(min_length=1, max_length=200)
    description: str = ""
    required: bool = False
    max_length: int | None = Field(default=None, ge=1)
    format: Literal["text", "phone", "url", "email"] | None = None
    min_value: float | None = None
    max_value: float | None = None
    precision: int | None = Field(default=None, ge=0, le=10)
    default: bool | int | None = None
    options: tuple[Option, ...] = ()
    target: str | None = None
    on_delete: OnDelete = "RemoveLink"

    @property
    def logical_name(self) -> str:
        """The column's logical name: the lowercased schema name."""
        return self.schema_name.lower()

    @model_validator(mode="after")
    def _consistent(self) -> ColumnSpec:
        limit = _LIMITS.get(self.type)
        if limit is not None and (self.max_length is None or self.max_length > limit):
            raise ValueError(f"{self.schema_name}: {self.type} needs max_length 1..{limit}")
        if (self.type == "choice") != bool(self.options):
            raise ValueError(f"{self.schema_name}: options belong to (and only to) choices")
        values = [option.value for option in self.options]
        if len(set(values)) != len(values):
            raise ValueError(f"{self.schema_name}: option values repeat")
        if (self.type == "lookup") != (self.target is not None):
            raise ValueError(f"{self.schema_name}: a lookup (and only a lookup) has a target")
        return self


class KeySpec(_Model):
    """An alternate key: up to 16 columns whose values are unique together."""

    schema_name: SchemaName
    display_name: str = Field(min_length=1, max_length=200)
    columns: tuple[str, ...] = Field(min_length=1, max_length=16)


class PrimarySpec(_Model):
    """The primary name column (``Subject`` for an activity table)."""

    schema_name: SchemaName
    display_name: str = Field(min_length=1, max_length=200)
    max_length: int = Field(default=100, ge=1, le=4000)

    @property
    def logical_name(self) -> str:
        """The primary name column's logical name."""
        return self.schema_name.lower()


class TableSpec(_Model):
    """One table of the solution."""

    schema_name: SchemaName
    display_name: str = Field(min_length=1, max_length=200)
    plural_name: str = Field(min_length=1, max_length=200)
    description: str = ""
    activity: bool = False
    ownership: Ownership
    primary: PrimarySpec
    columns: tuple[ColumnSpec, ...] = ()
    keys: tuple[KeySpec, ...] = ()

    @property
    def logical_name(self) -> str:
        """The table's logical name: the lowercased schema name."""
        return self.schema_name.lower()

    @property
    def lookups(self) -> tuple[ColumnSpec, ...]:
        """The lookup columns (created as relationships)."""
        return tuple(c for c in self.columns if c.type == "lookup")

    @property
    def attributes(self) -> tuple[ColumnSpec, ...]:
        """The plain columns (created through ``Attributes``)."""
        return tuple(c for c in self.columns if c.type != "lookup")

    def column_names(self) -> set[str]:
        """Logical names of every declared column, the primary name included."""
        return {self.primary.logical_name, *(c.logical_name for c in self.columns)}

    @model_validator(mode="after")
    def _consistent(self) -> TableSpec:
        names = [c.logical_name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates or self.primary.logical_name in names:
            raise ValueError(f"{self.schema_name}: columns repeat: {duplicates}")
        if self.activity and self.primary.schema_name != "Subject":
            raise ValueError(f"{self.schema_name}: an activity's primary column is Subject")
        if self.activity and self.ownership == "OrganizationOwned":
            raise ValueError(f"{self.schema_name}: an activity is user- or team-owned")
        return self


def relationship_name(table: TableSpec, column: ColumnSpec) -> str:
    """The schema name of the one-to-many relationship behind a lookup column.

    ``<prefix>_<target>_<table>_<column>`` with the prefix said once (custom relationship
    names must carry the publisher prefix, also for lookups to standard tables), e.g.
    ``smsc_session_message_sessionid`` or ``smsc_team_configuration_owningteamid``.
    """
    prefix = table.logical_name.split("_", 1)[0] + "_"
    parts = (str(column.target), table.logical_name, column.logical_name)
    return prefix + "_".join(part.removeprefix(prefix) for part in parts)


class PublisherSpec(_Model):
    """The publisher: its prefix is on every name we create."""

    unique_name: SchemaName
    friendly_name: str = Field(min_length=1)
    prefix: str = Field(pattern=r"^[a-z][a-z0-9]{1,7}$")
    option_value_prefix: int = Field(ge=10000, le=99999)
    description: str = ""

    @model_validator(mode="after")
    def _not_reserved(self) -> PublisherSpec:
        if self.prefix.startswith("mscrm"):
            raise ValueError("the prefix may not start with mscrm")
        return self


class SolutionInfo(_Model):
    """The unmanaged solution every component is created in."""

    unique_name: SchemaName
    friendly_name: str = Field(min_length=1)
    version: str = Field(pattern=r"^\d+(\.\d+){3}$")
    description: str = ""


class Schema(_Model):
    """The whole declared schema: publisher, solution and tables."""

    publisher: PublisherSpec
    solution: SolutionInfo
    language_code: int = 1033
    tables: tuple[TableSpec, ...]
    components: Components | None = None

    def table(self, logical_name: str) -> TableSpec:
        """The declared table named ``logical_name``."""
        for table in self.tables:
            if table.logical_name == logical_name:
                return table
        raise KeyError(logical_name)

    @model_validator(mode="after")
    def _cross_references(self) -> Schema:
        problems = list(_problems(self))
        if self.components is not None:
            problems += component_problems(self, self.components)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _problems(schema: Schema) -> Iterator[str]:
    prefix = schema.publisher.prefix + "_"
    low = schema.publisher.option_value_prefix * 10000
    known = STANDARD_TABLES | {t.logical_name for t in schema.tables}
    relationships = [relationship_name(t, c) for t in schema.tables for c in t.lookups]
    repeated = sorted({n for n in relationships if relationships.count(n) > 1})
    if repeated:
        yield f"relationship names repeat: {repeated}"
    for table in schema.tables:
        where = table.logical_name
        names = [table.logical_name, *(c.logical_name for c in table.columns)]
        names += [k.schema_name.lower() for k in table.keys]
        if not table.activity:
            names.append(table.primary.logical_name)
        yield from (
            f"{where}: {n} lacks the prefix {prefix}" for n in names if not n.startswith(prefix)
        )
        for column in table.lookups:
            if column.target not in known:
                yield f"{where}.{column.logical_name}: lookup to unknown table {column.target}"
        for column in table.columns:
            bad = [o.value for o in column.options if not low <= o.value < low + 10000]
            if bad:
                yield f"{where}.{column.logical_name}: option values {bad} outside {low}.."
        for key in table.keys:
            missing = [c for c in key.columns if c not in table.column_names()]
            if missing:
                yield f"{where}: key {key.schema_name} uses unknown columns {missing}"


ACTIVITY_COLUMNS = frozenset(
    {"subject", "description", "regardingobjectid", "actualstart", "actualend", "activityid"}
)
COMMON_COLUMNS = frozenset({"ownerid", "createdon", "modifiedon", "statecode", "statuscode"})
STANDARD_PRIVILEGE_TABLES = STANDARD_TABLES | {"appnotification"}


def _columns(table: TableSpec) -> set[str]:
    names = table.column_names() | {table.primary.logical_name, f"{table.logical_name}id"}
    return names | COMMON_COLUMNS | (ACTIVITY_COLUMNS if table.activity else set())


def _named_columns(components: Components) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """(where, table, columns) for every view and form."""
    for view in components.views:
        used = (*view.columns, *(c.column for c in view.filter), *(o.column for o in view.order))
        yield f"view {view.name}", view.table, used
    for form in components.forms:
        yield f"form {form.name}", form.table, tuple(c for s in form.sections for c in s.columns)
        for grid in form.subgrids:
            yield f"form {form.name} subgrid", grid.table, tuple(filter(None, (grid.lookup,)))


def component_problems(schema: Schema, components: Components) -> Iterator[str]:
    """Views, forms, the app and roles name tables and columns the schema declares."""
    tables = {t.logical_name: t for t in schema.tables}
    for where, table_name, columns in _named_columns(components):
        table = tables.get(table_name)
        if table is None:
            yield f"{where}: unknown table {table_name}"
        elif missing := sorted(set(columns) - _columns(table)):
            yield f"{where}: {table_name} has no columns {missing}"
    for form in components.forms:
        for grid in form.subgrids:
            if grid.view and components.view(grid.view) is None:
                yield f"form {form.name}: subgrid view {grid.view!r} is not declared"
    app_tables = (
        [t for a in components.app.areas for g in a.groups for t in g.tables]
        if components.app
        else []
    )
    yield from (f"app: unknown table {name}" for name in app_tables if name not in tables)
    for role in components.roles:
        unknown = set(role.privileges) - set(tables) - STANDARD_PRIVILEGE_TABLES
        yield from (f"role {role.name}: unknown table {name}" for name in sorted(unknown))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read {path.name}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path.name} must hold a mapping")
    return data


def load_schema(directory: Path | None = None) -> Schema:
    """Read ``solution.yaml`` and ``tables/*.yaml`` from ``directory`` and validate them."""
    root = directory or DEFAULT_SCHEMA_DIR
    data = _read_yaml(root / "solution.yaml")
    table_files = sorted((root / "tables").glob("*.yaml"))
    if not table_files:
        raise ConfigurationError(f"no table files in {root / 'tables'}")
    data["tables"] = [_read_yaml(path) for path in table_files]
    if (root / "components.yaml").exists():
        data["components"] = _read_yaml(root / "components.yaml")
    try:
        return Schema.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error, table_files) for error in exc.errors()]
        raise ConfigurationError(
            "invalid solution schema:\n  " + "\n  ".join(problems),
            details={"problems": problems},
        ) from None


def _describe(error: Any, files: list[Path]) -> str:
    location = list(error.get("loc", ()))
    where = ""
    if len(location) > 1 and location[0] == "tables" and isinstance(location[1], int):
        where = files[location[1]].name + ": "
        location = location[2:]
    path = ".".join(str(part) for part in location)
    message = re.sub(r"^Value error, ", "", str(error.get("msg", "invalid")))
    return f"{where}{path + ': ' if path else ''}{message}"
