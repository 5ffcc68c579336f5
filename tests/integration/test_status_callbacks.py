"""Delivery-status callbacks over real HTTP: a forged callback changes nothing (403), a
callback for a message we never sent is answered and dropped, a repeat journals nothing new,
and the worker applies what was journaled without moving a status backwards.

The service runs on a loopback port with a real SQLite journal and outbox; Dataverse is not
reached (the callbacks are applied to the outbox; its Dataverse write is another test's).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from huey import MemoryHuey

from connector.bootstrap import Connector, build
from connector.bootstrap.server_thread import running
from connector.domain.model import Configuration, Provider
from connector.domain.outbound import OutboundMessage
from connector.domain.status import MessageStatus
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, status_callback_url
from connector.providers.twilio.forms import build_status_form
from connector.settings import load_settings
from connector.state.db import StateStore
from connector.testing.conversations import FakeConfigurationDirectory
from connector.testing.signing import signed_form

PUBLIC = "https://sms.example.com"
TOKEN = "0123456789abcdef0123456789abcdef"
SENDER, CUSTOMER = "+14155550100", "+14155550123"
MESSAGE_ID = "7d1f6f0e-4a3b-4c11-9d55-0a9e2f6c1b10"
SID = "SM" + "a" * 32


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, Connector]]:
    settings = load_settings(
        env={
            "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
            "CONNECTOR_TWILIO__ACCOUNT_SID": LOCAL_ACCOUNT_SID,
            "CONNECTOR_TWILIO__AUTH_TOKEN": TOKEN,
            "CONNECTOR_STATE__URL": f"sqlite:///{tmp_path / 'state.db'}",
            "CONNECTOR_DATAVERSE__URL": "https://org.example.com",
            "CONNECTOR_DATAVERSE__TOKEN": "x",
        }
    )
    store = StateStore.from_url(settings.state.url)
    config = Configuration(
        "Main", Provider.TWILIO, SENDER, id="cfg-1", account_id=LOCAL_ACCOUNT_SID
    )
    connector = build(
        settings,
        state=store,
        configuration_directory=FakeConfigurationDirectory(configurations=[config]),
        huey=MemoryHuey("test", results=False),
    )
    message = OutboundMessage(
        id=MESSAGE_ID,
        configuration_id="cfg-1",
        to_number=CUSTOMER,
        from_number=SENDER,
        body="Your order is ready",
        session_id="s-1",
        created_at=1000.0,
        updated_at=1000.0,
    )
    connector.outbox.add(message, {"id": MESSAGE_ID})
    with running(connector.app) as url:
        yield url, connector
    connector.close()
    store.close()


def _post(url: str, message_id: str, status: str, token: str = TOKEN) -> requests.Response:
    fields = build_status_form(
        message_sid=SID,
        account_sid=LOCAL_ACCOUNT_SID,
        from_number=SENDER,
        to_number=CUSTOMER,
        status=status,
    )
    public = status_callback_url(PUBLIC, message_id)
    signed = signed_form(public, fields, token)
    path = public.removeprefix(PUBLIC)
    return requests.post(url + path, data=signed.body, headers=signed.headers, timeout=10)


def _journaled(connector: Connector) -> int:
    counts = connector.journal.counts()
    return counts.pending + counts.done + counts.error


def test_a_forged_callback_is_refused_and_leaves_nothing(service: tuple[str, Connector]) -> None:
    url, connector = service
    answer = _post(url, MESSAGE_ID, "delivered", token="not-the-token")
    assert answer.status_code == 403
    assert _journaled(connector) == 0
    assert connector.outbox.get(MESSAGE_ID).status is MessageStatus.QUEUED  # type: ignore[union-attr]


def test_a_callback_for_an_unknown_message_is_answered_and_dropped(
    service: tuple[str, Connector],
) -> None:
    url, connector = service
    answer = _post(url, "0b9d7f3e-1111-4222-8333-944455556666", "delivered")
    assert answer.status_code == 200
    assert _journaled(connector) == 0


def test_callbacks_out_of_order_and_repeated_end_at_the_highest(
    service: tuple[str, Connector],
) -> None:
    url, connector = service
    for status in ("delivered", "sent", "delivered", "queued", "sent"):
        assert _post(url, MESSAGE_ID, status).status_code == 200
    assert _journaled(connector) == 3  # one row per (MessageSid, status)
    connector.drain.drain()
    message = connector.outbox.get(MESSAGE_ID)
    assert message is not None
    assert message.status is MessageStatus.DELIVERED and message.provider_id == SID
    assert connector.journal.counts().done == 3
