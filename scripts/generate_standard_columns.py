"""Generate the Dataverse emulator's standard columns from Microsoft's table reference pages.

Reads the entity (table) reference pages Microsoft publishes for Dataverse / Dynamics 365
(one Markdown page per table: ``contact.md``, ``account.md``...; the powerapps-docs
repository keeps them under ``powerapps-docs/developer/data-platform/reference/entities/``,
the Dynamics 365 Customer Engagement developer docs under ``ce/developer/entities/``) and
writes ``connector/emulators/dataverse/standard_columns.json``: FACTS only, one column a line
(logical name, schema name, type, max length where given, option values with their labels,
lookup targets, required level, valid for create / update / read). No descriptions or other
prose are copied.

Both page layouts are read: "Writable attributes" / "Writable columns/attributes" and
"Read-only attributes" / "Read-only columns/attributes" sections, "#### X Options" and
"#### X Choices/Options" tables. A column's companions that the Web API does not expose as
properties (``<lookup>name``, ``<lookup>yominame``, ``<lookup>type``: AttributeOf columns)
are left out.

Usage::

    python scripts/generate_standard_columns.py PAGES_DIR [--out FILE] [--revision TEXT]

PAGES_DIR holds the pages named ``<table>.md`` for every table in TABLES.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

TABLES = (
    "contact",
    "account",
    "lead",
    "opportunity",
    "systemuser",
    "team",
    "businessunit",
    "activitypointer",
)
DEFAULT_OUT = (
    Path(__file__).resolve().parent.parent
    / "connector"
    / "emulators"
    / "dataverse"
    / "standard_columns.json"
)
LOOKUPS = {"Lookup", "Customer", "Owner"}

_SECTION = re.compile(r"^## (.+?)\s*$")
_COLUMN = re.compile(r'^### <a name="BKMK_[^"]*"></a>\s*(\S+)\s*$')
_OPTIONS = re.compile(r"^#### (\S+) (?:Choices/)?Options\s*$")
_ROW = re.compile(r"^\|(.*)\|\s*$")
_DATE = re.compile(r"^ms\.date:\s*(\S+)", re.MULTILINE)
_TABLE_FACTS = {
    "EntitySetName": "entity_set",
    "LogicalName": "logical_name",
    "ObjectTypeCode": "object_type_code",
    "OwnershipType": "ownership",
    "PrimaryIdAttribute": "primary_id",
    "PrimaryNameAttribute": "primary_name",
    "SchemaName": "schema_name",
}


class PageError(ValueError):
    """A page that does not have the reference layout this generator reads."""


def _cells(line: str) -> list[str] | None:
    match = _ROW.match(line)
    if match is None:
        return None
    return [cell.strip() for cell in match.group(1).split("|")]


def _section_kind(title: str) -> str | None:
    lowered = title.lower()
    if lowered.startswith("writable"):
        return "writable"
    if lowered.startswith("read-only"):
        return "read-only"
    if lowered.startswith(("entity properties", "properties")):
        return "table"
    return None


def parse_page(text: str, table: str) -> dict[str, Any]:
    """The facts of one table reference page."""
    facts: dict[str, Any] = {}
    columns: list[dict[str, Any]] = []
    section: str | None = None
    for line in text.splitlines():
        heading = _SECTION.match(line)
        if heading:
            section = _section_kind(heading.group(1))
            columns.append({})  # a section boundary: no column continues past it
        elif section == "table":
            cells = _cells(line)
            if cells and len(cells) >= 2 and cells[0] in _TABLE_FACTS:
                facts[_TABLE_FACTS[cells[0]]] = cells[1]
        elif section in ("writable", "read-only"):
            _column_line(line, columns, writable=section == "writable")
    columns = [column for column in columns if column]
    if facts.get("logical_name") != table:
        raise PageError(f"{table}.md: LogicalName is {facts.get('logical_name')!r}, not {table!r}")
    if not columns:
        raise PageError(f"{table}.md: no column sections found")
    return {**facts, "columns": _facts(columns, table)}


def _column_line(line: str, columns: list[dict[str, Any]], *, writable: bool) -> None:
    """One line inside a column section: a column heading, its properties or its options."""
    column = _COLUMN.match(line)
    if column:
        columns.append({"schema": column.group(1), "create": writable, "update": writable})
        return
    current = columns[-1] if columns else {}
    if not current:
        return
    if _OPTIONS.match(line):
        current["options"] = []
        return
    cells = _cells(line)
    if not cells or set(cells[0]) <= {"-"} or cells[0] in ("Property", "Value"):
        return
    if "options" in current:
        current["options"].append([int(cells[0]), cells[1]])
    elif len(cells) >= 2:
        current.setdefault("properties", {})[cells[0]] = cells[1]


def _facts(columns: list[dict[str, Any]], table: str) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    for raw in columns:
        props = raw.get("properties", {})
        name, kind = props.get("LogicalName"), props.get("Type")
        if not name or not kind:
            raise PageError(f"{table}.md: column {raw['schema']} has no LogicalName or Type")
        fact: dict[str, Any] = {"name": name, "schema": raw["schema"], "type": kind}
        if props.get("MaxLength", "").isdigit():
            fact["max_length"] = int(props["MaxLength"])
        if "Targets" in props and kind in LOOKUPS:
            fact["targets"] = [t.strip() for t in props["Targets"].split(",") if t.strip()]
        if raw.get("options"):
            fact["options"] = raw["options"]
        fact["required"] = props.get("RequiredLevel", "None")
        fact["create"] = _flag(props.get("IsValidForCreate"), raw["create"])
        fact["update"] = _flag(props.get("IsValidForUpdate"), raw["update"])
        fact["read"] = _flag(props.get("IsValidForRead"), True)
        kept.append(fact)
    lookups = {f["name"] for f in kept if f["type"] in LOOKUPS}
    companions = {f"{lookup}{suffix}" for lookup in lookups for suffix in ("name", "yominame")}
    companions |= {f"{lookup}type" for lookup in lookups}
    return sorted(
        (f for f in kept if f["name"] not in companions or f["type"] in LOOKUPS),
        key=lambda f: str(f["name"]),
    )


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() == "true"


def render(tables: dict[str, dict[str, Any]], dates: dict[str, str], revision: str = "") -> str:
    """The data file: a header, then one table's facts and one column a line."""
    header: dict[str, Any] = {
        "source": (
            "Microsoft Dataverse / Dynamics 365 table (entity) reference pages, "
            "powerapps-docs and Dynamics 365 Customer Engagement developer documentation "
            "(MicrosoftDocs); facts only, no descriptions"
        ),
        "license": "CC BY 4.0 (Creative Commons Attribution 4.0 International), Microsoft",
        "source_revision": revision,
        "pages_dated": dates,
        "regenerate": (
            "python scripts/generate_standard_columns.py PAGES_DIR --revision 'REPOSITORY, COMMIT'"
        ),
    }
    lines = ["{"]
    for key, value in header.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    lines.append('  "tables": {')
    names = list(tables)
    for t_index, name in enumerate(names):
        table = dict(tables[name])
        columns = table.pop("columns")
        lines.append(f"    {json.dumps(name)}: {{")
        for key, value in table.items():
            lines.append(f"      {json.dumps(key)}: {json.dumps(value)},")
        lines.append('      "columns": [')
        for c_index, column in enumerate(columns):
            comma = "," if c_index < len(columns) - 1 else ""
            lines.append(f"        {json.dumps(column, ensure_ascii=False)}{comma}")
        lines.append("      ]")
        lines.append("    }" + ("," if t_index < len(names) - 1 else ""))
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", type=Path, help="folder holding <table>.md reference pages")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="data file to write")
    parser.add_argument(
        "--revision", default="", help="which repository and commit the pages came from"
    )
    args = parser.parse_args(argv)
    tables: dict[str, dict[str, Any]] = {}
    dates: dict[str, str] = {}
    for table in TABLES:
        page = args.pages / f"{table}.md"
        if not page.is_file():
            print(f"error: {page} is missing", file=sys.stderr)
            return 2
        text = page.read_text(encoding="utf-8")
        try:
            tables[table] = parse_page(text, table)
        except PageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        date = _DATE.search(text)
        dates[table] = date.group(1) if date else ""
    out: Path = args.out
    temporary = out.with_suffix(out.suffix + ".tmp")
    temporary.write_text(render(tables, dates, args.revision), encoding="utf-8")
    temporary.replace(out)  # never a half-written data file
    count = sum(len(t["columns"]) for t in tables.values())
    print(f"wrote {count} columns of {len(tables)} tables to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
