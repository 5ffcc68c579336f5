"""Inbound end to end in one process: signed webhook -> journal -> worker -> emulator rows.

Real parts throughout: the connector app and the Dataverse emulator on loopback ports, the
schema installed by the installer, demo data seeded by local mode, the phone index synced,
SQLite state and queue files.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from connector.bootstrap import Connector, build
from connector.bootstrap.local_mode import DEMO_CUSTOMER, DEMO_ROWS, DEMO_SENDER, seed_demo
from connector.bootstrap.server_thread import running
from connector.dataverse.client import DataverseClient
from connector.dataverse.connect import build_client
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.twilio.app import create_simulator_app
from connector.emulators.twilio.engine import SimulatorEngine, SimulatorOptions
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID
from connector.providers.twilio.endpoints import TWILIO_INBOUND_PATH as INBOUND_PATH
from connector.settings import load_settings
from connector.testing.signing import inbound_fields, signed_form

PUBLIC = "https://sms.example.com"
ALICE_ID = next(r.id for r in DEMO_ROWS if r.body.get("firstname") == "Alice")
API_KEY = "test-api-key-123"
TOKEN = "0123456789abcdef0123456789abcdef"


@dataclass
class Stack:
    url: str
    emulator: str
    client: DataverseClient
    runtime: Connector
    simulator: str
    engine: SimulatorEngine

    def send(
        self,
        body: str,
        sid: str | None = None,
        frm: str = DEMO_CUSTOMER,
        media: tuple[tuple[str, str], ...] = (),
    ) -> str:
        fields = inbound_fields(
            frm, DEMO_SENDER, body, message_sid=sid, media=media, account_sid=LOCAL_ACCOUNT_SID
        )
        signed = signed_form(PUBLIC + INBOUND_PATH, fields, TOKEN)
        answer = requests.post(
            self.url + INBOUND_PATH, data=signed.body, headers=signed.headers, timeout=10
        )
        assert answer.status_code == 200, answer.text
        return dict(fields)["MessageSid"]

    def wait_done(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.runtime.journal.counts().done < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.runtime.journal.counts().done == count

    def messages(self) -> list[dict[str, Any]]:
        return list(self.client.query("smsc_messages"))

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = requests.get(f"{self.emulator}/_emulator/stats", timeout=10).json()
        return answer


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    engine = SimulatorEngine(SimulatorOptions(auth_token=TOKEN))
    with (
        running(create_emulator_app()) as emulator,
        running(create_simulator_app(engine)) as simulator,
    ):
        settings = load_settings(
            env={
                "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
                "CONNECTOR_STATE__URL": f"sqlite:///{tmp_path / 'state.db'}",
                "CONNECTOR_DATAVERSE__URL": emulator,
                "CONNECTOR_DATAVERSE__TOKEN": "emulator",
                "CONNECTOR_API__KEYS": API_KEY,
                "CONNECTOR_TWILIO__AUTH_TOKEN": TOKEN,
                "CONNECTOR_TWILIO__ACCOUNT_SID": LOCAL_ACCOUNT_SID,
                "CONNECTOR_TWILIO__API_BASE_URL": simulator,
            }
        )
        client = build_client(settings.dataverse)
        seed_demo(client, PUBLIC)
        connector = build(settings, dataverse=client)
        connector.phone_sync.run(full=True)
        connector.start_worker(threads=2, periodic=False)  # no phone sync in the counts
        with running(connector.app) as url:
            yield Stack(url, emulator, client, connector, simulator, engine)
        connector.close()
        client.api.close()


def test_message_lands_in_a_session_linked_to_the_contact(stack: Stack) -> None:
    sid = stack.send("Is my order ready? 📦")
    stack.wait_done(1)
    (message,) = stack.messages()
    assert message["smsc_providermessageid"] == sid
    assert message["smsc_body"] == "Is my order ready? 📦"
    assert message["_regardingobjectid_value"] == ALICE_ID
    session = stack.client.retrieve("smsc_sessions", message["_smsc_sessionid_value"])
    assert session["_regardingobjectid_value"] == ALICE_ID
    assert session["smsc_customerphone"] == DEMO_CUSTOMER
    assert session["smsc_unreadcount"] == 1


def test_webhook_sent_three_times_yields_one_message(stack: Stack) -> None:
    sid = stack.send("once")
    stack.send("once", sid=sid)
    stack.send("once", sid=sid)
    stack.wait_done(1)
    counts = stack.runtime.journal.counts()  # the repeats were never journaled: nothing to come
    assert (counts.pending, counts.done, counts.error) == (0, 1, 0)
    assert [m["smsc_providermessageid"] for m in stack.messages()] == [sid]


def test_steady_state_costs_at_most_one_dataverse_request_per_message(stack: Stack) -> None:
    stack.send("first opens the session")
    stack.wait_done(1)
    before = stack.stats()["requests"]
    for n in range(5):
        stack.send(f"follow-up {n}")
    stack.wait_done(6)
    assert 1 <= stack.stats()["requests"] - before <= 5  # messages that queue share a $batch
    sessions = list(stack.client.query("smsc_sessions"))
    assert len(sessions) == 1 and sessions[0]["smsc_unreadcount"] == 6


def test_accept_makes_the_agent_the_owner(stack: Stack) -> None:
    stack.send("who is there?")
    stack.wait_done(1)
    (message,) = stack.messages()
    session_id = message["_smsc_sessionid_value"]
    user = "00000000-0000-0000-0000-00000000aa01"
    answer = requests.post(
        f"{stack.url}/api/v1/sessions/{session_id}/accept",
        json={"user_id": user},
        headers={"X-API-Key": API_KEY},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["acceptance"] == "accepted"
    row = stack.client.retrieve("smsc_sessions", session_id)
    assert row["_ownerid_value"] == user
    assert row["smsc_acceptance"] == 105710001
    unauthorized = requests.post(
        f"{stack.url}/api/v1/sessions/{session_id}/block", json={"user_id": user}, timeout=10
    )
    assert unauthorized.status_code == 401


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("accept", {"user_id": "00000000-0000-0000-0000-0000000000ff"}),
        ("assign", {"owner_id": "00000000-0000-0000-0000-0000000000fe", "owner_type": "team"}),
        ("block", {"user_id": "00000000-0000-0000-0000-0000000000fd"}),
    ],
)
def test_action_naming_an_unknown_user_or_team_is_refused_and_changes_nothing(
    stack: Stack, action: str, body: dict[str, str]
) -> None:
    stack.send("first")
    stack.wait_done(1)
    (message,) = stack.messages()
    session_id = message["_smsc_sessionid_value"]
    before = stack.client.retrieve("smsc_sessions", session_id)
    local_before = stack.runtime.sessions.get(session_id)
    answer = requests.post(
        f"{stack.url}/api/v1/sessions/{session_id}/{action}",
        json=body,
        headers={"X-API-Key": API_KEY},
        timeout=10,
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "unknown_reference"
    assert stack.runtime.sessions.get(session_id) == local_before
    after = stack.client.retrieve("smsc_sessions", session_id)
    assert after["_ownerid_value"] == before["_ownerid_value"]
    assert after["smsc_acceptance"] == before["smsc_acceptance"]
    stack.send("second")  # the conversation goes on: written, not parked
    stack.wait_done(2)
    assert stack.runtime.journal.counts().error == 0
    assert len(stack.messages()) == 2


def _send_mms(stack: Stack) -> tuple[str, bytes]:
    path = f"/2010-04-01/Accounts/{LOCAL_ACCOUNT_SID}/Messages/MM1/Media/ME0123"
    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    stack.engine.host_media(path, "image/png", picture)
    outside = "https://evil.example.com/steal.png"
    media = ((stack.simulator + path, "image/png"), (outside, "image/png"))
    return stack.send("photo 📷", media=media), picture


def test_mms_message_is_stored_even_when_dataverse_refuses_its_notes(stack: Stack) -> None:
    sid, _ = _send_mms(stack)
    stack.wait_done(1)
    (message,) = stack.messages()
    assert message["smsc_providermessageid"] == sid
    assert message["smsc_body"] == "photo 📷"
    assert stack.runtime.journal.counts().error == 0


def test_mms_media_is_stored_as_a_note_of_the_message(stack: Stack) -> None:
    _, picture = _send_mms(stack)
    stack.wait_done(1)
    (message,) = stack.messages()
    notes = list(stack.client.query("annotations"))
    assert len(notes) == 1
    assert notes[0]["_objectid_value"] == message["activityid"]
    assert notes[0]["mimetype"] == "image/png"
    assert base64.b64decode(notes[0]["documentbody"]) == picture


def test_export_filters_by_session_and_time(stack: Stack) -> None:
    from datetime import UTC, datetime, timedelta

    from connector.crm.message_export import DataverseMessageArchive

    stack.send("first =cmd")
    stack.send("second")
    stack.wait_done(2)
    archive = DataverseMessageArchive(stack.client)
    rows = list(archive.messages())
    assert sorted(r.message for r in rows) == ["first =cmd", "second"]  # same second
    assert {r.full_name for r in rows} == {"Alice Nguyen"}
    assert {(r.direction, r.status, r.regarding_type) for r in rows} == {
        ("Inbound", "Received", "contact")
    }
    session = rows[0].thread_id
    assert len(list(archive.messages(session_id=session))) == 2
    other = "00000000-0000-0000-0000-000000000999"
    assert list(archive.messages(session_id=other)) == []
    later = datetime.now(UTC) + timedelta(hours=1)
    assert list(archive.messages(since=later)) == []


def test_metrics_show_webhook_outcomes_and_journal_rows(stack: Stack) -> None:
    stack.send("counted")
    fields = inbound_fields(DEMO_CUSTOMER, DEMO_SENDER, "forged")
    forged = signed_form(PUBLIC + INBOUND_PATH, fields, "not-the-token")
    requests.post(stack.url + INBOUND_PATH, data=forged.body, headers=forged.headers, timeout=10)
    stack.wait_done(1)
    text = requests.get(f"{stack.url}/metrics", timeout=10).text
    assert 'connector_webhooks_total{outcome="accepted"} 1.0' in text
    assert 'connector_webhooks_total{outcome="forged"} 1.0' in text
    assert 'connector_journal_rows{status="done"} 1.0' in text
