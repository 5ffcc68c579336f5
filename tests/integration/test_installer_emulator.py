"""The schema installer over real HTTP against the emulator's metadata API on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from connector.bootstrap.server_thread import running
from connector.crm import tables
from connector.dataverse.client import DataverseClient
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.router import Emulator
from connector.errors import DataverseError, DataverseUnavailableError
from connector.schema.installer import Installer
from connector.schema.plan import COMPONENT_KINDS
from connector.schema.spec import DEFAULT_SCHEMA_DIR, Schema, load_schema
from connector.testing.emulator_client import emulator_client

CHANGING = ("POST", "PATCH", "PUT", "DELETE")


def make_client(url: str) -> DataverseClient:
    return emulator_client(url, attempts=2)


def changing_requests(url: str) -> dict[str, int]:
    by_method = requests.get(f"{url}/_emulator/stats", timeout=10).json()["by_method"]
    return {method: int(by_method.get(method, 0)) for method in CHANGING}


@pytest.fixture(scope="module")
def schema() -> Schema:
    return load_schema()


@pytest.fixture
def client(emulator_url: str) -> Iterator[DataverseClient]:
    dv = make_client(emulator_url)
    yield dv
    dv.api.close()


def installer(client: DataverseClient, schema: Schema) -> Installer:
    return Installer(client, schema, poll_interval=0.02, key_timeout=30)


def entity(client: DataverseClient, name: str) -> dict[str, object]:
    answer = client.request("GET", f"EntityDefinitions(LogicalName='{name}')")
    return dict(answer.json())


def test_apply_on_empty_environment_creates_everything_then_plan_is_empty(
    client: DataverseClient, schema: Schema
) -> None:
    report = installer(client, schema).apply()
    assert report.complete
    assert len(report.done) == len(report.plan.changes)
    assert installer(client, schema).plan().empty
    message = entity(client, "smsc_message")
    assert message["IsActivity"] is True
    assert message["PrimaryIdAttribute"] == "activityid"
    assert entity(client, "smsc_configuration")["EntitySetName"] == "smsc_configurations"
    publishers = list(client.query("publishers", select=["customizationprefix"]))
    assert any(p.get("customizationprefix") == "smsc" for p in publishers)
    assert [s["uniquename"] for s in client.query("solutions", select=["uniquename"])].count(
        "SmsConnector"
    ) == 1


def test_installed_tables_take_rows_lookups_and_alternate_keys(installed: DataverseClient) -> None:
    client = installed
    config_id = client.create(
        "smsc_configurations",
        {"smsc_name": "Main", "smsc_provider": 105710000, "smsc_senderkey": "14155550100"},
    )
    by_key = client.retrieve("smsc_configurations", {"smsc_senderkey": "14155550100"})
    assert by_key["smsc_configurationid"] == config_id
    session_id = client.create(
        "smsc_sessions",
        {
            "subject": "chat",
            "smsc_ConfigurationId@odata.bind": f"/smsc_configurations({config_id})",
        },
    )
    client.upsert(
        "smsc_messages",
        {"smsc_providermessageid": "SM123"},
        {
            "subject": "hi",
            "smsc_direction": 105710000,
            "smsc_SessionId@odata.bind": f"/smsc_sessions({session_id})",
        },
    )
    row = client.retrieve("smsc_messages", {"smsc_providermessageid": "SM123"})
    assert row["_smsc_sessionid_value"] == session_id


def test_second_apply_sends_no_changing_request(
    installed: DataverseClient, installed_emulator_url: str, schema: Schema
) -> None:
    url = installed_emulator_url
    before = changing_requests(url)
    report = installer(installed, schema).apply()
    assert report.complete and report.done == []
    assert changing_requests(url) == before


def test_interrupted_apply_is_finished_by_the_next_run(
    client: DataverseClient, schema: Schema, emulator_url: str
) -> None:
    first = installer(client, schema).apply(max_steps=37)
    assert not first.complete and len(first.done) == 37
    remaining = installer(client, schema).plan()
    assert remaining.changes and len(remaining.changes) < len(first.plan.changes)
    second = installer(client, schema).apply()
    assert second.complete
    assert len(first.done) + len(second.done) == len(first.plan.changes)
    assert installer(client, schema).plan().empty
    before = changing_requests(emulator_url)
    installer(client, schema).apply()
    assert changing_requests(emulator_url) == before


def test_apply_waits_for_keys_that_build_slowly(schema: Schema) -> None:
    core = Emulator(key_delay=0.3)
    with running(create_emulator_app(emulator=core)) as url:
        client = make_client(url)
        try:
            report = installer(client, schema).apply()
            assert report.complete
            keys = client.request(
                "GET", "EntityDefinitions(LogicalName='smsc_consent')/Keys"
            ).json()["value"]
            assert [k["EntityKeyIndexStatus"] for k in keys] == ["Active"]
        finally:
            client.api.close()


class FailNthPost:
    """An ASGI wrapper in front of the emulator answering its Nth Web API POST with a 500."""

    def __init__(self, app: Any, n: int) -> None:
        self.app = app
        self.n = n
        self.posts = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and "/api/" in scope["path"]:
            self.posts += 1
            if self.posts == self.n:
                body = b'{"error":{"code":"0x80040216","message":"An unexpected error occurred."}}'
                headers = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def test_apply_failing_half_way_is_finished_by_the_next_run(schema: Schema) -> None:
    with running(FailNthPost(create_emulator_app(), n=60)) as url:
        client = make_client(url)
        try:
            with pytest.raises(DataverseError):
                installer(client, schema).apply()
            remaining = installer(client, schema).plan()
            assert remaining.changes
            assert not any(s.kind in ("publisher", "solution") for s in remaining.changes)
            assert installer(client, schema).apply().complete
            assert installer(client, schema).plan().empty
        finally:
            client.api.close()


def test_mapping_module_names_match_what_dataverse_derived(installed: DataverseClient) -> None:
    client = installed
    for table in tables.ALL_TABLES:
        derived = entity(client, table.logical_name)
        assert derived["EntitySetName"] == table.entity_set
        assert derived["PrimaryIdAttribute"] == table.id_column
        assert derived["PrimaryNameAttribute"] == table.name_column


def _older_schema(tmp_path: Path) -> Schema:
    """The shipped schema as an older release had it: fewer columns, options and keys."""
    root = tmp_path / "v0"
    ignored = shutil.ignore_patterns("*.md", "components.yaml")  # an older release had none
    shutil.copytree(DEFAULT_SCHEMA_DIR, root, ignore=ignored)
    path = root / "tables" / "configuration.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["columns"] = [c for c in data["columns"] if c["schema_name"] != "smsc_QuietHours"]
    for column in data["columns"]:
        if column["schema_name"] == "smsc_AccountId":
            column["max_length"] = 50
        if column["schema_name"] == "smsc_Provider":
            column["options"] = column["options"][:2]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    consent = root / "tables" / "consent.yaml"
    data = yaml.safe_load(consent.read_text(encoding="utf-8"))
    data.pop("keys")
    consent.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_schema(root)


def test_upgrade_adds_columns_options_keys_and_widens_without_dropping(
    client: DataverseClient, schema: Schema, tmp_path: Path
) -> None:
    assert installer(client, _older_schema(tmp_path)).apply().complete
    upgrade = installer(client, schema).plan()
    components = [s for s in upgrade.changes if s.kind in COMPONENT_KINDS]
    assert components and {s.action for s in components} == {"create"}  # new in this release
    assert {(s.action, s.kind, s.name) for s in upgrade.changes if s not in components} == {
        ("create", "column", "smsc_quiethours"),
        ("update", "column", "smsc_accountid"),
        ("create", "option", "smsc_provider=105710002"),
        ("create", "key", "smsc_consent_phone_configuration_purpose"),
        ("publish", "xml", "PublishXml"),
    }
    assert installer(client, schema).apply().complete
    assert installer(client, schema).plan().empty
    entity_path = "EntityDefinitions(LogicalName='smsc_configuration')/Attributes"
    account = client.request("GET", f"{entity_path}(LogicalName='smsc_accountid')").json()
    assert account["MaxLength"] == 100
    downgrade = installer(client, _older_schema(tmp_path / "again")).plan()
    assert not downgrade.changes
    assert any("smsc_quiethours: live column not declared, kept" in n for n in downgrade.notes)


def test_keys_timing_out_fail_the_run_and_the_next_run_waits_and_publishes(
    schema: Schema,
) -> None:
    # Keys that would take an hour: still building whenever the test looks, however slow the
    # machine; the test then lets them finish instead of waiting out a short delay.
    core = Emulator(key_delay=3600)
    with running(create_emulator_app(emulator=core)) as url:
        client = make_client(url)
        try:
            impatient = Installer(client, schema, poll_interval=0.02, key_timeout=0.1)
            with pytest.raises(DataverseUnavailableError, match="still building"):
                impatient.apply()
            pending = installer(client, schema).plan()
            assert [s.action for s in pending.changes] == ["publish"]
            assert any(s.action == "wait" for s in pending.steps)

            def keys_finish_while_waiting(seconds: float) -> None:
                for table in core.schema.entities.values():
                    for key in table.keys:
                        key.active_after = 0.0  # due: the next request builds the index

            patient = Installer(client, schema, poll_interval=0.02, sleep=keys_finish_while_waiting)
            finished = patient.apply()
            assert finished.complete
            assert [s.kind for s in finished.done] == ["xml"]
            assert installer(client, schema).plan().empty
        finally:
            client.api.close()
