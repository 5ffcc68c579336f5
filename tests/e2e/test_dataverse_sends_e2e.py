"""Sends that start in Dynamics, as an admin and a flow meet them: ``connector dataverse
register-webhook`` and ``connector serve`` as subprocesses, rows created through the emulator's
Web API (as a flow would), the emulator posting its webhook, the Twilio simulator counting
what went out.

Covers the issue's done-when list: register-webhook against the emulator, then a queued
outbound row regarding a contact goes out once and the row shows delivered with the provider
id (updated in place); the webhook delivered twice more and the poll all together still send
it once; a template row is rendered; a row for an opted-out number ends failed with the
consent category; a row whose record has no phone ends failed "no phone number"; with the
webhook unregistered the poll picks a row up; register-webhook twice changes nothing the
second time (changing requests counted at the emulator); local mode registers its webhook by
itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import select

from connector.bootstrap.local_mode import DEMO_CUSTOMER, seed_demo
from connector.bootstrap.server_thread import ServerThread
from connector.crm.outbound_rows import FAILURE_OPTIONS, STATUS_OPTIONS
from connector.dataverse.client import DataverseClient
from connector.domain.status import FailureCategory, MessageStatus
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.twilio.engine import SimulatorEngine
from connector.state.crm_sends import poll_table
from connector.state.db import StateStore
from tests.e2e.conftest import PUBLIC, Emulator, connector_env, run_cli
from tests.e2e.test_inbound_e2e import ALICE_ID, stop, wait_until
from tests.e2e.test_inbound_e2e import serve as local_serve
from tests.e2e.test_outbound_e2e import (
    KEY,
    TEMPLATE_REMINDER,
    _free_port,
    outbound_env,
    serve_on,
    simulator,
)
from tests.integration.test_installer_emulator import changing_requests, make_client

__all__ = ["simulator"]  # the fixture, used by name
DELIVERED = STATUS_OPTIONS[MessageStatus.DELIVERED]
FAILED = STATUS_OPTIONS[MessageStatus.FAILED]
OUTBOUND = 105710001
QUEUED = STATUS_OPTIONS[MessageStatus.QUEUED]


@pytest.fixture
def dataverse(tmp_path: Path) -> Iterator[tuple[Emulator, Any]]:
    """The emulator (seeded with the demo data) and its core (to see its webhook posts)."""
    app = create_emulator_app(db_path=str(tmp_path / "dataverse.db"))
    server = ServerThread(app).start()
    emulator = Emulator(tmp_path / "dataverse.db", port=server.port, server=server)
    client = make_client(emulator.url)
    seed_demo(client, PUBLIC)
    client.api.close()
    yield emulator, app.state.emulator
    server.stop()


@pytest.fixture
def dv(dataverse: tuple[Emulator, Any]) -> Iterator[DataverseClient]:
    client = make_client(dataverse[0].url)
    yield client
    client.api.close()


def create_row(client: DataverseClient, regarding: tuple[str, str], **columns: Any) -> str:
    """An outbound queued SMS row, as a flow creates it."""
    table, record_id = regarding
    body = {
        "subject": "From a flow",
        "smsc_direction": OUTBOUND,
        "smsc_status": QUEUED,
        f"regardingobjectid_{table}_smsc_message@odata.bind": f"/{table}s({record_id})",
        **columns,
    }
    return client.create("smsc_messages", body)


def row(client: DataverseClient, row_id: str) -> dict[str, Any]:
    return client.retrieve("smsc_messages", row_id)


def sent_bodies(engine: SimulatorEngine) -> list[str]:
    return [str(m.get("body")) for m in engine.snapshot()["messages"]]


def last_poll(env: dict[str, str]) -> float:
    store = StateStore.from_url(env["CONNECTOR_STATE__URL"])
    try:
        with store.engine.connect() as conn:
            value = conn.execute(select(poll_table.c.ran_at)).scalar()
        return float(value or 0.0)
    finally:
        store.close()


def dataverse_env(tmp_path: Path, emulator: Emulator, simulator_url: str, port: int) -> dict[
    str, str
]:  # fmt: skip
    return outbound_env(tmp_path, emulator, simulator_url, port) | {
        "CONNECTOR_SECRET_KEYS": Fernet.generate_key().decode(),
        "CONNECTOR_WORKER__DATAVERSE_POLL_SECONDS": "2",
    }


def test_rows_created_in_dataverse_go_out_once_through_the_registered_webhook(
    tmp_path: Path,
    dataverse: tuple[Emulator, Any],
    dv: DataverseClient,
    simulator: tuple[SimulatorEngine, str],
) -> None:
    emulator, core = dataverse
    engine, simulator_url = simulator
    port = _free_port()
    env = dataverse_env(tmp_path, emulator, simulator_url, port)

    first = run_cli("dataverse", "register-webhook", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "created service endpoint" in first.stdout
    before = changing_requests(emulator.url)
    again = run_cli("dataverse", "register-webhook", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing to do" in again.stdout
    assert changing_requests(emulator.url) == before

    process, base = serve_on(port, tmp_path, env)
    try:
        row_id = create_row(dv, ("contact", ALICE_ID), smsc_body="Your order is ready")
        wait_until(lambda: row(dv, row_id)["smsc_status"] == DELIVERED, timeout=60)
        done = row(dv, row_id)
        assert done["smsc_providermessageid"] and done["smsc_to"] == DEMO_CUSTOMER
        assert done["_smsc_sessionid_value"]  # joined the conversation of that number
        assert done["subject"] == "From a flow"  # the maker's subject and owner are kept
        assert sent_bodies(engine).count("Your order is ready") == 1
        mine = list(dv.query("smsc_messages", filter="smsc_body eq 'Your order is ready'"))
        assert [m["activityid"] for m in mine] == [row_id]  # updated in place

        # Dataverse delivers twice more, and the poll runs: still one message.
        assert core.webhooks.wait_idle()
        posted = next(d for d in core.webhooks.deliveries if d.row_id == row_id)
        for _ in range(2):
            again_answer = requests.post(
                posted.url, data=posted.body, headers=posted.headers, timeout=10
            )
            assert again_answer.status_code == 202
        polled_after = last_poll(env)
        wait_until(lambda: last_poll(env) > polled_after, timeout=60)
        assert sent_bodies(engine).count("Your order is ready") == 1

        # A template row is rendered against its regarding record.
        templated = create_row(
            dv,
            ("contact", ALICE_ID),
            **{"smsc_TemplateId@odata.bind": f"/smsc_templates({TEMPLATE_REMINDER})"},
        )
        wait_until(lambda: row(dv, templated)["smsc_status"] == DELIVERED, timeout=60)
        assert "Hi Alice, see you tomorrow." in sent_bodies(engine)
        assert row(dv, templated)["smsc_body"] == "Hi Alice, see you tomorrow."

        refusals_end_failed(dv, base, engine)

        # A forged delivery is refused and stores nothing.
        forged = requests.post(
            f"{base}/webhooks/dataverse",
            data=posted.body,
            headers={**posted.headers, "x-smsc-webhook-key": "wrong"},
            timeout=10,
        )
        assert forged.status_code == 401
    finally:
        stop(process)

    removed = run_cli("dataverse", "register-webhook", "--remove", env=env, cwd=tmp_path)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert list(dv.query("serviceendpoints")) == []


def refusals_end_failed(dv: DataverseClient, base: str, engine: SimulatorEngine) -> None:
    """A record without a phone, and an opted-out number: failed rows, nothing sent."""
    # A record without a phone: failed, "no phone number", nothing sent.
    nobody = dv.create("contacts", {"firstname": "No", "lastname": "Phone"})
    no_phone = create_row(dv, ("contact", nobody), smsc_body="Hello nobody")
    wait_until(lambda: row(dv, no_phone)["smsc_status"] == FAILED, timeout=60)
    assert "no phone number" in row(dv, no_phone)["smsc_providererrortext"]

    # An opted-out number: failed with the consent category, nothing sent.
    configuration = next(iter(dv.query("smsc_configurations")))["smsc_configurationid"]
    opted = requests.post(
        f"{base}/api/v1/consent/opt-out",
        json={"phone": DEMO_CUSTOMER, "configuration_id": configuration, "source": "call"},
        headers={"X-API-Key": KEY},
        timeout=10,
    )
    assert opted.status_code == 200, opted.text
    refused = create_row(dv, ("contact", ALICE_ID), smsc_body="A promotion")
    wait_until(lambda: row(dv, refused)["smsc_status"] == FAILED, timeout=60)
    assert row(dv, refused)["smsc_failurecategory"] == FAILURE_OPTIONS[FailureCategory.OPTED_OUT]
    assert "A promotion" not in sent_bodies(engine)
    assert "Hello nobody" not in sent_bodies(engine)


def test_a_row_is_sent_by_the_poll_when_no_webhook_is_registered(
    tmp_path: Path,
    dataverse: tuple[Emulator, Any],
    dv: DataverseClient,
    simulator: tuple[SimulatorEngine, str],
) -> None:
    emulator, core = dataverse
    engine, simulator_url = simulator
    port = _free_port()
    env = dataverse_env(tmp_path, emulator, simulator_url, port)
    process, _ = serve_on(port, tmp_path, env)
    try:
        row_id = create_row(dv, ("contact", ALICE_ID), smsc_body="Picked up by the poll")
        wait_until(lambda: row(dv, row_id)["smsc_status"] == DELIVERED, timeout=60)
        assert sent_bodies(engine).count("Picked up by the poll") == 1
        assert core.webhooks.deliveries == []
        assert row(dv, row_id)["smsc_providermessageid"]
    finally:
        stop(process)


def test_local_mode_registers_its_webhook_and_sends_rows_created_in_the_emulator(
    tmp_path: Path,
) -> None:
    env = connector_env(tmp_path, {"CONNECTOR_WORKER__DATAVERSE_POLL_SECONDS": "3600"})
    process, _url = local_serve(tmp_path, env)
    try:
        described = json.loads((tmp_path / "state.local.json").read_text(encoding="utf-8"))
        client = make_client(described["dataverse_url"])
        try:
            assert len(list(client.query("serviceendpoints"))) == 1
            row_id = create_row(client, ("contact", ALICE_ID), smsc_body="From a local flow")
            wait_until(lambda: row(client, row_id)["smsc_status"] == DELIVERED, timeout=60)
        finally:
            client.api.close()
    finally:
        stop(process)
