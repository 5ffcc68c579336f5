"""Provider webhooks are answered in front of the framework, over real HTTP: no middleware,
routing or dependency solving per webhook, the same answers (errors as problem+json, each
with the request id), and a client that hangs up mid-body leaves nothing behind."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import requests
from starlette.types import ASGIApp, Receive, Scope, Send

from connector.api.app import create_app
from connector.api.deps import InboundWebhooks, WebServices
from connector.bootstrap.server_thread import running
from connector.providers.twilio.endpoints import TWILIO_INBOUND_PATH
from connector.providers.twilio.webhook import TWIML_EMPTY, SignatureTokens, TwilioWebhooks
from connector.providers.webhooks import ProviderRegistry
from connector.state.journal import Journal
from connector.state.journal_file import open_journal_store
from connector.testing.signing import inbound_fields, signed_form

PUBLIC = "https://sms.example.com"
TOKEN = "0123456789abcdef0123456789abcdef"
INBOUND_URL = PUBLIC + TWILIO_INBOUND_PATH


class Recorder:
    """An app middleware that notes every path it sees."""

    seen: ClassVar[list[str]] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            Recorder.seen.append(str(scope["path"]))
        await self.app(scope, receive, send)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    journal = Journal(open_journal_store(f"sqlite:///{tmp_path / 'state.db'}"))
    yield journal
    journal.close()
    journal.store.close()


@pytest.fixture
def served(journal: Journal) -> Iterator[str]:
    hooks = InboundWebhooks(
        providers=ProviderRegistry([TwilioWebhooks(SignatureTokens([TOKEN]))]),
        journal=journal,
        public_base_url=PUBLIC,
        max_body_bytes=4096,
    )
    app = create_app(WebServices(webhooks=hooks))
    app.add_middleware(Recorder)
    Recorder.seen = []
    with running(app) as url:
        yield url


def _post(url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(url + TWILIO_INBOUND_PATH, data=body, headers=headers, timeout=10)


def test_a_webhook_skips_the_middleware_stack_and_other_routes_do_not(
    served: str, journal: Journal
) -> None:
    signed = signed_form(INBOUND_URL, inbound_fields("+14155550123", "+14155550100", "hi"), TOKEN)
    answer = _post(served, signed.body, {**signed.headers, "X-Request-ID": "front-1"})
    assert answer.status_code == 200
    assert answer.text == TWIML_EMPTY
    assert answer.headers["content-type"] == "text/xml; charset=utf-8"
    assert answer.headers["X-Request-ID"] == "front-1"
    assert journal.counts().pending == 1
    assert requests.get(served + "/healthz", timeout=10).status_code == 200
    assert Recorder.seen == ["/healthz"]


def test_refusals_are_problem_json_with_the_request_id(served: str, journal: Journal) -> None:
    signed = signed_form(INBOUND_URL, inbound_fields("+14155550123", "+14155550100", "x"), "bad")
    forged = _post(served, signed.body, {**signed.headers, "X-Request-ID": "front-2"})
    assert forged.status_code == 403
    assert forged.headers["content-type"] == "application/problem+json"
    assert forged.json()["code"] == "invalid_signature"
    assert forged.headers["X-Request-ID"] == "front-2"
    unknown = requests.post(served + "/webhooks/acs/messages", data=b"x=1", timeout=10)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "unknown_provider"
    assert len(unknown.headers["X-Request-ID"]) == 16  # a fresh id: the caller sent none
    big = _post(served, b"x=" + b"a" * 5000, {"Content-Type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413
    assert big.json()["code"] == "body_too_large"
    assert journal.counts().pending == 0
    assert Recorder.seen == []


def test_other_methods_and_paths_under_webhooks_are_the_frameworks(served: str) -> None:
    assert requests.get(served + TWILIO_INBOUND_PATH, timeout=10).status_code == 405
    assert requests.post(served + "/webhooks/twilio/other", timeout=10).status_code == 404
    assert Recorder.seen == [TWILIO_INBOUND_PATH, "/webhooks/twilio/other"]


def test_a_process_without_webhooks_answers_503_not_enabled() -> None:
    with running(create_app()) as url:
        answer = requests.post(url + TWILIO_INBOUND_PATH, data=b"x=1", timeout=10)
    assert answer.status_code == 503
    assert answer.json()["code"] == "not_enabled"
    assert answer.headers["X-Request-ID"]


def test_a_client_that_hangs_up_mid_body_leaves_nothing_and_the_server_goes_on(
    served: str, journal: Journal
) -> None:
    signed = signed_form(INBOUND_URL, inbound_fields("+14155550123", "+14155550100", "y"), TOKEN)
    host, port = served.removeprefix("http://").split(":")
    head = [f"POST {TWILIO_INBOUND_PATH} HTTP/1.1", f"Host: {host}"]
    head += [f"Content-Length: {len(signed.body)}"]
    head += [f"{name}: {value}" for name, value in signed.headers.items()]
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + signed.body[:20])
    answer = _post(served, signed.body, signed.headers)  # the whole of it, afterwards
    assert answer.status_code == 200
    assert journal.counts().pending == 1
