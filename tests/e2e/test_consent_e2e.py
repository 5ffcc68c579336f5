"""Consent as a user meets it: `connector serve` as a subprocess, signed inbound webhooks and
the send and consent APIs over HTTP, the Twilio simulator counting what went out, the
consent ledger read back from the Dataverse emulator.

Covers the issue's done-when list: STOP (its webhook delivered three times) refuses a
transactional and a commercial send with nothing reaching the simulator, and is confirmed
exactly once; START lets a transactional send go out; a commercial send without an opt-in is
``consent_missing``; an opt-in request puts a confirmation at the simulator, YES opts in and
the commercial send goes out; a YES after the request expired does not opt in; "please stop
texting me" is stored and flagged with consent unchanged; a commercial send inside the
sender's quiet hours is ``scheduled`` until the window ends and then sent once; a 21610
refusal opts the number out; consent given to sender A does not let sender B send.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet

from connector.bootstrap.local_mode import DEMO_CUSTOMER, DEMO_SENDER
from connector.crm.configuration_store import DataverseConfigurationStore
from connector.dataverse.client import DataverseClient
from connector.domain.model import Provider
from connector.emulators.twilio.engine import SimulatorEngine
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID
from connector.secret_box import SecretBox
from connector.services.setup import SetupRequest, run_setup
from connector.testing.signing import inbound_fields, signed_form
from tests.e2e.conftest import PUBLIC, Emulator
from tests.e2e.test_inbound_e2e import TOKEN, stop, wait_until
from tests.e2e.test_outbound_e2e import (
    KEY,
    _free_port,
    outbound_env,
    send,
    serve_on,
    simulator,  # noqa: F401 - the fixture
    status_of,
)

SENDER_B = "+14155550177"
BOB = "+14155550188"  # never texted before
CAROL = "+14155550199"
DAVE = "+14155550166"
OPTED_OUT_AT_CARRIER = "+15005550004"  # the simulator refuses it with 21610
HEADERS = {"X-API-Key": KEY}


def _quiet_window() -> tuple[str, float]:
    """Quiet hours (UTC) that hold now and end at a minute boundary 20-80 s away."""
    now = datetime.now(UTC)
    end = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    if (end - now).total_seconds() < 20:
        end += timedelta(minutes=1)
    start = end - timedelta(hours=3)
    return f"{start:%H:%M}-{end:%H:%M}", end.timestamp()


def _sender_b(client: DataverseClient, quiet: str) -> str:
    request = SetupRequest(
        sender=SENDER_B,
        provider=Provider.SIMULATOR,
        account_sid=LOCAL_ACCOUNT_SID,
        default_country="US",
        name="Sender B",
        public_base_url=PUBLIC,
    )
    box = SecretBox([Fernet.generate_key().decode()])
    config = run_setup(request, DataverseConfigurationStore(client), box).configuration
    assert config.id is not None
    client.update(
        "smsc_configurations", config.id, {"smsc_quiethours": quiet, "smsc_timezone": "UTC"}
    )
    return config.id


def _text(base: str, sender: str, body: str, customer: str = DEMO_CUSTOMER, times: int = 1) -> str:
    fields = inbound_fields(customer, sender, body)
    signed = signed_form(f"{base}/webhooks/twilio/messages", fields, TOKEN)
    for _ in range(times):
        answer = requests.post(
            f"{base}/webhooks/twilio/messages", data=signed.body, headers=signed.headers, timeout=10
        )
        assert answer.status_code == 200, answer.text
    return dict(fields)["MessageSid"]


def _consent(base: str, phone: str) -> dict[tuple[str, str], str]:
    answer = requests.get(
        f"{base}/api/v1/consent", params={"phone": phone}, headers=HEADERS, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return {(c["configuration_id"], c["purpose"]): c["status"] for c in answer.json()["consents"]}


def _to(engine: SimulatorEngine, phone: str) -> list[str]:
    return [m["body"] for m in engine.snapshot()["messages"] if m["to"] == phone]


def _refused(base: str, body: dict[str, Any]) -> str:
    answer = send(base, body)
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    return str(answer.json()["code"])


def _opt_in(base: str, phone: str, configuration_id: str, **extra: Any) -> dict[str, Any]:
    answer = requests.post(
        f"{base}/api/v1/consent/opt-in",
        json={"phone": phone, "configuration_id": configuration_id, "source": "e2e form"} | extra,
        headers=HEADERS,
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def _message_row(client: DataverseClient, sid: str) -> dict[str, Any] | None:
    rows = list(client.query("smsc_messages", filter=f"smsc_providermessageid eq '{sid}'"))
    return rows[0] if rows else None


@dataclass
class Run:
    base: str
    engine: SimulatorEngine
    client: DataverseClient
    config_a: str
    config_b: str

    def status(self, phone: str, config: str, purpose: str) -> str | None:
        return _consent(self.base, phone).get((config, purpose))

    def to(self, phone: str) -> list[str]:
        return _to(self.engine, phone)


A, B = {"from": DEMO_SENDER}, {"from": SENDER_B}


def _hold_for_quiet_hours(run: Run, window_end: float) -> None:
    """Opted in with B, a commercial send from B waits for the quiet window's end."""
    _opt_in(run.base, CAROL, run.config_b, purpose="commercial")
    wait_until(lambda: len(run.to(CAROL)) == 1, timeout=30)
    _text(run.base, SENDER_B, "yes", customer=CAROL)
    wait_until(lambda: run.status(CAROL, run.config_b, "commercial") == "opted_in")
    held = send(run.base, {"to": CAROL, "body": "Sale tonight", "category": "commercial"} | B)
    assert held.status_code == 202, held.text
    assert held.json()["status"] == "scheduled"
    assert abs(held.json()["send_at"] - window_end) < 1
    scheduled = status_of(run.base, held.json()["id"])
    assert scheduled["status"] == "scheduled" and scheduled["send_at"] is not None


