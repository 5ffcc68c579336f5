"""The phone sync through the real Web API client against the Dataverse emulator (loopback).

Rows are written with the client the way users leave them (odd formats, junk, inactive rows,
an opportunity under a contact), synced into a real SQLite state store, and looked up; the
emulator's own request counter shows what the sync cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from connector.crm.phone_directory import DataversePhoneDirectory
from connector.dataverse.client import DataverseClient
from connector.domain.phone import lookup_key
from connector.domain.record_types import default_specs, standard_spec
from connector.domain.routing import RecordRef
from connector.services.phone_sync import PhoneSync
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex
from connector.testing.emulator_client import emulator_web_api


class Env:
    def __init__(self, url: str, client: DataverseClient, index: PhoneIndex) -> None:
        self.url, self.client, self.index = url, client, index
        self.sync = PhoneSync(DataversePhoneDirectory(client, page_size=2), index, lookup_key)

    def requests(self) -> int:
        stats = requests.get(f"{self.url}/_emulator/stats", timeout=10).json()
        return int(stats["requests"])

    def found(self, e164: str) -> set[str]:
        return {str(c.record) for c in self.index.lookup(lookup_key(e164))}

    def contact(self, **cols: object) -> str:
        return self.client.create("contacts", {"lastname": "Test", **cols})


@pytest.fixture
def env(tmp_path: Path, emulator_url: str) -> Iterator[Env]:
    api = emulator_web_api(emulator_url)
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    index = PhoneIndex(store)
    yield Env(emulator_url, DataverseClient(api), index)
    index.close()
    store.close()
    api.close()


def test_full_sync_indexes_odd_formats_and_skips_junk(env: Env) -> None:
    a = env.contact(mobilephone="(415) 555-0101")
    b = env.contact(telephone1="+44 20 7946 0958")
    c = env.contact(telephone2="0044 20 7946 0959", mobilephone="call me maybe")
    acct = env.client.create("accounts", {"name": "Acme", "telephone1": "415.555.0102"})
    lead = env.client.create("leads", {"lastname": "L", "mobilephone": "+1 415 555 0101"})
    report = env.sync.run(default_specs(), "US", full=True)
    assert env.found("+14155550101") == {f"contact:{a}", f"lead:{lead}"}
    assert env.found("+442079460958") == {f"contact:{b}"}
    assert env.found("+442079460959") == {f"contact:{c}"}
    assert env.found("+14155550102") == {f"account:{acct}"}
    assert report.skipped == 1


def test_opportunity_found_through_its_parent_contact(env: Env) -> None:
    a = env.contact(mobilephone="415-555-0103")
    opp = env.client.create(
        "opportunities", {"name": "Deal", "parentcontactid@odata.bind": f"/contacts({a})"}
    )
    env.sync.run(default_specs(), "US", full=True)
    assert env.found("+14155550103") == {f"contact:{a}", f"opportunity:{opp}"}


def test_change_tracking_sync_reflects_updates_deactivations_and_deletes(env: Env) -> None:
    spec = standard_spec("contact", change_tracking=True)
    a = env.contact(mobilephone="415-555-0104")
    b = env.contact(mobilephone="415-555-0105")
    c = env.contact(mobilephone="415-555-0106")
    env.sync.run([spec], "US")
    env.client.delete("contacts", a)
    env.client.update("contacts", b, {"mobilephone": "415-555-0199"})
    env.client.update("contacts", c, {"statecode": 1, "statuscode": 2})
    before = env.requests()
    report = env.sync.run([spec], "US")
    assert report.tables[0].mode == "delta"
    assert env.requests() - before == 1
    assert env.found("+14155550104") == set()
    assert env.found("+14155550105") == set()
    assert env.found("+14155550199") == {f"contact:{b}"}
    [inactive] = env.index.lookup(lookup_key("+14155550106"))
    assert inactive.record == RecordRef("contact", c) and inactive.active is False


def test_modifiedon_sync_finds_a_row_created_in_the_same_second(env: Env) -> None:
    spec = standard_spec("lead")
    for i in range(5):
        env.client.create("leads", {"lastname": f"L{i}", "mobilephone": f"415555011{i}"})
    env.sync.run([spec], "US", full=True)
    changed = env.client.create("leads", {"lastname": "New", "mobilephone": "415 555 0120"})
    before = env.requests()
    report = env.sync.run([spec], "US")
    assert report.tables[0].mode == "modifiedon"
    assert env.requests() - before == -(-report.tables[0].rows // 2)  # pages of 2 rows
    assert env.found("+14155550120") == {f"lead:{changed}"}


def test_full_sync_pages_and_request_count(env: Env) -> None:
    for i in range(7):
        env.contact(mobilephone=f"415555013{i}")
    before = env.requests()
    report = env.sync.run([standard_spec("contact")], "US", full=True)
    assert report.tables[0].rows == 7
    assert env.requests() - before == 4  # pages of 2 rows: 2+2+2+1


def _moved(link: str, origin: str) -> str:
    """``link`` as stored by a process that reached the Web API at ``origin``."""
    rest = link.split("://", 1)[1]
    return f"{origin}/{rest.split('/', 1)[1]}"


@pytest.mark.parametrize("origin", ["http://localhost:1", "https://old-name.example.com"])
def test_delta_link_stored_under_another_base_url_is_rebased(env: Env, origin: str) -> None:
    # local mode gives the emulator a new port on every start; an org URL can change spelling
    spec = standard_spec("contact", change_tracking=True)
    a = env.contact(mobilephone="415-555-0141")
    env.sync.run([spec], "US")
    cursor = env.index.cursor("contact")
    assert cursor.delta_link is not None
    env.index.save_cursor(replace(cursor, delta_link=_moved(cursor.delta_link, origin)))
    env.client.update("contacts", a, {"mobilephone": "415-555-0142"})
    before = env.requests()
    report = env.sync.run([spec], "US")
    assert report.tables[0].mode == "delta"
    assert env.requests() - before == 1
    assert env.found("+14155550142") == {f"contact:{a}"}
    rebased = env.index.cursor("contact").delta_link
    assert rebased is not None and rebased.startswith(env.url)


def test_stored_link_that_cannot_be_rebased_means_a_full_resync(env: Env) -> None:
    spec = standard_spec("contact", change_tracking=True)
    a = env.contact(mobilephone="415-555-0143")
    b = env.contact(mobilephone="415-555-0144")
    env.sync.run([spec], "US")
    cursor = env.index.cursor("contact")
    env.index.save_cursor(replace(cursor, delta_link="https://elsewhere.example.com/feed?t=1"))
    env.client.delete("contacts", b)
    env.client.update("contacts", a, {"mobilephone": "415-555-0145"})
    report = env.sync.run([spec], "US")
    assert report.tables[0].mode == "full"
    assert env.found("+14155550145") == {f"contact:{a}"}
    assert env.found("+14155550144") == set()  # the full resync's sweep dropped b
    relinked = env.index.cursor("contact").delta_link
    assert relinked is not None and relinked.startswith(env.url)
