"""Logging never prints a secret, whatever a caller passes it."""

from __future__ import annotations

import io
import json

from pydantic import SecretStr

from connector.log_config import configure_logging, get_logger


def test_secret_looking_fields_and_secretstr_values_are_masked() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    get_logger("t").info(
        "configured",
        auth_token="tw-token-123",
        client_secret="dv-secret-456",
        headers={"Authorization": "Bearer abc.def", "Accept": "json"},
        key=SecretStr("fernet-789"),
        account_sid="AC123",
    )
    line = stream.getvalue().strip().splitlines()[-1]
    for secret in ("tw-token-123", "dv-secret-456", "abc.def", "fernet-789"):
        assert secret not in line
    record = json.loads(line)
    assert record["account_sid"] == "AC123"
    assert record["headers"]["Accept"] == "json"
    assert record["event"] == "configured"


def test_console_rendering_is_readable_text() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "console", stream=stream)
    get_logger("t").warning("something happened", count=2)
    output = stream.getvalue()
    assert "something happened" in output
    assert "count=2" in output
