"""``connector simulate inbound`` and ``connector simulator`` run as subprocesses: the webhook
they post verifies with the connector's signature check (local token, configured token,
public URL), a wrong token is refused, and the simulator alone answers the Twilio API."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from connector.bootstrap.server_thread import running
from connector.providers.twilio.client import TwilioProvider
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from tests.integration.test_twilio_simulator import EMPTY_TWIML, Receiver


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    env.update(extra)
    return env


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI with our own arguments
        [sys.executable, "-m", "connector", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    recv = Receiver(TwilioProvider(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN))
    with running(recv.app()) as base:
        recv.base_url = base
        yield recv, base


def test_simulate_inbound_in_local_mode_posts_a_verifiable_webhook(
    receiver: tuple[Receiver, str],
) -> None:
    recv, base = receiver
    done = _cli("simulate", "inbound", "--from", "+14155550199", "--to", "+15005550006",
                "--body", "Hello there", "--url", base, env=_env())  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "-> 200" in done.stdout and EMPTY_TWIML in done.stdout
    assert recv.rejected == []
    message = recv.inbound[0]["message"]
    assert (message.from_number, message.to_number, message.body) == (
        "+14155550199", "+15005550006", "Hello there")  # fmt: skip
    assert message.account_id == LOCAL_ACCOUNT_SID


def test_simulate_inbound_signs_over_the_public_url_with_the_configured_token(
    receiver: tuple[Receiver, str],
) -> None:
    recv, base = receiver
    recv.verifier = TwilioProvider("AC" + "f" * 32, "configured-token")
    recv.base_url = "https://sms.example.com"  # as if behind a proxy
    env = _env(CONNECTOR_PUBLIC_BASE_URL="https://sms.example.com",
               CONNECTOR_TWILIO__AUTH_TOKEN="configured-token",
               CONNECTOR_TWILIO__ACCOUNT_SID="AC" + "f" * 32)  # fmt: skip
    done = _cli("simulate", "inbound", "--from", "+14155550199", "--to", "+15005550006",
                "--body", "hi", "--media", "https://example.com/a.png", "--url", base,
                env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    message = recv.inbound[0]["message"]
    assert message.provider_message_id.startswith("MM")
    assert [m.content_type for m in message.media] == ["image/png"]


def test_simulate_inbound_with_wrong_token_is_refused_and_exits_1(
    receiver: tuple[Receiver, str],
) -> None:
    recv, base = receiver
    done = _cli("simulate", "inbound", "--from", "+14155550199", "--to", "+15005550006",
                "--body", "x", "--url", base, "--auth-token", "wrong", env=_env())  # fmt: skip
    assert done.returncode == 1 and "-> 403" in done.stdout
    assert recv.rejected == ["mismatch"] and recv.inbound == []


def test_simulate_inbound_reports_an_unreachable_connector() -> None:
    done = _cli("simulate", "inbound", "--from", "+1", "--to", "+2", "--body", "x",
                "--url", "http://127.0.0.1:9", env=_env())  # fmt: skip
    assert done.returncode == 1 and "Could not reach" in done.stderr


def test_simulator_command_serves_the_twilio_api() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "simulator", "--port", "0"],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            match = re.search(r"listening on (http://\S+)", process.stdout.readline())
            url = match.group(1) if match else None
        assert url is not None
        report = TwilioProvider(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN,
                                api_base_url=url).validate_credentials()  # fmt: skip
        assert report.ok and report.friendly_name == "Connector simulator"
        answer = requests.get(f"{url}/_simulator/messages", timeout=5)
        assert answer.json()["messages"] == []
    finally:
        process.terminate()
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()