def _stop_then_start(run: Run) -> None:
    """STOP delivered three times: both purposes refused, one confirmation; START again."""
    stop_sid = _text(run.base, DEMO_SENDER, " Stop. ", times=3)
    alice = DEMO_CUSTOMER
    wait_until(lambda: run.status(alice, run.config_a, "transactional") == "opted_out")
    assert _refused(run.base, {"to": alice, "body": "hi"} | A) == "consent_opted_out"
    commercial = {"to": alice, "body": "deal", "category": "commercial"} | A
    assert _refused(run.base, commercial) == "consent_opted_out"
    wait_until(lambda: len(run.to(alice)) == 1, timeout=30)
    time.sleep(1.0)
    confirmations = run.to(alice)
    assert len(confirmations) == 1 and "unsubscribed" in confirmations[0]
    wait_until(lambda: _message_row(run.client, stop_sid) is not None, timeout=30)
    assert _message_row(run.client, stop_sid)["smsc_keyword"] == "STOP"  # type: ignore[index]
    _text(run.base, DEMO_SENDER, "START")
    wait_until(lambda: run.status(alice, run.config_a, "transactional") == "opted_in")
    again = send(run.base, {"to": alice, "body": "welcome back"} | A)
    assert again.status_code == 202, again.text
    wait_until(lambda: "welcome back" in run.to(alice), timeout=30)


def _double_opt_in(run: Run) -> None:
    """Commercial without an opt-in; then the double opt-in; A's consent is not B's."""
    bob_deal = {"to": BOB, "body": "deal", "category": "commercial"}
    assert _refused(run.base, bob_deal | A) == "consent_missing"
    pending = _opt_in(run.base, BOB, run.config_a, purpose="commercial")
    assert pending["status"] == "pending" and pending["confirmation_sent"]
    wait_until(lambda: any("YES" in body for body in run.to(BOB)), timeout=30)
    _text(run.base, DEMO_SENDER, "YES", customer=BOB)
    wait_until(lambda: run.status(BOB, run.config_a, "commercial") == "opted_in")
    assert send(run.base, bob_deal | A).status_code == 202
    wait_until(lambda: "deal" in run.to(BOB), timeout=30)
    assert _refused(run.base, bob_deal | B) == "consent_missing"


