"""Inbound as a user meets it: `connector serve` / `connector worker` as subprocesses, signed
webhooks over HTTP, results read back from the Dataverse emulator.

The emulator runs in the test process on a loopback port (so a test can stop it and start it
again on the same port and data file); the schema and demo data are installed by local mode's
seeding. Covers: the message lands in the right session linked to the record; a webhook sent
three times yields one message; a forged one yields 403 and nothing; with the emulator down,
webhooks are still answered and every message arrives once it is back; a worker killed with
SIGKILL mid-batch loses and duplicates nothing after a restart; and the README flow in local
mode (serve, the printed simulate command, export).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select

from connector.bootstrap.local_mode import DEMO_CUSTOMER, DEMO_ROWS, DEMO_SENDER
from connector.dataverse.client import DataverseClient
from connector.providers.twilio.endpoints import LOCAL_AUTH_TOKEN
from connector.state.journal import Journal
from connector.state.journal_file import open_journal_store
from connector.state.journal_table import PENDING, journal_table
from connector.testing.signing import inbound_fields, signed_form
from tests.e2e.conftest import PUBLIC, Emulator, connector_env, run_cli

PATH = "/webhooks/twilio/messages"
TOKEN = "0123456789abcdef0123456789abcdef"
ALICE_ID = next(r.id for r in DEMO_ROWS if r.body.get("firstname") == "Alice")
URL_LINE = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def start_cli(args: list[str], env: dict[str, str], cwd: Path, wait_for: str) -> tuple[
    subprocess.Popen[str], str
]:  # fmt: skip
    """Start ``connector ARGS`` and return once a line matches ``wait_for`` (that line)."""
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "connector", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if re.search(wait_for, line):
            _drain_in_background(process)
            return process, line
    process.kill()
    process.communicate(timeout=30)
    raise AssertionError(
        f"connector {' '.join(args)} never printed {wait_for!r}:\n" + "".join(seen)
    )


_DRAINS: dict[int, threading.Thread] = {}


def _drain_in_background(process: subprocess.Popen[str]) -> None:
    def drain() -> None:
        assert process.stdout is not None
        for _ in process.stdout:
            pass

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    _DRAINS[process.pid] = thread


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    thread = _DRAINS.pop(process.pid, None)
    if thread is not None:
        thread.join(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


def post(base: str, body: str, sid: str | None = None, token: str = TOKEN) -> tuple[int, str]:
    fields = inbound_fields(DEMO_CUSTOMER, DEMO_SENDER, body, message_sid=sid)
    signed = signed_form(PUBLIC + PATH, fields, token)
    answer = requests.post(base + PATH, data=signed.body, headers=signed.headers, timeout=10)
    return answer.status_code, dict(fields)["MessageSid"]


def wait_until(check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def journal_rows(env: dict[str, str]) -> dict[str, int]:
    """The serving process's journal rows by status (read from its state file)."""
    store = open_journal_store(env["CONNECTOR_STATE__URL"])
    try:
        with store.engine.connect() as conn:
            query = select(journal_table.c.status, func.count()).group_by(journal_table.c.status)
            return {str(status): int(n) for status, n in conn.execute(query)}
    finally:
        store.close()


def failed_attempts(env: dict[str, str]) -> int:
    """Pending journal rows the worker has already tried and failed at least once."""
    store = open_journal_store(env["CONNECTOR_STATE__URL"])
    try:
        with store.engine.connect() as conn:
            query = select(func.count()).where(
                journal_table.c.status == PENDING, journal_table.c.attempts > 0
            )
            return int(conn.execute(query).scalar_one())
    finally:
        store.close()


def messages(client: DataverseClient) -> list[dict[str, Any]]:
    return list(client.query("smsc_messages"))


