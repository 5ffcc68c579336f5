"""Move a conversation in the running service: later replies follow the move.

The whole inbound stack of ``test_webhook_emulator`` (signed webhook, journal, worker, the
emulator with the schema and demo rows, the synced phone index): a message lands on the demo
contact, an agent moves the conversation to a lead, and the next message from the number,
in the same open session, lands on the lead; so do the earlier ones, re-linked.
"""

from __future__ import annotations

import requests

from tests.integration.test_webhook_emulator import ALICE_ID, API_KEY, Stack, stack

__all__ = ["stack"]  # the fixture, imported for pytest


def test_move_relinks_history_and_the_next_reply_follows(stack: Stack) -> None:
    stack.send("first, lands on Alice")
    stack.wait_done(1)
    (first,) = stack.messages()
    session_id = first["_smsc_sessionid_value"]
    assert first["_regardingobjectid_value"] == ALICE_ID
    lead = stack.client.create("leads", {"lastname": "Moved", "subject": "moved here"})
    answer = requests.post(
        f"{stack.url}/api/v1/sessions/{session_id}/move",
        json={"table": "lead", "id": lead},
        headers={"X-API-Key": API_KEY},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["previous"], body["regarding"]) == (f"contact:{ALICE_ID}", f"lead:{lead}")
    assert body["messages_moved"] == 1
    stack.send("second, after the move")
    stack.wait_done(2)
    messages = stack.messages()
    assert len(messages) == 2
    assert {m["_regardingobjectid_value"] for m in messages} == {lead}
    assert {m["_smsc_sessionid_value"] for m in messages} == {session_id}
    session = stack.client.retrieve("smsc_sessions", session_id)
    assert session["_regardingobjectid_value"] == lead
