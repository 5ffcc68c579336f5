"""Three first messages from an unknown number, resolved and written at once, make one lead.

Runs the resolver on a SQLite file and on a real PostgreSQL server, and writes each message's
change set to the Dataverse emulator from its own thread at the same moment. Nothing in the
state store arbitrates: the lead's id is derived from (configuration, number), every message
creates it create-only (``If-None-Match: *``) in its own change set, one wins, and the others'
412 makes them write again without the lead, bound to the same row.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from connector.bootstrap.local_mode import DEMO_SENDER, seed_demo
from connector.crm.conversations import DataverseConversations
from connector.crm.phone_directory import DataversePhoneDirectory
from connector.dataverse.client import DataverseClient
from connector.domain.conversation import InboundWrite, ReceivedMessage, lead_id, open_session
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
