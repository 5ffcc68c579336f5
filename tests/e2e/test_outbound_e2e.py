"""Outbound as a user meets it: `connector serve` / `connector worker` as subprocesses, the
send API over HTTP, the Twilio simulator posting signed status callbacks, results read back
from the Dataverse emulator and counted at the simulator.

Covers the issue's done-when list: a send by ``regarding`` is delivered in Dataverse on that
contact's session; the customer's reply lands on the record the send was about even when
another record with the number wins by type order; shuffled and duplicated callbacks end at
the highest status; an invalid number ends ``failed`` with category and reason; the same
``Idempotency-Key`` three times sends once; a template with a missing value sends nothing;
and a worker killed with SIGKILL mid-send sends each message exactly once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from connector.bootstrap.local_mode import DEMO_CUSTOMER, DEMO_SENDER
from connector.bootstrap.server_thread import ServerThread
from connector.crm.outbound_rows import STATUS_OPTIONS
from connector.dataverse.client import DataverseClient
from connector.domain.status import MessageStatus
from connector.emulators.twilio.app import create_simulator_app
from connector.emulators.twilio.engine import SimulatorEngine, SimulatorOptions
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID
from connector.testing.signing import inbound_fields, signed_form
from tests.e2e.conftest import Emulator
from tests.e2e.test_inbound_e2e import ALICE_ID, TOKEN, service_env, start_cli, stop, wait_until

KEY = "e2e-api-key"
TEMPLATE_REMINDER = "00000000-0000-4000-8000-000000000041"


@pytest.fixture
def simulator() -> Iterator[tuple[SimulatorEngine, str]]:
    engine = SimulatorEngine(SimulatorOptions(account_sid=LOCAL_ACCOUNT_SID, auth_token=TOKEN))
    server = ServerThread(create_simulator_app(engine)).start()
    yield engine, server.url
    server.stop()
    engine.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def outbound_env(
    tmp_path: Path, emulator: Emulator, simulator_url: str, port: int
) -> dict[str, str]:
    return service_env(tmp_path, emulator) | {
        "CONNECTOR_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "CONNECTOR_TWILIO__ACCOUNT_SID": LOCAL_ACCOUNT_SID,
        "CONNECTOR_TWILIO__API_BASE_URL": simulator_url,
        "CONNECTOR_API__KEYS": f'["{KEY}"]',
        "CONNECTOR_WORKER__OUTBOUND_LINGER_SECONDS": "0.3",
    }


def serve_on(port: int, tmp_path: Path, env: dict[str, str], *extra: str) -> tuple[
    subprocess.Popen[str], str
]:  # fmt: skip
    process, _ = start_cli(
        ["serve", "--port", str(port), *extra], env, tmp_path, r"listening on http"
    )
    return process, f"http://127.0.0.1:{port}"


def send(base: str, body: dict[str, Any], key: str | None = None) -> requests.Response:
    headers = {"X-API-Key": KEY}
    if key:
        headers["Idempotency-Key"] = key
    return requests.post(f"{base}/api/v1/messages", json=body, headers=headers, timeout=10)


def status_of(base: str, message_id: str) -> dict[str, Any]:
    answer = requests.get(
        f"{base}/api/v1/messages/{message_id}", headers={"X-API-Key": KEY}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def dataverse_status(client: DataverseClient, message_id: str) -> int | None:
    try:
        row = client.retrieve("smsc_messages", message_id)
    except Exception:
        return None
    value = row.get("smsc_status")
    return None if value is None else int(value)


def test_send_by_regarding_is_delivered_on_the_contact_and_the_reply_follows_the_record(
    tmp_path: Path,
    emulator: Emulator,
    client: DataverseClient,
    simulator: tuple[SimulatorEngine, str],
) -> None:
    engine, simulator_url = simulator
    port = _free_port()
    env = outbound_env(tmp_path, emulator, simulator_url, port)
    process, base = serve_on(port, tmp_path, env)
    try:
        answer = send(
            base, {"regarding": {"table": "contact", "id": ALICE_ID}, "body": "Hi \u2019"}
        )
        assert answer.status_code == 202, answer.text
        queued = answer.json()
        assert queued["status"] == "queued" and queued["to"] == DEMO_CUSTOMER
        assert queued["encoding"] == "UCS-2" and queued["ucs2_characters"] == ["\u2019"]
        message_id = queued["id"]
        delivered = STATUS_OPTIONS[MessageStatus.DELIVERED]
        wait_until(lambda: dataverse_status(client, message_id) == delivered, timeout=60)
        row = client.retrieve("smsc_messages", message_id)
        assert row["_regardingobjectid_value"] == ALICE_ID
        session = client.retrieve("smsc_sessions", row["_smsc_sessionid_value"])
        assert session["_regardingobjectid_value"] == ALICE_ID
        assert status_of(base, message_id)["status"] == "delivered"

        # A lead with Alice's number: by type order the contact would win an inbound message.
        lead_id = str(uuid.uuid4())
        client.upsert("leads", lead_id, {"lastname": "Alice (lead)", "mobilephone": DEMO_CUSTOMER})
        about_lead = send(base, {"regarding": {"table": "lead", "id": lead_id}, "body": "Offer"})
        assert about_lead.status_code == 202, about_lead.text
        lead_message = about_lead.json()["id"]
        wait_until(lambda: status_of(base, lead_message)["status"] == "delivered", timeout=60)
        fields = inbound_fields(DEMO_CUSTOMER, DEMO_SENDER, "Yes please")
        signed = signed_form(f"{base}/webhooks/twilio/messages", fields, TOKEN)
        reply = requests.post(
            f"{base}/webhooks/twilio/messages", data=signed.body, headers=signed.headers, timeout=10
        )
        assert reply.status_code == 200
        sid = dict(fields)["MessageSid"]

        def reply_row() -> dict[str, Any] | None:
            rows = list(client.query("smsc_messages", filter=f"smsc_providermessageid eq '{sid}'"))
            return rows[0] if rows else None

        wait_until(lambda: reply_row() is not None, timeout=60)
        assert reply_row()["_regardingobjectid_value"] == lead_id  # type: ignore[index]
        assert len(engine.snapshot()["messages"]) == 2
    finally:
        stop(process)


def test_callbacks_bad_numbers_idempotency_and_templates(
    tmp_path: Path,
    emulator: Emulator,
    client: DataverseClient,
    simulator: tuple[SimulatorEngine, str],
) -> None:
    engine, simulator_url = simulator
    engine.options.out_of_order = True
    engine.options.duplicate = True
    engine.options.initial_callback = True
    port = _free_port()
    env = outbound_env(tmp_path, emulator, simulator_url, port)
    process, base = serve_on(port, tmp_path, env)
    try:
        shuffled = send(base, {"to": DEMO_CUSTOMER, "body": "shuffled"}).json()["id"]
        invalid = send(base, {"to": "+15005550001", "body": "to a bad number"}).json()["id"]
        once = [send(base, {"to": DEMO_CUSTOMER, "body": "once"}, key="k-1") for _ in range(3)]
        assert {r.status_code for r in once} == {202}
        assert len({r.json()["id"] for r in once}) == 1
        conflict = send(base, {"to": DEMO_CUSTOMER, "body": "other"}, key="k-1")
        assert conflict.status_code == 422 and conflict.json()["code"] == "idempotency_conflict"
        template_id = str(uuid.uuid4())
        client.upsert(
            "smsc_templates",
            template_id,
            {"smsc_title": "Job", "smsc_body": "Dear {jobtitle}, hello", "smsc_published": True},
        )
        missing = send(
            base,
            {"template_id": template_id, "regarding": {"table": "contact", "id": ALICE_ID}},
        )
        assert missing.status_code == 422, missing.text
        assert missing.json()["code"] == "template_value_missing"
        assert "jobtitle" in missing.json()["detail"]
        rendered = send(
            base,
            {"template_id": TEMPLATE_REMINDER, "regarding": {"table": "contact", "id": ALICE_ID}},
        )
        assert rendered.status_code == 202, rendered.text
        for bad, code in (
            ({"to": "not a number", "body": "x"}, "invalid_phone_number"),
            ({"to": DEMO_CUSTOMER, "body": ""}, "body_empty"),
            ({"to": DEMO_CUSTOMER, "body": "x" * 1601}, "body_too_long"),
            ({"to": DEMO_CUSTOMER, "body": "x", "from": "+14155559999"}, "unknown_sender"),
            ({"to": DEMO_CUSTOMER, "template_id": str(uuid.uuid4())}, "unknown_template"),
            (
                {"body": "x", "regarding": {"table": "contact", "id": str(uuid.uuid4())}},
                "regarding_not_found",
            ),
        ):
            refused = send(base, bad)
            assert refused.status_code in (400, 422), (bad, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["code"] == code, refused.text

        templated = rendered.json()["id"]
        wait_until(lambda: status_of(base, shuffled)["status"] == "delivered", timeout=60)
        wait_until(lambda: status_of(base, templated)["status"] == "delivered", timeout=60)
        wait_until(lambda: status_of(base, invalid)["status"] == "failed", timeout=60)
        failed = status_of(base, invalid)["failure"]
        assert failed["category"] == "invalid_recipient" and failed["code"] == "21211"
        assert "E.164" in failed["reason"]
        engine.wait_idle(20)
        time.sleep(1.0)  # the last callbacks journaled and applied
        assert status_of(base, shuffled)["status"] == "delivered"
        delivered = STATUS_OPTIONS[MessageStatus.DELIVERED]
        wait_until(lambda: dataverse_status(client, shuffled) == delivered, timeout=30)
        bodies = [m["body"] for m in engine.snapshot()["messages"]]
        # the bad number was refused at once; the template went out rendered
        assert sorted(bodies) == ["Hi Alice, see you tomorrow.", "once", "shuffled"]
    finally:
        stop(process)


def test_worker_killed_mid_send_sends_each_message_exactly_once(
    tmp_path: Path,
    emulator: Emulator,
    client: DataverseClient,
    simulator: tuple[SimulatorEngine, str],
) -> None:
    engine, simulator_url = simulator
    (config,) = client.query("smsc_configurations")
    client.update("smsc_configurations", config["smsc_configurationid"], {"smsc_sendingrate": 5})
    port = _free_port()
    env = outbound_env(tmp_path, emulator, simulator_url, port)
    web, base = serve_on(port, tmp_path, env, "--no-worker")
    try:
        ids = [send(base, {"to": DEMO_CUSTOMER, "body": f"m{n}"}).json()["id"] for n in range(30)]
        worker, _ = start_cli(["worker", "--threads", "2"], env, tmp_path, "Worker running")
        wait_until(lambda: len(engine.snapshot()["messages"]) >= 5, timeout=60)
        os.kill(worker.pid, signal.SIGKILL)
        stop(worker)
        assert len(engine.snapshot()["messages"]) < 30, "every message went before the kill"
        again, _ = start_cli(["worker"], env, tmp_path, "Worker running")
        try:
            wait_until(lambda: len(engine.snapshot()["messages"]) >= 30, timeout=120)
            wait_until(
                lambda: all(status_of(base, i)["status"] == "delivered" for i in ids), timeout=60
            )
            time.sleep(1.5)
        finally:
            stop(again)
        bodies = sorted(m["body"] for m in engine.snapshot()["messages"])
        assert bodies == sorted(f"m{n}" for n in range(30))
    finally:
        stop(web)
