"""The schema plan: declared vs live, in order, never dropping anything (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connector.schema.payloads import (
    column_payload,
    relationship_payload,
    table_payload,
)
from connector.schema.plan import LiveColumn, LiveState, LiveTable, plan
from connector.schema.spec import Schema, load_schema, relationship_name


@pytest.fixture(scope="module")
def schema() -> Schema:
    return load_schema()


def full_live(schema: Schema, key_status: str = "Active") -> LiveState:
    """A live state holding exactly what the schema declares."""
    tables = {}
    for table in schema.tables:
        columns = {table.primary.logical_name: LiveColumn(table.primary.max_length)}
        for column in table.columns:
            columns[column.logical_name] = LiveColumn(
                column.max_length, frozenset(o.value for o in column.options)
            )
        keys = {k.schema_name: key_status for k in table.keys}
        tables[table.logical_name] = LiveTable(columns, keys)
    relationships = {relationship_name(t, c) for t in schema.tables for c in t.lookups}
    return LiveState("pub-id", "sol-id", tables, frozenset(relationships))


def test_empty_environment_creates_everything_in_dependency_order(schema: Schema) -> None:
    steps = plan(schema, LiveState()).steps
    kinds = [s.kind for s in steps if s.action == "create"]
    assert kinds[:2] == ["publisher", "solution"]
    order = ["publisher", "solution", "table", "column", "relationship", "key"]
    assert kinds == sorted(kinds, key=order.index)
    assert sum(k == "table" for k in kinds) == 10
    assert sum(k == "column" for k in kinds) == sum(len(t.attributes) for t in schema.tables)
    assert sum(k == "relationship" for k in kinds) == sum(len(t.lookups) for t in schema.tables)
    assert sum(s.action == "wait" for s in steps) == sum(len(t.keys) for t in schema.tables)
    assert steps[-1].action == "publish"
    assert all(s.method in ("POST", "GET") for s in steps)


def test_matching_environment_needs_nothing(schema: Schema) -> None:
    result = plan(schema, full_live(schema))
    assert result.empty
    assert result.notes == ()


def test_keys_still_building_are_waited_for_then_published(schema: Schema) -> None:
    result = plan(schema, full_live(schema, key_status="Pending"))
    assert [s.action for s in result.changes] == ["publish"]
    assert {s.action for s in result.steps} == {"wait", "publish"}
    published = (result.steps[-1].body or {})["ParameterXml"]
    assert "<entity>smsc_consent</entity>" in published
    assert "<entity>smsc_template</entity>" not in published


def test_failed_key_is_reported_not_recreated(schema: Schema) -> None:
    live = full_live(schema)
    message = replace(
        live.tables["smsc_message"], keys={"smsc_message_providermessageid": "Failed"}
    )
    result = plan(schema, replace(live, tables={**live.tables, "smsc_message": message}))
    assert result.empty
    assert "smsc_message_providermessageid failed to build" in result.notes[0]


def test_half_installed_environment_gets_only_what_is_missing(schema: Schema) -> None:
    live = full_live(schema)
    consent = live.tables["smsc_consent"]
    columns = {k: v for k, v in consent.columns.items() if k != "smsc_method"}
    tables = {k: v for k, v in live.tables.items() if k != "smsc_errorlog"}
    tables["smsc_consent"] = LiveTable(columns, {})
    relationships = live.relationships - {"smsc_message_errorlog_messageid"}
    half = replace(live, solution_id=None, tables=tables, relationships=relationships)
    changes = [(s.kind, s.name) for s in plan(schema, half).changes]
    assert ("solution", "SmsConnector") in changes
    assert ("table", "smsc_errorlog") in changes
    assert ("column", "smsc_method") in changes
    assert ("relationship", "smsc_message_errorlog_messageid") in changes
    assert ("key", "smsc_consent_phone_configuration_purpose") in changes
    assert changes[-1] == ("xml", "PublishXml")
    published = plan(schema, half).changes[-1].body or {}
    assert "<entity>smsc_consent</entity>" in published["ParameterXml"]
    assert "<entity>smsc_keyword</entity>" not in published["ParameterXml"]


def test_drift_widens_and_adds_options_but_never_drops(schema: Schema) -> None:
    live = full_live(schema)
    config = live.tables["smsc_configuration"]
    columns = dict(config.columns)
    columns["smsc_accountid"] = LiveColumn(50)  # declared 100: widen
    columns["smsc_callbackurl"] = LiveColumn(900)  # declared 500: keep the longer one
    columns["smsc_provider"] = LiveColumn(None, frozenset({105710000, 105710009}))
    columns["smsc_legacyflag"] = LiveColumn()
    tables = {**live.tables, "smsc_configuration": LiveTable(columns, config.keys)}
    result = plan(schema, replace(live, tables=tables))
    changes = {(s.action, s.kind, s.name): s for s in result.changes}
    widen = changes["update", "column", "smsc_accountid"]
    assert widen.method == "PUT" and (widen.body or {})["MaxLength"] == 100
    assert ("create", "option", "smsc_provider=105710001") in changes
    assert ("create", "option", "smsc_provider=105710002") in changes
    assert all(s.method in ("POST", "PUT") for s in result.changes)
    notes = "\n".join(result.notes)
    assert "smsc_callbackurl: live max length 900 > 500, kept" in notes
    assert "smsc_provider: live options [105710009] not declared, kept" in notes
    assert "smsc_legacyflag: live column not declared, kept" in notes


def test_activity_table_payload_has_the_required_properties(schema: Schema) -> None:
    body = table_payload(schema.table("smsc_message"), 1033)
    assert body["IsActivity"] is True and body["HasNotes"] is True
    assert body["IsAvailableOffline"] is True and body["IsMailMergeEnabled"] is False
    assert body["OwnershipType"] == "UserOwned" and body["HasActivities"] is False
    assert body["Attributes"][0]["SchemaName"] == "Subject"
    standard = table_payload(schema.table("smsc_configuration"), 1033)
    assert standard["IsActivity"] is False and "IsAvailableOffline" not in standard


def test_lookup_to_an_activity_references_activityid_with_fixed_navigation(
    schema: Schema,
) -> None:
    message = schema.table("smsc_message")
    session = next(c for c in message.lookups if c.target == "smsc_session")
    body = relationship_payload(schema, message, session)
    assert body["ReferencedAttribute"] == "activityid"
    assert body["ReferencingEntityNavigationPropertyName"] == "smsc_SessionId"
    config = next(c for c in message.lookups if c.target == "smsc_configuration")
    assert relationship_payload(schema, message, config)["ReferencedAttribute"] == (
        "smsc_configurationid"
    )


def test_choice_column_payload_carries_stable_option_values(schema: Schema) -> None:
    provider = next(
        c for c in schema.table("smsc_configuration").columns if c.logical_name == "smsc_provider"
    )
    body = column_payload(provider, 1033)
    assert body["@odata.type"] == "Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
    assert [o["Value"] for o in body["OptionSet"]["Options"]] == [105710000, 105710001, 105710002]
    assert body["RequiredLevel"]["Value"] == "ApplicationRequired"
