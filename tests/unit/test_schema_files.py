"""Every file of solution_schema/ is valid, and the mapping module agrees with it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.crm import tables
from connector.errors import ConfigurationError
from connector.schema.spec import (
    DEFAULT_SCHEMA_DIR,
    STANDARD_TABLES,
    Schema,
    load_schema,
    relationship_name,
)

TABLE_FILES = sorted((DEFAULT_SCHEMA_DIR / "tables").glob("*.yaml"))


@pytest.fixture(scope="module")
def schema() -> Schema:
    return load_schema()


def test_schema_declares_the_ten_tables_of_the_product(schema: Schema) -> None:
    assert {t.logical_name for t in schema.tables} == {t.logical_name for t in tables.ALL_TABLES}
    assert {t.logical_name for t in schema.tables if t.activity} == {"smsc_session", "smsc_message"}


@pytest.mark.parametrize("path", TABLE_FILES, ids=lambda p: p.stem)
def test_table_file_names_carry_prefix_and_references_resolve(schema: Schema, path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    table = schema.table(data["schema_name"].lower())
    assert table.logical_name == f"smsc_{path.stem}"
    for column in table.columns:
        assert column.logical_name.startswith("smsc_"), column.logical_name
    for key in table.keys:
        assert key.schema_name.startswith("smsc_")
        assert set(key.columns) <= table.column_names()
    known = STANDARD_TABLES | {t.logical_name for t in schema.tables}
    for lookup in table.lookups:
        assert lookup.target in known
        assert relationship_name(table, lookup).startswith("smsc_")
        assert len(relationship_name(table, lookup)) <= 100
    low = schema.publisher.option_value_prefix * 10000
    for column in table.columns:
        assert all(low <= o.value < low + 10000 for o in column.options)


def test_required_alternate_keys_are_declared(schema: Schema) -> None:
    def keys(name: str) -> set[tuple[str, ...]]:
        return {k.columns for k in schema.table(name).keys}

    assert (tables.MESSAGE_PROVIDER_ID,) in keys("smsc_message")
    assert tables.CONSENT_KEY in keys("smsc_consent")
    assert tables.RECORD_TYPE_KEY in keys("smsc_recordtype")
    assert tables.CONFIGURATION_SENDER_KEY in keys("smsc_configuration")
    assert tables.KEYWORD_KEY in keys("smsc_keyword")


def test_mapping_module_names_exist_in_the_schema(schema: Schema) -> None:
    for table in tables.ALL_TABLES:
        declared = schema.table(table.logical_name)
        assert table.name_column == declared.primary.logical_name
        assert table.id_column == ("activityid" if declared.activity else f"{table.logical_name}id")
    rows: list[tuple[tables.Table, Callable[[Any], dict[str, Any]]]] = [
        (tables.CONFIGURATION, tables.configuration_to_row),
        (tables.RECORD_TYPE, tables.record_type_to_row),
        (tables.KEYWORD, tables.keyword_to_row),
        (tables.TEMPLATE, tables.template_to_row),
    ]
    from tests.unit.test_schema_tables import SAMPLES

    for table, to_row in rows:
        declared = schema.table(table.logical_name)
        by_nav = {c.schema_name: c for c in declared.lookups}
        for name in to_row(SAMPLES[table.logical_name]):
            if name == "ownerid@odata.bind":
                assert declared.ownership == "UserOwned"
            elif name.endswith("@odata.bind"):
                assert name.removesuffix("@odata.bind") in by_nav, name
            else:
                assert name in declared.column_names(), name


def _assert_declared(declared: Any, row: dict[str, Any]) -> None:
    by_nav = {c.schema_name: c for c in declared.lookups}
    for name in row:
        if name.endswith("@odata.bind"):
            assert name.removesuffix("@odata.bind") in by_nav, name
        else:
            assert name in declared.column_names(), name


def test_consent_rows_keys_and_message_marks_use_declared_names(schema: Schema) -> None:
    from tests.unit.test_schema_tables import _change

    change = _change()
    consent = schema.table(tables.CONSENT.logical_name)
    _assert_declared(consent, tables.consent_to_row(change))
    history = schema.table(tables.CONSENT_CHANGE.logical_name)
    _assert_declared(history, tables.consent_change_to_row(change, "/x(1)"))
    assert {c.target for c in history.lookups} == {"smsc_consent", "smsc_configuration"}
    key = tables.consent_key(change.phone, change.configuration_id, change.purpose)
    assert tuple(n.lstrip("_").removesuffix("_value") for n in key) == tables.CONSENT_KEY
    assert set(tables.CONSENT_COLUMNS) - {"modifiedon", "versionnumber"} <= {
        consent.primary.logical_name,
        f"{consent.logical_name}id",
        f"_{tables.CONFIGURATION_LOOKUP}_value",
        *consent.column_names(),
    }
    marks = {
        tables.MESSAGE_AUTOMATIC,
        tables.MESSAGE_KEYWORD,
        tables.MESSAGE_NEEDS_REVIEW,
        tables.MESSAGE_REVIEW_REASON,
    }
    assert marks <= schema.table(tables.MESSAGE.logical_name).column_names()


def test_mapped_option_values_match_the_declared_choices(schema: Schema) -> None:
    for (table, column), options in tables.MAPPED_CHOICES.items():
        declared = next(c for c in schema.table(table).columns if c.logical_name == column)
        assert sorted(options.values()) == sorted(o.value for o in declared.options)


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "schema"
    shutil.copytree(DEFAULT_SCHEMA_DIR, target, ignore=shutil.ignore_patterns("*.md"))
    return target


def _edit(path: Path, change: dict[str, object]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(change)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def test_rejects_a_lookup_to_a_table_that_does_not_exist(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    path = root / "tables" / "keyword.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["columns"].append(
        {"schema_name": "smsc_GhostId", "type": "lookup", "display_name": "G", "target": "ghost"}
    )
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="unknown table ghost"):
        load_schema(root)


def test_rejects_a_key_over_a_missing_column_and_a_name_without_prefix(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(
        root / "tables" / "consent.yaml",
        {"keys": [{"schema_name": "consent_key", "display_name": "K", "columns": ["smsc_nope"]}]},
    )
    with pytest.raises(ConfigurationError) as caught:
        load_schema(root)
    assert "unknown columns ['smsc_nope']" in caught.value.message
    assert "consent_key lacks the prefix smsc_" in caught.value.message


def test_rejects_an_activity_table_owned_by_the_organization(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root / "tables" / "session.yaml", {"ownership": "OrganizationOwned"})
    with pytest.raises(ConfigurationError, match=r"session.yaml: .*user- or team-owned"):
        load_schema(root)


def test_rejects_a_text_column_without_a_length_and_unknown_fields(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    path = root / "tables" / "template.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["columns"][0].pop("max_length")
    data["colour"] = "blue"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_schema(root)
    assert "needs max_length" in caught.value.message
    assert "colour" in caught.value.message


def test_rejects_a_reserved_prefix(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    data = yaml.safe_load((root / "solution.yaml").read_text(encoding="utf-8"))
    data["publisher"]["prefix"] = "mscrmx"
    (root / "solution.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="mscrm"):
        load_schema(root)


def test_every_smsc_name_in_the_code_is_declared_in_the_schema(schema: Schema) -> None:
    """Modules that spell an ``smsc_`` name (writers, exports) must match what is installed."""
    known: set[str] = {t.entity_set for t in tables.ALL_TABLES}
    for table in schema.tables:
        known |= {table.logical_name, table.primary.logical_name, f"{table.logical_name}id"}
        known |= {c.logical_name for c in table.columns}
        known |= {k.schema_name.lower() for k in table.keys}
        known |= {relationship_name(table, c) for c in table.lookups}
    unknown: dict[str, set[str]] = {}
    package = Path(tables.__file__).resolve().parents[1]
    for path in package.rglob("*.py"):
        for match in re.finditer(r"_?smsc_[A-Za-z0-9_]*", path.read_text(encoding="utf-8")):
            name = match.group(0).lower().lstrip("_").removesuffix("_value")
            if name not in known and name != "smsc_":
                unknown.setdefault(path.name, set()).add(match.group(0))
    assert unknown == {}
