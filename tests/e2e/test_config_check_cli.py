"""``connector config check`` run as a user runs it (a subprocess): production findings, the
exit code, ``--json``, and the Twilio number's SmsUrl asked from the simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connector.bootstrap.local_mode import DEMO_SENDER
from connector.bootstrap.server_thread import running
from connector.emulators.twilio.app import create_simulator_app
from connector.emulators.twilio.engine import SimulatorEngine, SimulatorOptions
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from tests.e2e.conftest import PUBLIC, Emulator, connector_env, run_cli

INBOUND = f"{PUBLIC}/webhooks/twilio/messages"


def test_offline_production_gaps_are_errors_with_exit_code_1(tmp_path: Path) -> None:
    env = connector_env(
        tmp_path,
        {
            "CONNECTOR_DATAVERSE__URL": "https://contoso.crm.dynamics.com",
            "CONNECTOR_DATAVERSE__TOKEN": "dv-token-e2e",
            "CONNECTOR_SERVER__HOST": "0.0.0.0",  # noqa: S104 - only checked, nothing listens
        },
    )
    result = run_cli("config", "check", "--offline", "--json", env=env)
    assert result.returncode == 1, result.stderr
    findings = {f["code"]: f["severity"] for f in json.loads(result.stdout)["findings"]}
    assert findings == {
        "no_public_base_url": "error",
        "no_secret_keys": "error",
        "no_api_keys": "error",
    }
    text = run_cli("config", "check", "--offline", env=env)
    assert text.returncode == 1
    assert "no_public_base_url" in text.stdout
    assert "CONNECTOR_PUBLIC_BASE_URL" in text.stdout
    assert "dv-token-e2e" not in text.stdout + text.stderr


@pytest.fixture
def engine() -> Iterator[SimulatorEngine]:
    engine = SimulatorEngine(SimulatorOptions(numbers={DEMO_SENDER: "https://old.example/sms"}))
    yield engine
    engine.close()


def test_the_twilio_numbers_sms_url_is_asked_from_the_provider(
    tmp_path: Path, emulator: Emulator, engine: SimulatorEngine
) -> None:
    with running(create_simulator_app(engine)) as simulator:
        env = connector_env(
            tmp_path,
            {
                "CONNECTOR_DATAVERSE__URL": emulator.url,
                "CONNECTOR_DATAVERSE__TOKEN": "emulator-token",
                "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
                "CONNECTOR_SECRET_KEYS": Fernet.generate_key().decode(),
                "CONNECTOR_TWILIO__ACCOUNT_SID": LOCAL_ACCOUNT_SID,
                "CONNECTOR_TWILIO__AUTH_TOKEN": LOCAL_AUTH_TOKEN,
                "CONNECTOR_TWILIO__API_BASE_URL": simulator,
            },
        )
        wrong = run_cli("config", "check", "--json", env=env)
        assert wrong.returncode == 1, wrong.stderr
        findings = json.loads(wrong.stdout)["findings"]
        assert [f["code"] for f in findings] == ["twilio_sms_url_mismatch"]
        assert DEMO_SENDER in findings[0]["message"]
        assert INBOUND in findings[0]["message"]
        assert LOCAL_AUTH_TOKEN not in wrong.stdout + wrong.stderr

        engine.options.numbers = {DEMO_SENDER: INBOUND}
        right = run_cli("config", "check", env=env)
        assert right.returncode == 0, right.stdout + right.stderr
        assert "No problems found" in right.stdout

        offline = run_cli("config", "check", "--offline", env=env)
        assert offline.returncode == 0
        assert "Offline" in offline.stdout

    gone = run_cli("config", "check", "--json", env=env)  # the simulator stopped
    assert gone.returncode == 0, gone.stderr
    assert [f["code"] for f in json.loads(gone.stdout)["findings"]] == ["twilio_not_asked"]
