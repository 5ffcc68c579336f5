"""Who did what, end to end over HTTP: Entra user tokens, CallerObjectId, Dataverse decides.

The emulator's token service issues the agents' tokens and publishes the keys (found through
the issuer's metadata); the emulator runs writes carrying ``CallerObjectId`` as that user
with an ownership check. An agent who does not own the conversation cannot accept or move it
(403 problem+json, nothing changed in Dataverse); its owner can, and the emulator's record of
the writes names the owner.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from connector.bootstrap import build
from connector.bootstrap.local_mode import seed_demo
from connector.bootstrap.server_thread import running
from connector.dataverse.connect import build_client
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.token_service import TokenService
from connector.emulators.twilio.app import create_simulator_app
from connector.emulators.twilio.engine import SimulatorEngine, SimulatorOptions
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID
from connector.settings import load_settings
from tests.integration.test_webhook_emulator import API_KEY, PUBLIC, TOKEN, Stack

TENANT = "11111111-2222-3333-4444-555555555555"
AUDIENCE = "aaaaaaaa-0000-0000-0000-000000000001"
OWNER_OID = "0f0f0f0f-1111-2222-3333-000000000001"
OTHER_OID = "0f0f0f0f-1111-2222-3333-000000000002"


class EntraStack(Stack):
    tokens: TokenService

    def token(
        self, object_id: str, audience: str = AUDIENCE, scope: str | None = "access_as_user"
    ) -> str:
        return self.tokens.user_token(
            f"{self.emulator}/{TENANT}/v2.0", audience, object_id, scope=scope
        )

    def post(self, path: str, token: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(
            f"{self.url}/api/v1/sessions/{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )

    def callers(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = requests.get(
            f"{self.emulator}/_emulator/callers", timeout=10
        ).json()
        return found


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[EntraStack]:
    engine = SimulatorEngine(SimulatorOptions(auth_token=TOKEN))
    tokens = TokenService()
    with (
        running(create_emulator_app(tokens=tokens)) as emulator,
        running(create_simulator_app(engine)) as simulator,
    ):
        settings = load_settings(
            env={
                "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
                "CONNECTOR_STATE__URL": f"sqlite:///{tmp_path / 'state.db'}",
                "CONNECTOR_DATAVERSE__URL": emulator,
                "CONNECTOR_DATAVERSE__TOKEN": "emulator",
                "CONNECTOR_API__KEYS": API_KEY,
                "CONNECTOR_API__ENTRA_ISSUER": f"{emulator}/{TENANT}/v2.0",
                "CONNECTOR_API__ENTRA_AUDIENCE": AUDIENCE,
                "CONNECTOR_TWILIO__AUTH_TOKEN": TOKEN,
                "CONNECTOR_TWILIO__ACCOUNT_SID": LOCAL_ACCOUNT_SID,
                "CONNECTOR_TWILIO__API_BASE_URL": simulator,
            }
        )
        client = build_client(settings.dataverse)
        seed_demo(client, PUBLIC)
        connector = build(settings, dataverse=client)
        connector.phone_sync.run(full=True)
        connector.start_worker(threads=2, periodic=False)
        with running(connector.app) as url:
            stack = EntraStack(url, emulator, client, connector, simulator, engine)
            stack.tokens = tokens
            yield stack
        connector.close()
        client.api.close()


def _conversation(stack: EntraStack) -> tuple[str, str]:
    """A conversation (session id) and its owner, who gets ``OWNER_OID``; plus another agent."""
    stack.send("Is my order ready?")
    stack.wait_done(1)
    (message,) = stack.messages()
    session_id = str(message["_smsc_sessionid_value"])
    owner = str(stack.client.retrieve("smsc_sessions", session_id)["_ownerid_value"])
    stack.client.update("systemusers", owner, {"azureactivedirectoryobjectid": OWNER_OID})
    other = stack.client.create(
        "systemusers",
        {
            "firstname": "Olga",
            "lastname": "Other",
            "azureactivedirectoryobjectid": OTHER_OID,
            "isdisabled": False,
        },
    )
    assert other != owner
    return session_id, owner


def _session_row(stack: EntraStack, session_id: str) -> dict[str, Any]:
    row = stack.client.retrieve("smsc_sessions", session_id)
    return {k: v for k, v in row.items() if not k.startswith("@")}


def test_an_agent_who_does_not_own_the_conversation_cannot_accept_or_move_it(
    stack: EntraStack,
) -> None:
    session_id, _owner = _conversation(stack)
    before = _session_row(stack, session_id)
    messages_before = stack.messages()
    lead = stack.client.create("leads", {"lastname": "Prospect", "subject": "SMS"})
    other = stack.token(OTHER_OID)

    accepted = stack.post(f"{session_id}/accept", other, {})
    moved = stack.post(f"{session_id}/move", other, {"table": "lead", "id": lead})

    for refused in (accepted, moved):
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "forbidden"
    assert _session_row(stack, session_id) == before
    assert stack.messages() == messages_before
    assert stack.callers() == []  # no write went through on the agent's behalf


def test_the_owner_accepts_and_moves_and_the_writes_name_the_owner(stack: EntraStack) -> None:
    session_id, owner = _conversation(stack)
    lead = stack.client.create("leads", {"lastname": "Prospect", "subject": "SMS"})
    token = stack.token(OWNER_OID)
    somebody_else = "00000000-0000-0000-0000-0000000000ff"

    accepted = stack.post(f"{session_id}/accept", token, {"user_id": somebody_else})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["owner_id"] == owner  # the token's user, not the body's
    moved = stack.post(f"{session_id}/move", token, {"table": "lead", "id": lead})
    assert moved.status_code == 200, moved.text

    assert _session_row(stack, session_id)["_regardingobjectid_value"] == lead
    callers = stack.callers()
    assert callers
    assert {c["caller"] for c in callers} == {owner}
    assert any(c["table"] == "smsc_session" and c["record_id"] == session_id for c in callers)


def test_bad_tokens_are_401_problems_and_api_keys_still_act_as_the_connector(
    stack: EntraStack,
) -> None:
    session_id, _owner = _conversation(stack)
    wrong_audience = stack.post(
        f"{session_id}/accept", stack.token(OTHER_OID, audience="api://other"), {}
    )
    assert wrong_audience.status_code == 401
    assert wrong_audience.headers["content-type"].startswith("application/problem+json")
    assert wrong_audience.json()["code"] == "unauthorized"
    assert stack.post(f"{session_id}/accept", "garbage", {}).status_code == 401
    before = _session_row(stack, session_id)
    for scope in (None, "User.Read"):  # the owner's token, but not for acting through this API
        unscoped = stack.post(f"{session_id}/accept", stack.token(OWNER_OID, scope=scope), {})
        assert unscoped.status_code == 403, unscoped.text
        assert unscoped.headers["content-type"].startswith("application/problem+json")
        assert unscoped.json()["code"] == "insufficient_scope"
        assert "access_as_user" in unscoped.json()["detail"]
    assert _session_row(stack, session_id) == before

    by_key = requests.post(
        f"{stack.url}/api/v1/sessions/{session_id}/accept",
        json={"user_id": "00000000-0000-0000-0000-00000000aa01"},
        headers={"X-API-Key": API_KEY},
        timeout=10,
    )
    assert by_key.status_code == 200, by_key.text
    assert stack.callers() == []  # the connector's own writes impersonate nobody


def test_a_user_token_cannot_use_what_acts_as_the_connector(stack: EntraStack) -> None:
    """Sending, consent, bulk, reads and subscriptions run with the connector's own rights:
    a user's token is refused there (403) instead of lending them those rights."""
    _conversation(stack)  # the owner is a user of this environment
    sent_before = len(stack.engine.snapshot()["messages"])
    token = {"Authorization": f"Bearer {stack.token(OWNER_OID)}"}
    attempts = [
        ("POST", "/api/v1/messages", {"to": "+14155550123", "body": "hi"}),
        ("GET", "/api/v1/consent?phone=%2B14155550123", None),
        ("GET", "/api/v1/sessions", None),
        ("POST", "/api/v1/subscriptions", {"event": "sms.received", "url": "https://x.example"}),
    ]
    for method, path, body in attempts:
        answer = requests.request(method, stack.url + path, json=body, headers=token, timeout=10)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["code"] == "api_key_required"
    assert len(stack.engine.snapshot()["messages"]) == sent_before
