"""`connector schema plan|apply` and `connector setup` run as a user runs them (subprocesses)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from connector.bootstrap.server_thread import running
from connector.emulators.twilio.app import create_simulator_app
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from tests.e2e.conftest import connector_env, run_cli

TOKEN = "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b"
SETUP = (
    "setup",
    "--sender",
    "+14155550177",
    "--provider",
    "twilio",
    "--account-sid",
    "AC" + "3" * 32,
    "--auth-token",
    TOKEN,
    "--default-country",
    "US",
    "--no-validate",  # no provider reachable here; validation has its own test
)


def _env(tmp_path: Path, emulator: str) -> dict[str, str]:
    return connector_env(
        tmp_path,
        {
            "CONNECTOR_DATAVERSE__URL": emulator,
            "CONNECTOR_DATAVERSE__TOKEN": "emulator-token",
            "CONNECTOR_SECRET_KEYS": Fernet.generate_key().decode(),
            "CONNECTOR_PUBLIC_BASE_URL": "https://sms.example.com",
            "CONNECTOR_LOG__LEVEL": "WARNING",
            "COLUMNS": "200",
        },
    )


@pytest.fixture
def emulator(emulator_url: str) -> str:
    """A fresh emulator (the session's, reset): no solution schema yet."""
    return emulator_url


@pytest.fixture
def env(tmp_path: Path, emulator: str) -> dict[str, str]:
    return _env(tmp_path, emulator)


@pytest.fixture
def installed(installed_emulator_url: str) -> str:
    """An emulator with the solution schema installed (``schema apply`` has its own test)."""
    return installed_emulator_url


@pytest.fixture
def installed_env(tmp_path: Path, installed: str) -> dict[str, str]:
    return _env(tmp_path, installed)


def _rows(url: str, entity_set: str) -> list[dict[str, object]]:
    answer = requests.get(
        f"{url}/api/data/v9.2/{entity_set}",
        headers={"Authorization": "Bearer t"},
        timeout=10,
    )
    answer.raise_for_status()
    return list(answer.json()["value"])


def test_schema_apply_resumes_and_then_plan_has_nothing_to_do(
    env: dict[str, str], emulator: str
) -> None:
    planned = run_cli("schema", "plan", env=env)
    assert planned.returncode == 0, planned.stderr
    assert "smsc_message" in planned.stdout and "PublishXml" in planned.stdout
    stopped = run_cli("schema", "apply", "--max-steps", "20", env=env)
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert "Stopped after 20 changes" in stopped.stdout
    finished = run_cli("schema", "apply", env=env)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "Schema applied" in finished.stdout
    again = run_cli("schema", "plan", env=env)
    assert again.returncode == 0
    assert "Nothing to do" in again.stdout


def test_setup_twice_keeps_one_configuration_and_never_shows_the_token(
    installed_env: dict[str, str], installed: str
) -> None:
    env, emulator = installed_env, installed
    first = run_cli(*SETUP, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "configuration created" in first.stdout
    second = run_cli(*SETUP, env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "configuration updated" in second.stdout
    for result in (first, second):
        assert TOKEN not in result.stdout + result.stderr
    configs = _rows(emulator, "smsc_configurations")
    assert len(configs) == 1
    assert configs[0]["smsc_callbackurl"] == "https://sms.example.com/webhooks/twilio/messages"
    assert TOKEN not in str(configs)
    assert len(_rows(emulator, "smsc_recordtypes")) == 4
    assert len(_rows(emulator, "smsc_keywords")) == 13


def test_setup_with_a_token_but_no_secret_keys_refuses(installed_env: dict[str, str]) -> None:
    env = installed_env
    del env["CONNECTOR_SECRET_KEYS"]
    result = run_cli(*SETUP, env=env)
    assert result.returncode == 1
    assert "CONNECTOR_SECRET_KEYS" in result.stdout
    assert TOKEN not in result.stdout + result.stderr


def test_schema_commands_without_a_dataverse_url_explain_what_is_missing(
    tmp_path: Path,
) -> None:
    result = run_cli("schema", "plan", env=connector_env(tmp_path))
    assert result.returncode == 2
    assert "CONNECTOR_DATAVERSE__URL" in result.stdout + result.stderr


def test_setup_validates_credentials_at_the_provider(
    installed_env: dict[str, str], installed: str
) -> None:
    env, emulator = installed_env, installed
    with running(create_simulator_app()) as simulator:
        env["CONNECTOR_TWILIO__API_BASE_URL"] = simulator
        good = (
            "setup",
            "--sender",
            "+14155550188",
            "--account-sid",
            LOCAL_ACCOUNT_SID,
            "--auth-token",
            LOCAL_AUTH_TOKEN,
        )
        ok = run_cli(*good, env=env)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "│ valid" in ok.stdout
        bad = run_cli(*good[:-1], "wrong-token", env=env)
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert "│ invalid" in bad.stdout and "credentials not valid" in bad.stdout
        assert "wrong-token" not in bad.stdout + bad.stderr
    rows = [
        r for r in _rows(emulator, "smsc_configurations") if r["smsc_senderkey"] == "14155550188"
    ]
    assert len(rows) == 1
    assert rows[0]["smsc_validationstatus"] == 105710002


def test_setup_takes_the_token_from_the_environment_not_the_command_line(
    installed_env: dict[str, str], installed: str
) -> None:
    env, emulator = installed_env, installed
    env["CONNECTOR_TWILIO__AUTH_TOKEN"] = TOKEN
    args = [a for a in SETUP if a not in (TOKEN, "--auth-token")]
    result = run_cli(*args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stored encrypted" in result.stdout
    configs = _rows(emulator, "smsc_configurations")
    assert configs[0]["smsc_secret"] and TOKEN not in str(configs)
