"""The webhook route is provider-neutral: a second provider of another shape fits the port.

Azure Communication Services delivers inbound SMS as Event Grid JSON: an array of events, a
subscription-validation handshake answered with the validation code, and (here) a shared
secret in the query string. A minimal provider of that shape is registered beside Twilio
through ``bootstrap.build``'s overrides; over real HTTP the route answers its handshake,
journals each of its events under its own name, and the worker parses each journal row with
the provider that journaled it.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from huey import MemoryHuey

from connector.bootstrap import Connector, build
from connector.bootstrap.server_thread import running
from connector.domain.model import Configuration, Provider
from connector.domain.provider_messages import InboundMessage
from connector.domain.routing import RecordRef
from connector.errors import InvalidInputError, SignatureError
from connector.ports import AcceptedWebhook, ProviderEvent, WebhookAnswer, WebhookRequest
from connector.providers.twilio.webhook import SignatureTokens, TwilioWebhooks
from connector.providers.webhooks import ProviderRegistry
from connector.settings import load_settings
from connector.testing.conversations import (
    FakeConfigurationDirectory,
    FakeConversationWriter,
    TableResolver,
)

PUBLIC = "https://sms.example.com"
SECRET = "event-grid-shared-secret"
TOKEN = "0123456789abcdef0123456789abcdef"
SENDER = "+14155550100"
CUSTOMER = "+14155550123"


class EventGridSms:
    """An ACS-shaped provider: Event Grid JSON events, validation handshake, query secret."""

    name = "acs"

    def ready(self) -> bool:
        return True

    def accept(self, request: WebhookRequest) -> AcceptedWebhook:
        presented = parse_qs(urlsplit(request.url).query).get("secret", [""])[0]
        if not hmac.compare_digest(presented.encode(), SECRET.encode()):
            raise SignatureError("event grid secret does not match")
        try:
            events = json.loads(request.body)
        except ValueError as exc:
            raise InvalidInputError("not JSON") from exc
        if (
            events
            and events[0].get("eventType") == "Microsoft.EventGrid.SubscriptionValidationEvent"
        ):
            code = events[0]["data"]["validationCode"]
            answer = json.dumps({"validationResponse": code})
            return AcceptedWebhook((), WebhookAnswer(answer, "application/json"))
        received = [
            e for e in events if e.get("eventType") == "Microsoft.Communication.SMSReceived"
        ]
        return AcceptedWebhook(
            tuple(ProviderEvent(e["data"]["messageId"], e["data"]) for e in received),
            WebhookAnswer("", "text/plain"),
        )

    def parse(self, payload: Mapping[str, Any]) -> InboundMessage:
        return InboundMessage(
            provider=self.name,
            provider_message_id=str(payload["messageId"]),
            account_id="acs-resource",
            from_number=str(payload["from"]),
            to_number=str(payload["to"]),
            body=str(payload["message"]),
        )


@pytest.fixture
def connector(tmp_path: Path) -> Iterator[tuple[str, Connector, FakeConversationWriter]]:
    settings = load_settings(
        env={
            "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
            "CONNECTOR_TWILIO__AUTH_TOKEN": TOKEN,
            "CONNECTOR_STATE__URL": f"sqlite:///{tmp_path / 'state.db'}",
            "CONNECTOR_DATAVERSE__URL": "https://org.example.com",
            "CONNECTOR_DATAVERSE__TOKEN": "x",
        }
    )
    config = Configuration("Main", Provider.TWILIO, SENDER, id="cfg-1", owner_id="user-1")
    writer = FakeConversationWriter()
    directory = FakeConfigurationDirectory(configurations=[config])
    built = build(
        settings,
        writer=writer,
        configuration_directory=directory,
        resolver=TableResolver(records={CUSTOMER: RecordRef("contact", "c-1")}),
        huey=MemoryHuey("test", results=False),
        providers=ProviderRegistry([TwilioWebhooks(SignatureTokens([TOKEN])), EventGridSms()]),
    )
    with running(built.app) as url:
        yield url, built, writer
    built.close()


def _post(url: str, events: list[dict[str, Any]], secret: str = SECRET) -> requests.Response:
    return requests.post(
        f"{url}/webhooks/acs/messages?secret={secret}",
        data=json.dumps(events),
        headers={"content-type": "application/json"},
        timeout=10,
    )


def _sms(message_id: str, body: str) -> dict[str, Any]:
    return {
        "id": f"evt-{message_id}",
        "eventType": "Microsoft.Communication.SMSReceived",
        "data": {"messageId": message_id, "from": CUSTOMER, "to": SENDER, "message": body},
    }


def test_event_grid_handshake_is_answered_and_journals_nothing(
    connector: tuple[str, Connector, FakeConversationWriter],
) -> None:
    url, built, _ = connector
    handshake = [
        {
            "id": "v1",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"},
        }
    ]
    answer = _post(url, handshake)
    assert answer.status_code == 200
    assert answer.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert built.journal.counts().pending == 0


def test_a_second_providers_events_are_journaled_under_its_name_and_parsed_by_it(
    connector: tuple[str, Connector, FakeConversationWriter],
) -> None:
    url, built, writer = connector
    assert _post(url, [_sms("acs-1", "hello"), _sms("acs-2", "again")]).status_code == 200
    assert _post(url, [_sms("acs-1", "hello")]).status_code == 200  # a repeat: journaled once
    assert _post(url, [_sms("acs-3", "forged")], secret="wrong").status_code == 403
    assert built.journal.counts().pending == 2
    built.start_worker(threads=1, periodic=False)
    deadline = time.monotonic() + 20
    while built.journal.counts().done < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert built.journal.counts().done == 2
    assert {sid: w.message.body for sid, w in writer.messages.items()} == {
        "acs-1": "hello",
        "acs-2": "again",
    }
