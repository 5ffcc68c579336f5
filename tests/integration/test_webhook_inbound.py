"""The inbound webhook over real HTTP: signatures against the public URL, dedupe, bounds.

The service runs on a loopback port with a real SQLite journal; Dataverse is the shipped fake
writer, so these tests are about the webhook and the worker hand-off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from huey import MemoryHuey

from connector.bootstrap import Connector, build
from connector.bootstrap.server_thread import running
from connector.domain.model import Configuration, Provider
from connector.domain.routing import RecordRef
from connector.providers.twilio.endpoints import TWILIO_INBOUND_PATH
from connector.providers.twilio.webhook import TWIML_EMPTY
from connector.settings import load_settings
from connector.state.db import StateStore
from connector.testing.conversations import (
    FakeConfigurationDirectory,
    FakeConversationWriter,
    TableResolver,
)
from connector.testing.signing import inbound_fields, signed_form

PUBLIC = "https://sms.example.com"
TOKEN = "0123456789abcdef0123456789abcdef"
SENDER = "+14155550100"
CUSTOMER = "+14155550123"
INBOUND_URL = PUBLIC + TWILIO_INBOUND_PATH


@dataclass
class Service:
    url: str
    runtime: Connector
    writer: FakeConversationWriter

    def post(self, fields: list[tuple[str, str]], token: str = TOKEN) -> requests.Response:
        signed = signed_form(INBOUND_URL, fields, token)
        return requests.post(
            self.url + TWILIO_INBOUND_PATH, data=signed.body, headers=signed.headers, timeout=10
        )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    settings = load_settings(
        env={
            "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
            "CONNECTOR_TWILIO__AUTH_TOKEN": TOKEN,
            "CONNECTOR_STATE__URL": f"sqlite:///{tmp_path / 'state.db'}",
            "CONNECTOR_DATAVERSE__URL": "https://org.example.com",
            "CONNECTOR_DATAVERSE__TOKEN": "x",
        }
    )
    store = StateStore.from_url(settings.state.url)
    config = Configuration("Main", Provider.TWILIO, SENDER, id="cfg-1", owner_id="user-1")
    writer = FakeConversationWriter()
    directory = FakeConfigurationDirectory(configurations=[config])
    resolver = TableResolver(records={CUSTOMER: RecordRef("contact", "c-1")})
    connector = build(
        settings,
        state=store,
        writer=writer,
        configuration_directory=directory,
        resolver=resolver,
        huey=MemoryHuey("test", results=False),
    )
    with running(connector.app) as url:
        yield Service(url, connector, writer)
    connector.close()
    store.close()


def test_signed_webhook_is_journaled_and_answered_with_empty_twiml(service: Service) -> None:
    answer = service.post(inbound_fields(CUSTOMER, SENDER, "Hello ✨"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    assert answer.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert service.runtime.journal.counts().pending == 1


def test_webhook_sent_three_times_is_journaled_once(service: Service) -> None:
    fields = inbound_fields(CUSTOMER, SENDER, "again")
    answers = [service.post(fields) for _ in range(3)]
    assert {(a.status_code, a.text) for a in answers} == {(200, TWIML_EMPTY)}
    assert service.runtime.journal.counts().pending == 1


def test_forged_signature_gets_403_and_leaves_no_trace(service: Service) -> None:
    answer = service.post(inbound_fields(CUSTOMER, SENDER, "hi"), token="wrong-token")
    assert answer.status_code == 403
    counts = service.runtime.journal.counts()
    assert (counts.pending, counts.done, counts.error) == (0, 0, 0)


def test_tampered_body_gets_403(service: Service) -> None:
    signed = signed_form(INBOUND_URL, inbound_fields(CUSTOMER, SENDER, "pay 10"), TOKEN)
    body = signed.body.replace(b"pay+10", b"pay+99")
    answer = requests.post(
        service.url + TWILIO_INBOUND_PATH, data=body, headers=signed.headers, timeout=10
    )
    assert answer.status_code == 403
    assert service.runtime.journal.counts().pending == 0


def test_signature_over_the_socket_address_is_rejected(service: Service) -> None:
    local_url = service.url + TWILIO_INBOUND_PATH
    signed = signed_form(local_url, inbound_fields(CUSTOMER, SENDER, "hi"), TOKEN)
    answer = requests.post(local_url, data=signed.body, headers=signed.headers, timeout=10)
    assert answer.status_code == 403


def test_signed_but_malformed_webhook_gets_400_and_nothing_stored(service: Service) -> None:
    fields = [(k, v) for k, v in inbound_fields(CUSTOMER, SENDER, "hi") if k != "MessageSid"]
    answer = service.post(fields)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert service.runtime.journal.counts().pending == 0


def test_oversized_body_gets_413(service: Service) -> None:
    fields = [*inbound_fields(CUSTOMER, SENDER, "x"), ("Padding", "y" * 70_000)]
    answer = service.post(fields)
    assert answer.status_code == 413
    assert service.runtime.journal.counts().pending == 0


def test_worker_writes_the_journaled_message_and_marks_it_done(service: Service) -> None:
    service.runtime.start_worker(threads=1, periodic=False)
    fields = inbound_fields(CUSTOMER, SENDER, "to Dataverse")
    sid = dict(fields)["MessageSid"]
    assert service.post(fields).status_code == 200
    deadline = time.monotonic() + 20
    while service.runtime.journal.counts().done < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.runtime.journal.counts().done == 1
    write = service.writer.messages[sid]
    assert (write.regarding_table, write.regarding_id) == ("contact", "c-1")
    assert write.message.body == "to Dataverse"


def test_token_stored_encrypted_on_the_configuration_verifies_its_webhooks(
    tmp_path: Path,
) -> None:
    from cryptography.fernet import Fernet

    from connector.secret_box import SecretBox

    key = Fernet.generate_key().decode()
    account, stored_token = "AC" + "7" * 32, "f" * 32
    settings = load_settings(
        env={
            "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
            "CONNECTOR_SECRET_KEYS": key,
            "CONNECTOR_STATE__URL": f"sqlite:///{tmp_path / 'state.db'}",
            "CONNECTOR_DATAVERSE__URL": "https://org.example.com",
            "CONNECTOR_DATAVERSE__TOKEN": "x",
        }
    )
    config = Configuration(
        "Main",
        Provider.TWILIO,
        SENDER,
        id="cfg-1",
        account_id=account,
        secret=SecretBox([key]).encrypt(stored_token),
    )
    store = StateStore.from_url(settings.state.url)
    runtime = build(
        settings,
        state=store,
        writer=FakeConversationWriter(),
        configuration_directory=FakeConfigurationDirectory(configurations=[config]),
        resolver=TableResolver(),
        huey=MemoryHuey("test", results=False),
    )
    try:
        with running(runtime.app) as url:
            service = Service(url, runtime, FakeConversationWriter())
            mine = inbound_fields(CUSTOMER, SENDER, "hi", account_sid=account)
            other = inbound_fields(CUSTOMER, SENDER, "hi", account_sid="AC" + "8" * 32)
            assert service.post(mine, token=stored_token).status_code == 200
            assert service.post(other, token=stored_token).status_code == 403
            assert service.post(mine, token="g" * 32).status_code == 403
            assert runtime.journal.counts().pending == 1
    finally:
        runtime.close()
        store.close()


def test_webhook_is_verified_with_the_token_of_the_configuration_owning_the_number(
    tmp_path: Path,
) -> None:
    # two configurations on two Twilio accounts: A's token must not sign messages to B's number
    from cryptography.fernet import Fernet

    from connector.secret_box import SecretBox

    key = Fernet.generate_key().decode()
    box = SecretBox([key])
    account_a, token_a, number_a = "AC" + "a" * 32, "a" * 32, SENDER
    account_b, token_b, number_b = "AC" + "b" * 32, "b" * 32, "+14155550111"
    settings = load_settings(
        env={
            "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
            "CONNECTOR_SECRET_KEYS": key,
            "CONNECTOR_TWILIO__ACCOUNT_SID": account_a,
            "CONNECTOR_TWILIO__AUTH_TOKEN": token_a,
            "CONNECTOR_STATE__URL": f"sqlite:///{tmp_path / 'state.db'}",
            "CONNECTOR_DATAVERSE__URL": "https://org.example.com",
            "CONNECTOR_DATAVERSE__TOKEN": "x",
        }
    )
    configurations = [
        Configuration("A", Provider.TWILIO, number_a, id="cfg-a", account_id=account_a,
                      secret=box.encrypt(token_a)),
        Configuration("B", Provider.TWILIO, number_b, id="cfg-b", account_id=account_b,
                      secret=box.encrypt(token_b)),
    ]  # fmt: skip
    store = StateStore.from_url(settings.state.url)
    runtime = build(
        settings,
        state=store,
        writer=FakeConversationWriter(),
        configuration_directory=FakeConfigurationDirectory(configurations=configurations),
        resolver=TableResolver(),
        huey=MemoryHuey("test", results=False),
    )
    try:
        with running(runtime.app) as url:
            service = Service(url, runtime, FakeConversationWriter())

            def post(to: str, account: str, token: str) -> int:
                fields = inbound_fields(CUSTOMER, to, "hi", account_sid=account)
                return service.post(fields, token=token).status_code

            assert post(number_b, account_a, token_a) == 403  # A's account and token, B's number
            assert post(number_b, account_b, token_a) == 403  # B's account, A's token
            assert post(number_a, account_b, token_b) == 403  # B's credentials, A's number
            assert post("+1 (415) 555-0111", account_a, token_a) == 403  # B's, spelled otherwise
            assert runtime.journal.counts().pending == 0
            assert post(number_a, account_a, token_a) == 200
            assert post(number_b, account_b, token_b) == 200
            assert runtime.journal.counts().pending == 2
    finally:
        runtime.close()
        store.close()


def test_request_id_is_echoed_and_kept_on_the_journal_row_for_the_worker(
    service: Service,
) -> None:
    fields = inbound_fields(CUSTOMER, SENDER, "trace me")
    signed = signed_form(INBOUND_URL, fields, TOKEN)
    headers = {**signed.headers, "X-Request-ID": "edge-42.a"}
    answer = requests.post(
        service.url + TWILIO_INBOUND_PATH, data=signed.body, headers=headers, timeout=10
    )
    assert answer.status_code == 200
    assert answer.headers["X-Request-ID"] == "edge-42.a"
    (row,) = service.runtime.journal.claim(10, lease_seconds=5)
    assert (row.provider, row.event_id, row.request_id) == (
        "twilio",
        dict(fields)["MessageSid"],
        "edge-42.a",
    )
    other = signed_form(INBOUND_URL, inbound_fields(CUSTOMER, SENDER, "x"), TOKEN)
    unsafe = requests.post(
        service.url + TWILIO_INBOUND_PATH,
        data=other.body,
        headers={**other.headers, "X-Request-ID": "bad id;forged=1"},
        timeout=10,
    )
    assert unsafe.status_code == 200
    assert unsafe.headers["X-Request-ID"] != "bad id;forged=1"


def test_webhook_for_a_provider_not_configured_is_404_and_stores_nothing(
    service: Service,
) -> None:
    signed = signed_form(
        PUBLIC + "/webhooks/acs/messages", inbound_fields(CUSTOMER, SENDER, "x"), TOKEN
    )
    answer = requests.post(
        service.url + "/webhooks/acs/messages", data=signed.body, headers=signed.headers, timeout=10
    )
    assert answer.status_code == 404
    assert answer.json()["code"] == "unknown_provider"
    assert service.runtime.journal.counts().pending == 0
