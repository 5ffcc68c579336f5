"""The Dataverse webhook over real HTTP: the route (key, shapes, journal), the registration
against the emulator (idempotent, rotation, removal), and the emulator's posts (auth, retry)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from connector.api.app import create_app
from connector.api.deps import DataverseWebhook, WebServices
from connector.bootstrap.server_thread import ServerThread
from connector.crm.send_rows import waits_for_us, webhook_event
from connector.crm.webhook_registration import DataverseWebhookRegistration
from connector.dataverse.client import DataverseClient
from connector.emulators.dataverse.webhooks import Target, remote_context
from connector.state.db import StateStore
from connector.state.journal import Journal
from tests.integration.test_installer_emulator import changing_requests, make_client

KEY = "s3cr3t-key"
ROW_ID = "0c9a5b7e-3f1d-f011-9989-6045bd0a1b2c"


def context(table: str = "smsc_message", message: str = "Create", direction: int = 1) -> bytes:
    """A RemoteExecutionContext as the emulator posts it (row id fixed; an outbound queued
    row, or ``direction`` 0: inbound)."""
    from connector.emulators.dataverse.metadata import AttributeDef
    from connector.emulators.dataverse.router import Emulator

    core = Emulator()
    entity = core.schema.entities["task"]
    entity.add(AttributeDef("smsc_direction", "Picklist", options={105710001: "Outbound"}))
    row: dict[str, Any] = {
        entity.primary_id: ROW_ID,
        "subject": "x",
        "smsc_direction": 105710000 + direction,
    }
    body = remote_context(entity, row, Target("s", "s", "http://x", {}, []), "c").decode()
    return body.replace('"task"', f'"{table}"').replace('"Create"', f'"{message}"').encode()


@pytest.fixture
def route(tmp_path: Path) -> Iterator[tuple[str, Journal]]:
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    journal = Journal(store)
    keys = [KEY, "previous-key"]
    hook = DataverseWebhook(
        keys=lambda: keys, parse=webhook_event, journal=journal, wanted=waits_for_us
    )
    server = ServerThread(create_app(WebServices(dataverse_webhook=hook))).start()
    yield f"{server.url}/webhooks/dataverse", journal
    server.stop()
    journal.close()
    store.close()


def stored(journal: Journal) -> int:
    return journal.counts().pending


def test_a_good_delivery_is_journaled_once_and_answered(route: tuple[str, Journal]) -> None:
    url, journal = route
    for _ in range(2):
        answer = requests.post(url, data=context(), headers={"x-smsc-webhook-key": KEY}, timeout=10)
        assert answer.status_code == 202 and answer.headers["X-Request-ID"]
    assert stored(journal) == 1
    by_code = requests.post(url, params={"code": "previous-key"}, data=context(), timeout=10)
    assert by_code.status_code == 202
    assert stored(journal) == 1


def test_a_row_that_does_not_wait_to_be_sent_is_answered_and_not_journaled(
    route: tuple[str, Journal],
) -> None:
    url, journal = route
    inbound = context(direction=0)
    answer = requests.post(url, data=inbound, headers={"x-smsc-webhook-key": KEY}, timeout=10)
    assert answer.status_code == 202 and stored(journal) == 0


@pytest.mark.parametrize(
    "headers", [{}, {"x-smsc-webhook-key": "wrong"}, {"x-smsc-webhook-key": ""}]
)
def test_a_missing_or_wrong_key_is_401_and_stores_nothing(
    route: tuple[str, Journal], headers: dict[str, str]
) -> None:
    url, journal = route
    answer = requests.post(url, data=context(), headers=headers, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert stored(journal) == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_remote_context"),
        (b'{"MessageName": "Create"}', "invalid_remote_context"),
        (context(table="contact"), "unexpected_event"),
        (context(message="Update"), "unexpected_event"),
    ],
)
def test_a_body_of_the_wrong_shape_is_400_problem_json_and_stores_nothing(
    route: tuple[str, Journal], body: bytes, code: str
) -> None:
    url, journal = route
    answer = requests.post(url, data=body, headers={"x-smsc-webhook-key": KEY}, timeout=10)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == code
    assert stored(journal) == 0


class Receiver(BaseHTTPRequestHandler):
    """Records posts; answers from ``statuses`` (then 202)."""

    posts: list[tuple[str, dict[str, str], bytes]] = []  # noqa: RUF012 - reset per test
    statuses: list[int] = []  # noqa: RUF012

    def do_POST(self) -> None:
        size = int(self.headers["content-length"])
        type(self).posts.append((self.path, dict(self.headers), self.rfile.read(size)))
        status = type(self).statuses.pop(0) if type(self).statuses else 202
        self.send_response(status)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.posts, Receiver.statuses = [], []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/webhooks/dataverse"
    server.shutdown()
    server.server_close()


@pytest.fixture
def emulator(installed_emulator_url: str) -> Iterator[tuple[str, DataverseClient]]:
    client = make_client(installed_emulator_url)
    yield installed_emulator_url, client
    client.api.close()


def _message(client: DataverseClient) -> str:
    return client.create("smsc_messages", {"subject": "s", "smsc_direction": 105710001})


def test_registration_is_idempotent_rotates_the_key_and_removes_everything(
    emulator: tuple[str, DataverseClient], receiver: str
) -> None:
    url, client = emulator
    registration = DataverseWebhookRegistration(client)
    created = registration.ensure(receiver, KEY, key_changed=True)
    assert len(created.changes) == 2
    before = changing_requests(url)
    again = registration.ensure(receiver, KEY, key_changed=False)
    assert again.changes == [] and changing_requests(url) == before
    endpoint = next(iter(client.query("serviceendpoints")))
    assert "authvalue" not in endpoint and endpoint["isauthvalueset"] is True

    rotated = registration.ensure(receiver, "new-key", key_changed=True)
    assert rotated.changes == ["updated service endpoint (authvalue)"]
    assert changing_requests(url)["PATCH"] == before["PATCH"] + 1

    client.update("sdkmessageprocessingsteps", str(created.step_id), {"statecode": 1})
    assert registration.ensure(receiver, "new-key", key_changed=False).changes == [
        "updated step (statecode, statuscode)"
    ]
    removed = registration.remove()
    assert len(removed.changes) == 2
    assert list(client.query("serviceendpoints")) == []
    assert list(client.query("sdkmessageprocessingsteps")) == []
    assert registration.remove().changes == []


def test_the_emulator_posts_each_create_with_the_key_and_retries_a_gateway_error(
    emulator: tuple[str, DataverseClient], receiver: str, shared_emulator: Any
) -> None:
    _url, client = emulator
    core = shared_emulator.core
    core.webhooks.retry_delay = 0.0
    DataverseWebhookRegistration(client).ensure(receiver, KEY, key_changed=True)
    Receiver.statuses = [503]
    row_id = _message(client)
    assert core.webhooks.wait_idle()
    assert len(Receiver.posts) == 2  # the 503 got one more attempt
    _path, headers, body = Receiver.posts[-1]
    assert headers["x-smsc-webhook-key"] == KEY
    assert headers["x-ms-dynamics-entity-name"] == "smsc_message"
    assert webhook_event(body).event_id == row_id

    Receiver.posts, Receiver.statuses = [], [500]
    _message(client)
    assert core.webhooks.wait_idle()
    assert len(Receiver.posts) == 1  # other failures are not retried (as in Dataverse)

    Receiver.posts = []
    client.create("contacts", {"lastname": "Not a message"})
    assert core.webhooks.wait_idle() and Receiver.posts == []


def test_a_webhook_key_endpoint_gets_the_key_as_the_code_parameter(
    emulator: tuple[str, DataverseClient], receiver: str, shared_emulator: Any
) -> None:
    _url, client = emulator
    core = shared_emulator.core
    registration = DataverseWebhookRegistration(client)
    report = registration.ensure(receiver, KEY, key_changed=True)
    client.update("serviceendpoints", str(report.endpoint_id), {"authtype": 4, "authvalue": KEY})
    _message(client)
    assert core.webhooks.wait_idle()
    path, headers, _body = Receiver.posts[-1]
    assert path.endswith(f"?code={KEY}") and "x-smsc-webhook-key" not in headers
    registration.remove()