def service_env(tmp_path: Path, emulator: Emulator) -> dict[str, str]:
    return connector_env(
        tmp_path,
        {
            "CONNECTOR_DATAVERSE__URL": emulator.url,
            "CONNECTOR_DATAVERSE__TOKEN": "e2e",
            "CONNECTOR_DATAVERSE__MAX_RETRIES": "0",
            "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
            "CONNECTOR_TWILIO__AUTH_TOKEN": TOKEN,
            "CONNECTOR_WORKER__LEASE_SECONDS": "3",
            "CONNECTOR_LOG__LEVEL": "WARNING",
        },
    )


def serve(tmp_path: Path, env: dict[str, str], *extra: str) -> tuple[subprocess.Popen[str], str]:
    process, line = start_cli(["serve", "--port", "0", *extra], env, tmp_path, URL_LINE.pattern)
    match = URL_LINE.search(line)
    assert match is not None
    return process, match.group(1)


def test_message_lands_once_in_the_session_of_the_contact_and_forgeries_leave_nothing(
    tmp_path: Path, emulator: Emulator, client: DataverseClient
) -> None:
    env = service_env(tmp_path, emulator)
    process, base = serve(tmp_path, env)
    try:
        status, sid = post(base, "Hello from Alice 👋")
        assert status == 200
        assert post(base, "Hello from Alice 👋", sid=sid)[0] == 200
        assert post(base, "Hello from Alice 👋", sid=sid)[0] == 200
        forged_status, forged_sid = post(base, "forged", token="not-the-token")
        assert forged_status == 403
        wait_until(lambda: journal_rows(env) == {"done": 1})  # repeats were never journaled
        (message,) = messages(client)
        assert message["smsc_providermessageid"] == sid
        assert message["_regardingobjectid_value"] == ALICE_ID
        session = client.retrieve("smsc_sessions", message["_smsc_sessionid_value"])
        assert session["_regardingobjectid_value"] == ALICE_ID
        assert forged_sid not in {m["smsc_providermessageid"] for m in messages(client)}
    finally:
        stop(process)


def test_messages_sent_while_dataverse_is_down_all_arrive_once_it_is_back(
    tmp_path: Path, emulator: Emulator, client: DataverseClient
) -> None:
    env = service_env(tmp_path, emulator)
    process, base = serve(tmp_path, env)
    try:
        first = post(base, "before the outage")[1]
        wait_until(lambda: len(messages(client)) == 1)
        emulator.stop()
        during = [post(base, f"during the outage {n}") for n in range(5)]
        assert {status for status, _ in during} == {200}
        wait_until(lambda: failed_attempts(env) >= 1)  # the worker met the outage
        emulator.start()
        wanted = {first, *(sid for _, sid in during)}
        wait_until(lambda: {m["smsc_providermessageid"] for m in messages(client)} == wanted)
        assert len(messages(client)) == 6
    finally:
        stop(process)


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(
    tmp_path: Path, emulator: Emulator, client: DataverseClient
) -> None:
    emulator.stop()
    emulator.delay = 1.0  # a batch is committed a second before the worker hears of it
    emulator.start()
    env = service_env(tmp_path, emulator) | {"CONNECTOR_WORKER__BATCH_SIZE": "10"}
    web, base = serve(tmp_path, env, "--no-worker")
    journal = Journal(open_journal_store(env["CONNECTOR_STATE__URL"]))
    try:
        sids = [post(base, f"message {n}")[1] for n in range(40)]
        worker, _ = start_cli(["worker", "--threads", "2"], env, tmp_path, "Worker running")
        wait_until(lambda: len(messages(client)) >= 10, timeout=60)  # in Dataverse, not done
        os.kill(worker.pid, signal.SIGKILL)
        stop(worker)
        assert journal.counts().done < 40, "the worker finished before it could be killed"
        again, _ = start_cli(["worker"], env, tmp_path, "Worker running")
        try:
            wait_until(lambda: journal.counts().done == 40, timeout=120)
        finally:
            stop(again)
        stored = [m["smsc_providermessageid"] for m in messages(client)]
        assert sorted(stored) == sorted(sids)
        assert len(list(client.query("smsc_sessions"))) == 1
    finally:
        stop(web)
        journal.store.close()


