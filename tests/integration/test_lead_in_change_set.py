"""An unknown number's lead is created by the change set of its first message (issue 19).

The lead's id is derived from (configuration, number), so the message binds to it in the same
change set and costs no request of its own; racing messages converge on the one row, and a
lead that exists already (made by an earlier attempt, or edited by a seller) is never
overwritten: its create-only write answers 412 and the message is written again without it.
Runs the whole connector (webhook, journal, worker) against the Dataverse emulator.
"""

from __future__ import annotations

from typing import Any

from connector.domain.conversation import lead_id
from tests.integration.test_webhook_emulator import Stack, stack

__all__ = ["stack"]  # the fixture, imported for pytest

UNKNOWN = "+14155550188"


def _config_id(stack: Stack) -> str:
    (config,) = stack.client.query("smsc_configurations")
    return str(config["smsc_configurationid"])


def _leads(stack: Stack) -> list[dict[str, Any]]:
    return [
        row
        for row in stack.client.query("leads", select=["leadid", "lastname", "mobilephone"])
        if row.get("mobilephone") == UNKNOWN or row["leadid"] == lead_id(_config_id(stack), UNKNOWN)
    ]


def test_first_text_from_an_unknown_number_writes_its_lead_in_the_same_batch(
    stack: Stack,
) -> None:
    stack.send("a known customer first: the caches are warm")
    stack.wait_done(1)
    before = stack.stats()
    stack.send("hello, who is this?", frm=UNKNOWN)
    stack.wait_done(2)
    first = stack.stats()
    stack.send("and again", frm=UNKNOWN)
    stack.wait_done(3)
    second = stack.stats()
    # the live lookup and the message's $batch: no lead create of its own
    assert first["requests"] - before["requests"] == 2
    assert second["requests"] - first["requests"] == 1  # the index knows the lead now
    (lead,) = _leads(stack)
    assert lead["leadid"] == lead_id(_config_id(stack), UNKNOWN)
    assert (lead["lastname"], lead["mobilephone"]) == (UNKNOWN, UNKNOWN)
    regarding = [m["_regardingobjectid_value"] for m in stack.messages()]
    assert regarding.count(lead["leadid"]) == 2


def test_three_messages_from_an_unknown_number_at_once_make_one_lead(stack: Stack) -> None:
    sids = {stack.send(f"message {n}", frm=UNKNOWN) for n in range(3)}
    stack.wait_done(3)
    (lead,) = _leads(stack)
    messages = stack.messages()
    assert {m["smsc_providermessageid"] for m in messages} == sids
    assert {m["_regardingobjectid_value"] for m in messages} == {lead["leadid"]}
    counts = stack.runtime.journal.counts()
    assert (counts.pending, counts.error) == (0, 0)


def test_a_lead_that_exists_already_is_never_written_over(stack: Stack) -> None:
    """The derived lead exists but the phone index does not know it under this number (a
    seller renamed and renumbered it): the message still lands on it, the seller's edits stay."""
    derived = lead_id(_config_id(stack), UNKNOWN)
    stack.client.upsert("leads", derived, {"lastname": "Renamed by a seller", "subject": "Mine"})
    stack.send("still me", frm=UNKNOWN)
    stack.wait_done(1)
    row = stack.client.retrieve("leads", derived)
    assert (row["lastname"], row.get("mobilephone"), row["subject"]) == (
        "Renamed by a seller",
        None,
        "Mine",
    )
    (message,) = stack.messages()
    assert message["_regardingobjectid_value"] == derived
    assert stack.runtime.journal.counts().error == 0
