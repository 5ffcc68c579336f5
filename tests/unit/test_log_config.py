"""Logging never prints a secret, whatever a caller passes it, and carries correlation ids."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from typing import Any

from pydantic import SecretStr

from connector.log_config import (
    accept_request_id,
    configure_logging,
    correlation,
    current_request_id,
    get_logger,
    new_request_id,
)


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


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_ids_bound_by_correlation_are_on_lines_inside_and_gone_after() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    log = get_logger("t")
    log.info("before")
    with correlation("req-1", provider_message_id="SM1") as rid:
        log.info("inside", n=1)
        logging.getLogger("plain.stdlib").warning("foreign")
    log.info("after")
    before, inside, foreign, after = _records(stream)
    assert rid == "req-1"
    assert "request_id" not in before and "provider_message_id" not in before
    assert inside["request_id"] == "req-1" and inside["provider_message_id"] == "SM1"
    assert inside["n"] == 1
    assert foreign["request_id"] == "req-1" and foreign["event"] == "foreign"
    assert "request_id" not in after and "provider_message_id" not in after
    assert current_request_id() is None


def test_nested_correlation_keeps_the_request_id_adds_ids_and_restores_the_outer_ones() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    log = get_logger("t")
    with correlation(provider_message_id="SM1") as outer:
        assert re.fullmatch(r"[0-9a-f]{16}", outer)
        with correlation(journal_id="7", provider_message_id="SM2", skipped=None) as inner:
            log.info("inner")
        log.info("outer")
    inner_line, outer_line = _records(stream)
    assert inner == outer == inner_line["request_id"] == outer_line["request_id"]
    assert inner_line["journal_id"] == "7" and inner_line["provider_message_id"] == "SM2"
    assert "skipped" not in inner_line
    assert outer_line["provider_message_id"] == "SM1" and "journal_id" not in outer_line


def test_concurrent_tasks_keep_their_own_request_ids() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    log = get_logger("t")

    async def handle(rid: str) -> None:
        with correlation(rid):
            await asyncio.sleep(0)
            log.info("handled", expected=rid)

    async def both() -> None:
        await asyncio.gather(handle("a"), handle("b"))

    asyncio.run(both())
    records = _records(stream)
    assert len(records) == 2
    assert all(r["request_id"] == r["expected"] for r in records)


def test_request_ids_are_fresh_and_inbound_ones_are_accepted_only_when_safe() -> None:
    assert new_request_id() != new_request_id()
    assert accept_request_id("abc-123.x:y") == "abc-123.x:y"
    for unsafe in (None, "", "a b", 'x"}\n{"', "x" * 65):
        assert re.fullmatch(r"[0-9a-f]{16}", accept_request_id(unsafe))