def test_readme_flow_local_mode_serve_simulate_export(tmp_path: Path) -> None:
    env = connector_env(tmp_path, {"CONNECTOR_LOG__LEVEL": "WARNING"})
    process, line = start_cli(["serve", "--port", "0"], env, tmp_path, r"connector simulate")
    try:
        command = shlex.split(line.strip())
        assert Path(command[0]).name == "connector"
        assert command[1:3] == ["simulate", "inbound"]
        sent = run_cli(*command[1:], env=env, cwd=tmp_path)
        assert sent.returncode == 0, sent.stdout + sent.stderr

        def exported() -> bool:
            result = run_cli("export", "messages", env=env, cwd=tmp_path)
            return result.returncode == 0 and "is my order ready?" in result.stdout

        wait_until(exported, timeout=60)
        out = run_cli("export", "messages", "--out", "messages.csv", env=env, cwd=tmp_path)
        assert out.returncode == 0
        text = (tmp_path / "messages.csv").read_text(encoding="utf-8-sig")
        assert text.startswith("Message ID,Thread ID,Created,Time,Full Name,From,To,Status,")
        assert "Alice Nguyen" in text and ",contact," in text and ",Inbound," in text
        reply = run_cli(
            "send", "--to", DEMO_CUSTOMER, "--body", "It is ready.", env=env, cwd=tmp_path
        )
        assert reply.returncode == 0, reply.stdout + reply.stderr
        assert "delivered" in reply.stdout, reply.stdout

        def replied() -> bool:
            result = run_cli("export", "messages", env=env, cwd=tmp_path)
            return ",Delivered,It is ready.,Outbound,contact," in result.stdout

        wait_until(replied, timeout=60)
    finally:
        stop(process)


def test_local_mode_beyond_loopback_refuses_the_published_token_and_simulate_uses_its_own(
    tmp_path: Path,
) -> None:
    env = connector_env(tmp_path, {"CONNECTOR_LOG__LEVEL": "WARNING"})
    everywhere = "0.0.0.0"  # noqa: S104 - what the test is about: local mode asked to listen widely
    process, line = start_cli(
        ["serve", "--host", everywhere, "--port", "0"], env, tmp_path, r"random signing token"
    )
    try:
        match = re.search(r"(http://0\.0\.0\.0:\d+)", line)
        assert match, line
        base = match.group(1)
        fields = inbound_fields(DEMO_CUSTOMER, DEMO_SENDER, "published token")
        signed = signed_form(base + PATH, fields, LOCAL_AUTH_TOKEN)
        answer = requests.post(base + PATH, data=signed.body, headers=signed.headers, timeout=10)
        assert answer.status_code == 403  # the token in the source code signs nothing here
        simulate = ["simulate", "inbound", "--from", DEMO_CUSTOMER, "--to", DEMO_SENDER]
        sent = run_cli(*simulate, "--body", "hi", "--url", base, env=env, cwd=tmp_path)
        assert sent.returncode == 0, sent.stdout + sent.stderr
    finally:
        stop(process)


def test_journal_status_and_replay_commands(tmp_path: Path) -> None:
    env = connector_env(tmp_path)
    journal = Journal(open_journal_store(env["CONNECTOR_STATE__URL"]))
    journal.append("twilio", "SMpoison", {"From": "+1"})
    (entry,) = journal.claim()
    journal.mark_failed(entry, {"code": "configuration_error"}, transient=False)
    journal.close()
    status = run_cli("journal", "status", env=env, cwd=tmp_path)
    assert status.returncode == 0
    assert "error 1" in status.stdout and "SMpoison" in status.stdout
    replay = run_cli("journal", "replay", str(entry.id), env=env, cwd=tmp_path)
    assert replay.returncode == 0 and "1 event(s) queued again" in replay.stdout
    after = run_cli("journal", "status", env=env, cwd=tmp_path)
    assert "pending 1" in after.stdout and "error 0" in after.stdout
