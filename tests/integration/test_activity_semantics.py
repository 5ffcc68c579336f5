"""Message and session activities in Dynamics, against the emulator over HTTP: parties, times
and completion of messages (inbound through the running service, outbound through the
writer), unread reset on accept, sessions closed by their timeout (the sweep) or by an agent,
and a message after the end opening a new session."""

from __future__ import annotations

import time
from typing import Any

import requests

from connector.bootstrap.local_mode import DEMO_CUSTOMER, DEMO_SENDER
from connector.crm.outbound_rows import DataverseOutbound
from connector.domain.conversation import InboundWrite, ReceivedMessage
from connector.domain.outbound import OutboundMessage
from connector.domain.status import MessageStatus
from connector.services.session_closing import SessionClosing
from tests.integration.test_webhook_emulator import ALICE_ID, API_KEY, Stack, stack

__all__ = ["stack"]  # the fixture, imported for pytest

SENDER_PARTY, TO_PARTY = 1, 2


def _parties(stack: Stack, activity_id: str) -> dict[int, tuple[Any, Any]]:
    rows = stack.client.query("activityparties", filter=f"_activityid_value eq {activity_id}")
    return {
        r["participationtypemask"]: (r.get("_partyid_value"), r.get("addressused")) for r in rows
    }


def _configuration_owner(stack: Stack) -> str:
    (config,) = stack.client.query("smsc_configurations")
    return str(config["_ownerid_value"])


def _inbound(stack: Stack, body: str, count: int) -> dict[str, Any]:
    sid = stack.send(body)
    stack.wait_done(count)
    (row,) = [m for m in stack.messages() if m["smsc_providermessageid"] == sid]
    return row


def _act(stack: Stack, session_id: str, action: str) -> dict[str, Any]:
    answer = requests.post(
        f"{stack.url}/api/v1/sessions/{session_id}/{action}",
        json={"user_id": "00000000-0000-0000-0000-00000000aa01"},
        headers={"X-API-Key": API_KEY},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_an_inbound_message_is_completed_with_its_parties_and_times(stack: Stack) -> None:
    message = _inbound(stack, "Is my order ready?", 1)
    assert (message["statecode"], message["statuscode"]) == (1, 2)
    assert message["actualstart"] and message["actualend"]
    parties = _parties(stack, message["activityid"])
    assert parties[SENDER_PARTY] == (ALICE_ID, DEMO_CUSTOMER)
    assert parties[TO_PARTY] == (_configuration_owner(stack), DEMO_SENDER)
    session = stack.client.retrieve("smsc_sessions", message["_smsc_sessionid_value"])
    assert (session["statecode"], session["smsc_isopen"]) == (0, True)
    assert session["actualstart"]


def test_a_replayed_inbound_write_of_a_completed_message_changes_nothing(stack: Stack) -> None:
    message = _inbound(stack, "hello", 1)
    session = stack.runtime.sessions.get(message["_smsc_sessionid_value"])
    assert session is not None

    received = ReceivedMessage(
        message["smsc_providermessageid"], "AC", DEMO_CUSTOMER, DEMO_SENDER, "hello", time.time()
    )
    write = InboundWrite(session, received, "contact", ALICE_ID)
    stack.runtime.writer.write_inbound(write)  # the same change set again: no refusal
    again = stack.client.retrieve("smsc_messages", message["activityid"])
    assert (again["statecode"], again["statuscode"]) == (1, 2)
    assert len(_parties(stack, message["activityid"])) == 2


def test_accepting_resets_the_unread_count(stack: Stack) -> None:
    message = _inbound(stack, "one", 1)
    _inbound(stack, "two", 2)
    session_id = message["_smsc_sessionid_value"]
    assert stack.client.retrieve("smsc_sessions", session_id)["smsc_unreadcount"] == 2
    assert _act(stack, session_id, "accept")["unread"] == 0
    assert stack.client.retrieve("smsc_sessions", session_id)["smsc_unreadcount"] == 0


def test_an_outbound_message_is_open_until_sent_and_stays_completed_as_callbacks_come(
    stack: Stack,
) -> None:
    first = _inbound(stack, "please call", 1)
    session_id = first["_smsc_sessionid_value"]
    writer = DataverseOutbound(stack.client)
    now = time.time()
    queued = OutboundMessage(
        id="6a0b7c1e-0000-4000-8000-000000000001",
        configuration_id=str(first["_smsc_configurationid_value"]),
        to_number=DEMO_CUSTOMER,
        from_number=DEMO_SENDER,
        body="On it",
        session_id=session_id,
        created_at=now,
        regarding_table="contact",
        regarding_id=ALICE_ID,
        sender_user=_configuration_owner(stack),
    )
    assert writer.write_outbound_many([(queued, None)]) == [None]
    row = stack.client.retrieve("smsc_messages", queued.id)
    assert (row["statecode"], row["statuscode"]) == (0, 1)
    sent = queued.with_status(MessageStatus.SENT, now + 1, provider_id="SM" + "1" * 32)
    delivered = sent.with_status(MessageStatus.DELIVERED, now + 2) if sent else None
    assert sent is not None and delivered is not None
    assert writer.write_outbound_many([(sent, None)]) == [None]
    assert writer.write_outbound_many([(delivered, None)]) == [None]  # on a completed row
    row = stack.client.retrieve("smsc_messages", queued.id)
    assert (row["statecode"], row["statuscode"], row["smsc_status"]) == (1, 2, 105710003)
    assert row["actualend"]
    parties = _parties(stack, queued.id)
    assert parties[SENDER_PARTY] == (_configuration_owner(stack), DEMO_SENDER)
    assert parties[TO_PARTY] == (ALICE_ID, DEMO_CUSTOMER)


def test_a_timed_out_session_is_closed_by_the_sweep_and_the_next_message_opens_another(
    stack: Stack,
) -> None:
    first = _inbound(stack, "before", 1)
    session_id = first["_smsc_sessionid_value"]
    later = time.time() + 25 * 3600  # past the demo configuration's 24 h session timeout
    sweep = SessionClosing(stack.runtime.sessions, stack.runtime.writer, clock=lambda: later)
    assert sweep.sweep().closed == 1
    assert sweep.sweep().closed == 0  # closed once
    row = stack.client.retrieve("smsc_sessions", session_id)
    assert (row["statecode"], row["statuscode"], row["smsc_isopen"]) == (1, 2, False)
    assert row["actualend"] and row["smsc_endedon"]
    local = stack.runtime.sessions.get(session_id)
    assert local is not None and local.closed_at == local.expires_at
    assert _act(stack, session_id, "accept")["closed"] is True  # acting on it keeps it closed
    assert stack.client.retrieve("smsc_sessions", session_id)["statecode"] == 1


def test_an_agent_closes_a_session_and_the_next_message_opens_a_new_one(stack: Stack) -> None:
    first = _inbound(stack, "thanks, that is all", 1)
    session_id = first["_smsc_sessionid_value"]
    assert _act(stack, session_id, "close")["closed"] is True
    row = stack.client.retrieve("smsc_sessions", session_id)
    assert (row["statecode"], row["smsc_isopen"]) == (1, False)
    second = _inbound(stack, "one more thing", 2)
    assert second["_smsc_sessionid_value"] != session_id
    new = stack.client.retrieve("smsc_sessions", second["_smsc_sessionid_value"])
    assert (new["statecode"], new["smsc_isopen"]) == (0, True)
    local = stack.runtime.sessions.get(session_id)
    assert local is not None and local.closed_at is not None
