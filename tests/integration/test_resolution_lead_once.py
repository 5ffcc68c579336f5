"""First messages from an unknown number, resolved and written at once, make one lead.

Runs the resolver on a SQLite file and on a real PostgreSQL server, and writes each message's
change set to the Dataverse emulator from its own thread at the same moment. Nothing in the
state store arbitrates: the lead's id is derived from (configuration, number), every message
creates it create-only (``If-None-Match: *``) in its own change set, one wins, and the others'
412 makes them write again without the lead, bound to the same row. Two first messages in
ONE ``$batch`` (a new number that texted twice) create the lead once, in one request; should
the first one's change set fail, the second still creates it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import requests

from connector.bootstrap.local_mode import DEMO_SENDER, seed_demo
from connector.crm.conversations import DataverseConversations
from connector.crm.phone_directory import DataversePhoneDirectory
from connector.dataverse.client import DataverseClient
from connector.domain.conversation import (
    InboundWrite,
    NewLead,
    ReceivedMessage,
    lead_id,
    open_session,
)
from connector.domain.phone import lookup_key, search_variants
from connector.domain.record_types import default_specs
from connector.domain.routing import RecordRef, SenderContext
from connector.services.phone_sync import PhoneSync
from connector.services.resolution import RecordResolutionService
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex
from connector.state.resolution_ledger import ResolutionLedger
from connector.testing.emulator_client import emulator_client

PHONE = "+14155550177"


def test_three_simultaneous_messages_create_exactly_one_lead(
    state_url: str, installed_emulator_url: str
) -> None:
    setup = emulator_client(installed_emulator_url)
    config_id = seed_demo(setup, None)
    owner = str(setup.retrieve("smsc_configurations", config_id)["_ownerid_value"])
    sender = SenderContext(configuration_id=config_id, owner_id=owner, default_country="US")
    store = StateStore.from_url(state_url)
    index = PhoneIndex(store)
    directory = DataversePhoneDirectory(setup)
    PhoneSync(directory, index, lookup_key).run(default_specs("US"), "US", full=True)
    resolver = RecordResolutionService(
        index,
        ResolutionLedger(store),
        directory,
        lookup_key=lookup_key,
        variants=search_variants,
        normalize=lookup_key,
    )
    start, write_now = threading.Barrier(3), threading.Barrier(3)

    def worker(n: int) -> tuple[RecordRef | None, Exception | None]:
        client: DataverseClient = emulator_client(installed_emulator_url)
        try:
            start.wait(timeout=30)
            record = resolver.resolve(PHONE, sender).record
            assert record is not None
            message = ReceivedMessage(f"SMlead{n}", "AC", PHONE, DEMO_SENDER, "hi", time.time())
            session = open_session(message, config_id, 30, None, (owner, False))
            write = InboundWrite(
                session,
                message,
                record.table,
                record.id,
                recipient_user=owner,
                new_lead=resolver.new_lead(PHONE, sender, record),
            )
            assert write.new_lead is not None  # nobody has written it yet
            write_now.wait(timeout=30)
            (error,) = DataverseConversations(client).write_inbound_many([write])
            if error is None:
                resolver.lead_written(write.new_lead)
            return record, error
        finally:
            client.api.close()

    with ThreadPoolExecutor(3) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(worker, n) for n in range(3)]]
    derived = lead_id(config_id, PHONE)
    assert [error for _, error in results] == [None, None, None]
    assert {record for record, _ in results} == {RecordRef("lead", derived)}
    leads = [
        r
        for r in setup.query("leads", select=["leadid", "mobilephone"])
        if r["mobilephone"] == PHONE
    ]
    assert [r["leadid"] for r in leads] == [derived]
    messages = [
        m for m in setup.query("smsc_messages") if m["smsc_providermessageid"].startswith("SMlead")
    ]
    assert len(messages) == 3 and {m["_regardingobjectid_value"] for m in messages} == {derived}
    assert resolver.resolve(PHONE, sender).trace.source == "index"  # the index learnt it
    index.close()
    store.close()
    setup.api.close()


def _first_messages(url: str, count: int) -> tuple[DataverseClient, str, list[InboundWrite]]:
    """The emulator's client, the demo configuration and ``count`` first messages from the
    unknown ``PHONE``, each prepared as the worker prepares it (its new lead included)."""
    client = emulator_client(url)
    config_id = seed_demo(client, None)
    owner = str(client.retrieve("smsc_configurations", config_id)["_ownerid_value"])
    lead = RecordRef("lead", lead_id(config_id, PHONE))
    writes = []
    for n in range(count):
        message = ReceivedMessage(f"SMtwice{n}", "AC", PHONE, DEMO_SENDER, "hi", time.time())
        session = open_session(message, config_id, 30, None, (owner, False))
        new_lead = NewLead(lead.id, PHONE, owner)
        writes.append(InboundWrite(session, message, lead.table, lead.id, new_lead=new_lead))
    return client, config_id, writes


def _requests(url: str) -> int:
    stats: dict[str, Any] = requests.get(f"{url}/_emulator/stats", timeout=10).json()
    return int(stats["requests"])


def _written(client: DataverseClient) -> tuple[list[str], dict[str, str | None]]:
    """The leads with ``PHONE``, and each SMtwice message's regarding row."""
    leads = [
        str(r["leadid"])
        for r in client.query("leads", select=["leadid", "mobilephone"])
        if r["mobilephone"] == PHONE
    ]
    messages = {
        str(m["smsc_providermessageid"]): m["_regardingobjectid_value"]
        for m in client.query("smsc_messages")
        if str(m["smsc_providermessageid"]).startswith("SMtwice")
    }
    return leads, messages


