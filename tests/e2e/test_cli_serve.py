"""The CLI as a user meets it: serve prints its URL and answers, settings fail loudly."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from benchmarks.inbound_bench import Service, worker_child
from connector.bootstrap.cpu_slice import slice_ns
from tests.e2e.conftest import connector_env, run_cli

URL_LINE = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def _start_serve(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[str], str, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "serve", "--port", "0"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        match = URL_LINE.search(line)
        if match:
            return process, match.group(1), seen
    process.kill()
    process.communicate(timeout=30)
    raise AssertionError("serve never printed its URL:\n" + "".join(seen))


def test_serve_prints_its_url_and_answers_healthz(tmp_path: Path) -> None:
    process, url, _ = _start_serve(connector_env(tmp_path), tmp_path)
    try:
        response = requests.get(f"{url}/healthz", timeout=10)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_serve_logs_never_contain_secrets(tmp_path: Path) -> None:
    secrets = {
        "CONNECTOR_TWILIO__AUTH_TOKEN": "tw-auth-token-e2e",
        "CONNECTOR_API__KEYS": "api-key-e2e",
        "CONNECTOR_SECRET_KEYS": Fernet.generate_key().decode(),
    }
    env = connector_env(tmp_path, {**secrets, "CONNECTOR_LOG__LEVEL": "DEBUG"})
    process, url, seen = _start_serve(env, tmp_path)
    try:
        requests.get(f"{url}/healthz", timeout=10)
        requests.get(f"{url}/nowhere", headers={"X-API-Key": "api-key-e2e"}, timeout=10)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    text = "".join(seen) + output
    for value in secrets.values():
        assert value not in text


def test_bad_setting_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    env = connector_env(tmp_path, {"CONNECTOR_SERVER__PORT": "not-a-port"})
    result = run_cli("serve", env=env)
    assert result.returncode == 2
    assert "CONNECTOR_SERVER__PORT" in result.stderr


def test_config_check_redacts_every_secret(tmp_path: Path) -> None:
    fernet = Fernet.generate_key().decode()
    env = connector_env(
        tmp_path,
        {
            "CONNECTOR_DATAVERSE__URL": "https://contoso.crm.dynamics.com",
            "CONNECTOR_DATAVERSE__TENANT_ID": "tenant-1",
            "CONNECTOR_DATAVERSE__CLIENT_ID": "client-1",
            "CONNECTOR_DATAVERSE__CLIENT_SECRET": "dv-client-secret-e2e",
            "CONNECTOR_TWILIO__AUTH_TOKEN": "tw-auth-token-e2e",
            "CONNECTOR_SECRET_KEYS": fernet,
            "CONNECTOR_STATE__URL": "postgresql://connector:pg-password-e2e@db.invalid/sms",
            "CONNECTOR_PUBLIC_BASE_URL": "https://sms.example.com",
        },
    )
    for args in (("config", "check", "--offline"), ("config", "check", "--offline", "--json")):
        result = run_cli(*args, env=env)
        assert result.returncode == 0, result.stderr
        for secret in ("dv-client-secret-e2e", "tw-auth-token-e2e", fernet, "pg-password-e2e"):
            assert secret not in result.stdout + result.stderr
    shown = json.loads(run_cli("config", "check", "--offline", "--json", env=env).stdout)
    assert shown["dataverse"]["client_id"] == "client-1"
    assert shown["dataverse"]["client_secret"] == "**********"


def test_version_flag_prints_the_version(tmp_path: Path) -> None:
    result = run_cli("--version", env=connector_env(tmp_path))
    assert result.returncode == 0
    assert re.match(r"connector \d+\.\d+", result.stdout)


def test_openapi_command_prints_the_document_without_dataverse_or_state(tmp_path: Path) -> None:
    workdir = tmp_path / "empty"
    workdir.mkdir()
    env = connector_env(tmp_path, {"CONNECTOR_STATE__URL": f"sqlite:///{workdir / 'state.db'}"})
    result = run_cli("openapi", env=env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    operations = {
        op["operationId"]: path for path, item in document["paths"].items() for op in item.values()
    }
    assert operations["receiveProviderWebhook"] == "/webhooks/{provider}/messages"
    assert operations["acceptSession"] == "/api/v1/sessions/{session_id}/accept"
    assert list(workdir.iterdir()) == []  # no state store, queue or local-mode file opened


def _stored_delta_links(state: Path) -> list[str]:
    with sqlite3.connect(state) as db:
        rows = db.execute("SELECT delta_link FROM phone_sync_cursor WHERE delta_link IS NOT NULL")
        return [str(link) for (link,) in rows]


def test_local_mode_starts_again_in_the_same_folder(tmp_path: Path) -> None:
    # each start gives the embedded emulator a new port; the phone sync's stored delta links
    # named the old one and the second start refused to follow them
    env = connector_env(tmp_path)
    for start in range(2):
        process, url, seen = _start_serve(env, tmp_path)
        try:
            assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
            deadline = time.monotonic() + 60
            while not _stored_delta_links(tmp_path / "state.db") and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            process.terminate()
            output, _ = process.communicate(timeout=30)
        text = "".join(seen) + output
        assert "outside the Web API base" not in text, f"start {start + 1}:\n{text}"
        assert _stored_delta_links(tmp_path / "state.db"), f"start {start + 1}:\n{text}"


def _slices(pid: int) -> set[int | None]:
    return {slice_ns(int(task.name), pid=pid) for task in Path(f"/proc/{pid}/task").iterdir()}


def test_serve_runs_on_short_cpu_slices_and_its_worker_child_on_the_default(
    tmp_path: Path,
) -> None:
    default = slice_ns()
    if default is None or not Path("/proc/self/task").is_dir():
        pytest.skip("the kernel does not show a task's slice")
    process, _, _ = _start_serve(connector_env(tmp_path), tmp_path)
    try:
        serving = _slices(process.pid)
        if serving == {default}:
            pytest.skip("this kernel takes no custom slice (Linux 6.12 and later do)")
        assert serving == {100_000}  # every thread of the web process: 0.1 ms
        child = worker_child(Service("", process.pid)).pid
        deadline = time.monotonic() + 60
        worker = _slices(child)
        while worker != {default} and time.monotonic() < deadline:
            time.sleep(0.2)  # the worker gives the inherited slice back once it starts
            worker = _slices(child)
        assert worker == {default}
    finally:
        process.terminate()
        process.communicate(timeout=30)
