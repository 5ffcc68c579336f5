"""The resolver against the Dataverse emulator: index, one live $batch, a derived lead."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from connector.crm.phone_directory import DataversePhoneDirectory
from connector.dataverse.client import DataverseClient
from connector.domain.conversation import lead_id
from connector.domain.phone import lookup_key, search_variants
from connector.domain.record_types import default_specs
from connector.domain.routing import (
    RECENT_CONVERSATION,
    TABLE_PRIORITY,
    RecordRef,
    SenderContext,
)
from connector.services.phone_sync import PhoneSync
from connector.services.resolution import RecordResolutionService
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex
from connector.state.resolution_ledger import ResolutionLedger
from connector.testing.emulator_client import emulator_web_api

SENDER = SenderContext("cfg", default_country="US")


class Env:
    def __init__(self, url: str, client: DataverseClient, store: StateStore) -> None:
        self.url, self.client = url, client
        self.index = PhoneIndex(store)
        self.directory = DataversePhoneDirectory(client)
        self.sync = PhoneSync(self.directory, self.index, lookup_key)
        self.resolver = RecordResolutionService(
            self.index,
            ResolutionLedger(store),
            self.directory,
            lookup_key=lookup_key,
            variants=search_variants,
            normalize=lookup_key,
        )

    def stats(self) -> dict[str, int]:
        body = requests.get(f"{self.url}/_emulator/stats", timeout=10).json()
        return {
            "requests": body["requests"],
            "batch_requests": body["batch_requests"],
            "batch_parts": body["batch_parts"],
        }

    def leads_with(self, phone: str) -> list[dict[str, object]]:
        return list(self.client.query("leads", select=["leadid", "mobilephone", "subject"]))


@pytest.fixture
def env(tmp_path: Path, emulator_url: str) -> Iterator[Env]:
    api = emulator_web_api(emulator_url)
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    environment = Env(emulator_url, DataverseClient(api), store)
    yield environment
    environment.index.close()
    store.close()
    api.close()


def test_contact_and_lead_sharing_a_number_resolve_to_the_contact(env: Env) -> None:
    contact = env.client.create("contacts", {"lastname": "C", "mobilephone": "415-555-0101"})
    env.client.create("leads", {"lastname": "L", "mobilephone": "(415) 555-0101"})
    env.sync.run(default_specs("US"), "US", full=True)
    before = env.stats()["requests"]
    result = env.resolver.resolve("+14155550101", SENDER)
    assert (result.record, result.trace.decided_by) == (
        RecordRef("contact", contact),
        TABLE_PRIORITY,
    )
    assert env.stats()["requests"] == before  # answered from the index


def test_index_miss_is_one_live_batch_that_finds_a_fresh_contact(env: Env) -> None:
    env.sync.run(default_specs("US"), "US", full=True)
    fresh = env.client.create("contacts", {"lastname": "New", "telephone1": "415.555.0177"})
    before = env.stats()
    result = env.resolver.resolve("+14155550177", SENDER)
    after = env.stats()
    assert (result.record, result.trace.source) == (RecordRef("contact", fresh), "live")
    assert after["requests"] - before["requests"] == 1
    assert after["batch_requests"] - before["batch_requests"] == 1
    assert after["batch_parts"] - before["batch_parts"] == 3  # contact, account, lead
    again = env.resolver.resolve("+14155550177", SENDER)
    assert again.trace.source == "index"
    assert env.stats()["requests"] == after["requests"]


def test_simultaneous_messages_from_an_unknown_number_agree_on_its_lead_and_write_nothing(
    env: Env,
) -> None:
    env.sync.run(default_specs("US"), "US", full=True)
    start = threading.Barrier(3)
    before = env.stats()

    def worker() -> RecordRef | None:
        start.wait(timeout=30)
        return env.resolver.resolve("+14155550123", SENDER).record

    with ThreadPoolExecutor(3) as pool:
        records = {f.result(timeout=60) for f in [pool.submit(worker) for _ in range(3)]}
    assert records == {RecordRef("lead", lead_id("cfg", "+14155550123"))}
    # three live lookups at most (each a $batch of GETs), and no lead written: the messages'
    # own change sets create it (tests/integration/test_resolution_lead_once.py)
    assert env.stats()["requests"] - before["requests"] <= 3
    assert [r for r in env.leads_with("+14155550123") if r["mobilephone"]] == []


def test_later_messages_follow_the_record_last_talked_to(env: Env) -> None:
    env.client.create("contacts", {"lastname": "C", "mobilephone": "4155550150"})
    lead = env.client.create("leads", {"lastname": "L", "mobilephone": "4155550150"})
    env.sync.run(default_specs("US"), "US", full=True)
    env.resolver.note_conversation("+14155550150", RecordRef("lead", lead))
    result = env.resolver.resolve("+14155550150", SENDER)
    assert (result.record, result.trace.decided_by) == (
        RecordRef("lead", lead),
        RECENT_CONVERSATION,
    )


def test_team_rule_without_membership_data_falls_back_to_table_order(env: Env) -> None:
    team = env.client.create("teams", {"name": "Sales"})
    contact = env.client.create("contacts", {"lastname": "C", "mobilephone": "4155550160"})
    env.client.create("leads", {"lastname": "L", "mobilephone": "4155550160"})
    env.sync.run(default_specs("US"), "US", full=True)
    sender = SenderContext("cfg", team_id=team, default_country="US")
    result = env.resolver.resolve("+14155550160", sender)
    assert (result.record, result.trace.decided_by) == (
        RecordRef("contact", contact),
        TABLE_PRIORITY,
    )