def test_two_first_messages_in_one_batch_create_the_lead_once_in_one_request(
    installed_emulator_url: str,
) -> None:
    client, config_id, writes = _first_messages(installed_emulator_url, 2)
    before = _requests(installed_emulator_url)
    errors = DataverseConversations(client).write_inbound_many(writes)
    assert errors == [None, None]
    assert _requests(installed_emulator_url) - before == 1  # no 412, no second $batch
    derived = lead_id(config_id, PHONE)
    assert _written(client) == ([derived], {"SMtwice0": derived, "SMtwice1": derived})
    client.api.close()


def test_when_the_first_message_fails_the_second_still_creates_the_lead(
    installed_emulator_url: str,
) -> None:
    client, config_id, writes = _first_messages(installed_emulator_url, 2)
    missing_user = "00000000-0000-4000-8000-00000000dead"
    writes[0] = replace(writes[0], notify=(missing_user,))  # its change set fails: no user
    errors = DataverseConversations(client).write_inbound_many(writes)
    assert errors[0] is not None and errors[1] is None
    derived = lead_id(config_id, PHONE)
    assert _written(client) == ([derived], {"SMtwice1": derived})
    client.api.close()


def test_a_later_message_failing_on_its_own_is_not_written_again_for_a_lead_that_exists(
    installed_emulator_url: str,
) -> None:
    """The lead exists already (an earlier attempt made it): the first message's create-only
    write of it fails with 412 and is written again without it; the second message, bound to
    it and failing for a reason of its own, is not written again for the lead's sake."""
    client, config_id, writes = _first_messages(installed_emulator_url, 2)
    derived = lead_id(config_id, PHONE)
    client.create("leads", {"leadid": derived, "lastname": "Earlier", "mobilephone": PHONE})
    missing_user = "00000000-0000-4000-8000-00000000dead"
    writes[1] = replace(writes[1], notify=(missing_user,))  # its change set fails: no user
    before = _requests(installed_emulator_url)
    errors = DataverseConversations(client).write_inbound_many(writes)
    assert errors[0] is None and errors[1] is not None
    assert _requests(installed_emulator_url) - before == 2  # the batch, the first one again
    assert _written(client) == ([derived], {"SMtwice0": derived})
    client.api.close()
