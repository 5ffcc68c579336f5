"""Bulk sends as a user meets them: ``connector serve --no-worker`` and ``connector worker`` as
subprocesses, the Twilio simulator counting what went out, the job's page over HTTP.

The issue's done-when: a job of 200 recipients with 10 bad ones (opted out, no number,
invalid, duplicate, blocked) ends with 190 sent and each bad one carrying its outcome, and a
worker killed with SIGKILL in the middle of the job and started again sends no one twice.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from connector.crm.conversations import DataverseConversations
from connector.dataverse.client import DataverseClient
from connector.emulators.twilio.engine import SimulatorEngine
from tests.e2e.conftest import Emulator
from tests.e2e.test_inbound_e2e import start_cli, stop, wait_until
from tests.e2e.test_outbound_e2e import KEY, _free_port, outbound_env, serve_on, simulator

__all__ = ["simulator"]  # the fixture, used by name

GOOD = [f"+1415555{n:04d}" for n in range(200, 390)]  # 190 numbers
OPTED_OUT = ["+14155550150", "+14155550151"]
BLOCKED = ["+14155550160", "+14155550161"]
INVALID = ["not a number", "12"]


def _bulk_page(base: str, job_id: str) -> dict[str, Any]:
    answer = requests.get(
        f"{base}/api/v1/bulk/{job_id}",
        params={"limit": 1000},
        headers={"X-API-Key": KEY},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_bulk_of_200_with_10_bad_ones_sends_190_once_across_a_killed_worker(
    tmp_path: Path,
    emulator: Emulator,
    client: DataverseClient,
    simulator: tuple[SimulatorEngine, str],
) -> None:
    engine, simulator_url = simulator
    (config,) = client.query("smsc_configurations")
    config_id = config["smsc_configurationid"]
    client.update("smsc_configurations", config_id, {"smsc_sendingrate": 20})
    for number in BLOCKED:
        DataverseConversations(client).block_number(config_id, number, None)
    no_phone = [str(uuid.uuid4()) for _ in range(2)]
    for contact in no_phone:
        client.upsert("contacts", contact, {"lastname": "Nophone"})
    port = _free_port()
    env = outbound_env(tmp_path, emulator, simulator_url, port)
    web, base = serve_on(port, tmp_path, env, "--no-worker")
    worker = None
    try:
        headers = {"X-API-Key": KEY}
        for number in OPTED_OUT:
            opted = requests.post(
                f"{base}/api/v1/consent/opt-out",
                json={"phone": number, "configuration_id": config_id, "source": "call"},
                headers=headers,
                timeout=10,
            )
            assert opted.status_code == 200, opted.text
        recipients: list[dict[str, Any]] = [{"to": n} for n in GOOD]
        recipients += [{"to": GOOD[0]}, {"to": GOOD[1]}]  # duplicates
        recipients += [{"to": n} for n in OPTED_OUT + BLOCKED + INVALID]
        recipients += [{"regarding": {"table": "contact", "id": c}} for c in no_phone]
        assert len(recipients) == 200
        answer = requests.post(
            f"{base}/api/v1/messages/bulk",
            json={"recipients": recipients, "body": "Our store opens at 9 tomorrow."},
            headers=headers,
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        assert answer.json()["duplicates"] == 2

        worker, _ = start_cli(["worker", "--threads", "2"], env, tmp_path, "Worker running")
        wait_until(lambda: len(engine.snapshot()["messages"]) >= 40, timeout=90)
        os.kill(worker.pid, signal.SIGKILL)
        stop(worker)
        assert len(engine.snapshot()["messages"]) < 190, "the whole job went before the kill"
        worker, _ = start_cli(["worker"], env, tmp_path, "Worker running")
        wait_until(lambda: len(engine.snapshot()["messages"]) >= 190, timeout=120)
        wait_until(lambda: _bulk_page(base, job_id)["status"] == "completed", timeout=60)
        page = _bulk_page(base, job_id)
    finally:
        if worker is not None:
            stop(worker)
        stop(web)

    sent_to = Counter(m["to"] for m in engine.snapshot()["messages"])
    assert sorted(sent_to) == sorted(GOOD) and set(sent_to.values()) == {1}
    outcomes = {r["index"]: r["outcome"] for r in page["recipients"]}
    assert all(outcomes[i] in {"sent", "delivered"} for i in range(190))
    assert [outcomes[i] for i in range(190, 200)] == [
        "duplicate",
        "duplicate",
        "opted_out",
        "opted_out",
        "blocked",
        "blocked",
        "invalid_number",
        "invalid_number",
        "no_number",
        "no_number",
    ]
    assert page["processed"] == 200 and page["total"] == 200
    assert sum(page["counts"].get(k, 0) for k in ("sent", "delivered")) == 190