def _flagged_not_applied(run: Run) -> None:
    """ "please stop texting me": stored and flagged, consent unchanged."""
    before = _consent(run.base, BOB)
    plea = _text(run.base, DEMO_SENDER, "please stop texting me", customer=BOB)
    wait_until(lambda: _message_row(run.client, plea) is not None, timeout=30)
    row = _message_row(run.client, plea)
    assert row is not None and row["smsc_needsreview"] is True and row["smsc_reviewreason"]
    assert _consent(run.base, BOB) == before


def _carrier_opt_out(run: Run) -> None:
    """A 21610 refusal at the provider opts the number out."""
    refused = send(run.base, {"to": OPTED_OUT_AT_CARRIER, "body": "hello"} | A)
    assert refused.status_code == 202, refused.text
    message_id = refused.json()["id"]
    wait_until(lambda: status_of(run.base, message_id)["status"] == "failed", timeout=30)
    assert status_of(run.base, message_id)["failure"]["category"] == "opted_out"
    wait_until(
        lambda: run.status(OPTED_OUT_AT_CARRIER, run.config_a, "transactional") == "opted_out"
    )
    again = {"to": OPTED_OUT_AT_CARRIER, "body": "x"} | A
    assert _refused(run.base, again) == "consent_opted_out"


def _expired_yes(run: Run, expires_at: float) -> None:
    """A YES after the opt-in request expired does not opt in, and is flagged."""
    wait_until(lambda: time.time() > expires_at + 1, timeout=90)
    late = _text(run.base, DEMO_SENDER, "YES", customer=DAVE)
    wait_until(lambda: _message_row(run.client, late) is not None, timeout=30)
    assert "expired" in str(_message_row(run.client, late)["smsc_reviewreason"])  # type: ignore[index]
    assert run.status(DAVE, run.config_a, "commercial") == "pending"
    dave_deal = {"to": DAVE, "body": "late deal", "category": "commercial"} | A
    assert _refused(run.base, dave_deal) == "consent_missing"


def test_consent_keywords_opt_in_quiet_hours_and_carrier_opt_outs(
    tmp_path: Path,
    emulator: Emulator,
    client: DataverseClient,
    simulator: tuple[SimulatorEngine, str],  # noqa: F811 - the fixture
) -> None:
    engine, simulator_url = simulator
    quiet, window_end = _quiet_window()
    config_b = _sender_b(client, quiet)
    key = f"smsc_senderkey eq '{DEMO_SENDER[1:]}'"
    config_a = next(
        r["smsc_configurationid"] for r in client.query("smsc_configurations", filter=key)
    )
    port = _free_port()
    process, base = serve_on(port, tmp_path, outbound_env(tmp_path, emulator, simulator_url, port))
    run = Run(base, engine, client, config_a, config_b)
    try:
        expiring = _opt_in(base, DAVE, config_a, purpose="commercial", expires_in_minutes=1)
        assert expiring["status"] == "pending"
        _hold_for_quiet_hours(run, window_end)
        _stop_then_start(run)
        _double_opt_in(run)
        _flagged_not_applied(run)
        _carrier_opt_out(run)
        # The quiet window ends: the held message goes out, once.
        wait_until(lambda: "Sale tonight" in run.to(CAROL), timeout=120)
        time.sleep(1.5)
        assert run.to(CAROL).count("Sale tonight") == 1
        assert time.time() >= window_end - 1
        _expired_yes(run, float(expiring["expires_at"]))
        # Dataverse's ledger has the current rows and every change.
        wait_until(lambda: len(list(client.query("smsc_consentchanges"))) >= 10, timeout=30)
        rows = list(client.query("smsc_consents", filter=f"smsc_phone eq '{DEMO_CUSTOMER[1:]}'"))
        assert len(rows) == 2
    finally:
        stop(process)
