"""The declared components (``solution_schema/components.yaml``): checked against the tables
on load, and built into the same XML every time (so a second apply finds nothing to change)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from connector.errors import ConfigurationError
from connector.schema.component_installer import form_body
from connector.schema.components import fetch_xml, layout_xml
from connector.schema.spec import DEFAULT_SCHEMA_DIR, load_schema


def test_the_shipped_components_load_and_cover_what_the_issue_asks_for() -> None:
    components = load_schema().components
    assert components is not None and components.app is not None
    assert {v.name for v in components.views} >= {
        "My text conversations",
        "Unread conversations",
        "Awaiting acceptance",
        "Failed deliveries (7 days)",
        "Opted-out numbers",
    }
    assert {f.table for f in components.forms} == {
        "smsc_session",
        "smsc_message",
        "smsc_configuration",
        "smsc_template",
    }
    assert {r.name for r in components.roles} == {
        "SMS Connector Agent",
        "SMS Connector Manager",
        "SMS Connector Application User",
    }


def test_a_view_naming_an_unknown_column_is_refused_on_load(tmp_path: Path) -> None:
    root = tmp_path / "schema"
    shutil.copytree(DEFAULT_SCHEMA_DIR, root)
    path = root / "components.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["views"][0]["columns"].append("smsc_nosuchcolumn")
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="smsc_nosuchcolumn"):
        load_schema(root)


def test_view_and_form_xml_parse_and_are_the_same_on_every_build() -> None:
    schema = load_schema()
    assert schema.components is not None
    view = schema.components.views[1]
    fetch = fetch_xml(view, "activityid")
    assert fetch == fetch_xml(view, "activityid")
    entity = ET.fromstring(fetch).find("entity")  # noqa: S314 - our own XML
    assert entity is not None and entity.get("name") == view.table
    grid = ET.fromstring(layout_xml(view, "activityid", "subject", 10001))  # noqa: S314
    assert grid.get("object") == "10001"
    form = schema.components.forms[0]
    assert form_body(schema, form) == form_body(schema, form)
    xml = ET.fromstring(str(form_body(schema, form)["formxml"]))  # noqa: S314
    subgrid = next(c for c in xml.iter("control") if c.get("indicationOfSubgrid"))
    assert subgrid.findtext("parameters/RelationshipName") == "smsc_session_message_sessionid"
