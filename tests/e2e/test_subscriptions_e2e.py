"""Webhook triggers as a subscriber meets them: a local HTTP receiver subscribes over the API of
``connector serve`` (a subprocess), a signed Twilio webhook and a send through the simulator
make the events.

The issue's done-when: the inbound message reaches the receiver with the message, the
resolved record and the session id and a valid HMAC; a receiver answering 500 twice gets it
on the third try (the same event id each time); after ``DELETE`` it gets nothing; a status
subscription sees ``sent`` then ``delivered``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from connector.bootstrap.local_mode import DEMO_CUSTOMER, DEMO_SENDER
from connector.domain.events import verify
from connector.emulators.twilio.engine import SimulatorEngine
from connector.state.db import StateStore
from connector.state.subscriptions import deliveries_table
from connector.testing.signing import inbound_fields, signed_form
from tests.e2e.conftest import Emulator
from tests.e2e.test_inbound_e2e import ALICE_ID, TOKEN, journal_rows, stop, wait_until
from tests.e2e.test_outbound_e2e import KEY, _free_port, outbound_env, serve_on, simulator

__all__ = ["simulator"]  # the fixture, used by name
SECRET = "status-subscriber-secret-0123456789"


@dataclass
class Receiver:
    """Records every POST; answers each path from its script (then 200)."""

    script: dict[str, list[int]] = field(default_factory=dict)
    posts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def on(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        return [(headers, body) for p, headers, body in list(self.posts) if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.posts.append((self.path, dict(self.headers.items()), body))
            script = state.script.get(self.path) or []
            self.send_response(script.pop(0) if script else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _pending_deliveries(env: dict[str, str]) -> int:
    store = StateStore.from_url(env["CONNECTOR_STATE__URL"])
    try:
        with store.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(deliveries_table)).scalar() or 0
            )
    finally:
        store.close()


def _inbound(base: str, text: str) -> str:
    fields = inbound_fields(DEMO_CUSTOMER, DEMO_SENDER, text)
    signed = signed_form(f"{base}/webhooks/twilio/messages", fields, TOKEN)
    answer = requests.post(
        f"{base}/webhooks/twilio/messages", data=signed.body, headers=signed.headers, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return dict(fields)["MessageSid"]


def test_subscribers_get_signed_events_once_retried_in_order_and_none_after_unsubscribing(
    tmp_path: Path,
    emulator: Emulator,
    simulator: tuple[SimulatorEngine, str],
    receiver: Receiver,
) -> None:
    _, simulator_url = simulator
    port = _free_port()
    # subscription secrets and callback URLs are stored encrypted with these keys
    keys = {"CONNECTOR_SECRET_KEYS": Fernet.generate_key().decode()}
    env = outbound_env(tmp_path, emulator, simulator_url, port) | keys
    process, base = serve_on(port, tmp_path, env)
    headers = {"X-API-Key": KEY}
    try:
        receiver.script["/inbound"] = [500, 500]
        made = requests.post(
            f"{base}/api/v1/subscriptions/sms-received",
            json={"callback_url": f"{receiver.url}/inbound"},
            headers=headers,
            timeout=10,
        )
        assert made.status_code == 201, made.text
        location, secret = made.headers["Location"], made.json()["secret"]
        assert location.endswith(f"/api/v1/subscriptions/{made.json()['id']}")
        status_sub = requests.post(
            f"{base}/api/v1/subscriptions",
            json={
                "event": "message.status_changed",
                "callback_url": f"{receiver.url}/status",
                "secret": SECRET,
            },
            headers=headers,
            timeout=10,
        )
        assert status_sub.status_code == 201, status_sub.text

        sid = _inbound(base, "Is my order ready?")
        wait_until(lambda: len(receiver.on("/inbound")) >= 3, timeout=90)
        tries = receiver.on("/inbound")
        assert len({h["X-Connector-Event-Id"] for h, _ in tries}) == 1  # one event, 3 tries
        last_headers, body = tries[-1]
        assert verify(
            secret,
            last_headers["X-Connector-Timestamp"],
            body,
            last_headers["X-Connector-Signature"],
        )
        event = json.loads(body)
        assert event["type"] == "sms.received"
        data = event["data"]
        assert data["provider_message_id"] == sid and data["body"] == "Is my order ready?"
        assert data["regarding"] == {"table": "contact", "id": ALICE_ID}
        assert data["session_id"] and data["from"] == DEMO_CUSTOMER

        sent = requests.post(
            f"{base}/api/v1/messages",
            json={"to": DEMO_CUSTOMER, "body": "Yes, it is."},
            headers=headers,
            timeout=10,
        )
        assert sent.status_code == 202, sent.text
        message_id = sent.json()["id"]

        def statuses() -> list[str]:
            found = [json.loads(b)["data"] for _, b in receiver.on("/status")]
            return [d["status"] for d in found if d["message_id"] == message_id]

        wait_until(lambda: "delivered" in statuses(), timeout=90)
        assert statuses() == ["sent", "delivered"]
        for hdrs, raw in receiver.on("/status"):
            assert verify(SECRET, hdrs["X-Connector-Timestamp"], raw, hdrs["X-Connector-Signature"])
        assert json.loads(receiver.on("/status")[0][1])["data"]["session_id"] == data["session_id"]

        gone = requests.delete(location, headers=headers, timeout=10)
        assert gone.status_code == 204, gone.text
        assert requests.delete(location, headers=headers, timeout=10).status_code == 404
        _inbound(base, "One more thing")
        wait_until(lambda: journal_rows(env).get("pending", 0) == 0, timeout=60)
        wait_until(lambda: _pending_deliveries(env) == 0, timeout=60)
        assert len(receiver.on("/inbound")) == 3
    finally:
        stop(process)
