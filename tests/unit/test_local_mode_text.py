"""What local mode prints must be runnable as printed; beyond loopback, its own token."""

from __future__ import annotations

import pytest

from connector.bootstrap.local_mode import cli_command, private_token
from connector.bootstrap.twilio import auth_tokens
from connector.providers.twilio.endpoints import LOCAL_AUTH_TOKEN
from connector.settings import load_settings

EVERYWHERE = "0.0.0.0"  # noqa: S104 - the host local mode must not trust the published token on


def test_printed_command_is_the_script_the_user_ran() -> None:
    assert cli_command(".venv/bin/connector") == ".venv/bin/connector"
    assert cli_command("/opt/my tools/connector") == "'/opt/my tools/connector'"


def test_printed_command_falls_back_to_connector_under_python_m() -> None:
    assert cli_command("/src/connector/__main__.py") == "connector"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
     ("localhost", True), (EVERYWHERE, False), ("::", False), ("192.168.1.5", False),
     ("my-laptop.local", False)],
)  # fmt: skip
def test_only_loopback_hosts_keep_the_published_token(host: str, loopback: bool) -> None:
    settings = load_settings({})
    kept, generated = private_token(settings, host)
    assert (generated is None) is loopback
    if generated is not None:
        assert len(generated) >= 32 and generated != LOCAL_AUTH_TOKEN
        assert kept.twilio.auth_token is not None
        assert kept.twilio.auth_token.get_secret_value() == generated
        assert auth_tokens(kept) == [generated]  # the published token no longer verifies
    else:
        assert auth_tokens(kept) == [LOCAL_AUTH_TOKEN]


def test_a_configured_token_is_kept_beyond_loopback() -> None:
    settings = load_settings({"CONNECTOR_TWILIO__AUTH_TOKEN": "configured-token"})
    kept, generated = private_token(settings, EVERYWHERE)
    assert generated is None and auth_tokens(kept) == ["configured-token"]
