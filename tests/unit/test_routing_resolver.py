"""The record resolver: index first, one live query on a miss, rules, a derived lead per number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.domain.conversation import NewLead, lead_id
from connector.domain.phone import lookup_key, search_variants
from connector.domain.record_types import default_specs
from connector.domain.routing import (
    RECENT_CONVERSATION,
    TABLE_PRIORITY,
    TEAM_MEMBER,
    RecordRef,
    SenderContext,
)
from connector.services.phone_sync import PhoneSync
from connector.services.resolution import RecordResolutionService
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex
from connector.state.resolution_ledger import ResolutionLedger
from connector.testing.phone_directory import FakePhoneDirectory

PHONE = "+14155550101"
SENDER = SenderContext(configuration_id="cfg", owner_id="u-owner", default_country="US")


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2025, 6, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


class World:
    def __init__(self) -> None:
        self.store = StateStore.from_url("sqlite://")
        self.directory = FakePhoneDirectory()
        self.index = PhoneIndex(self.store)
        self.clock = Clock()
        self.resolver = RecordResolutionService(
            self.index,
            ResolutionLedger(self.store),
            self.directory,
            lookup_key=lookup_key,
            variants=search_variants,
            normalize=lookup_key,
            now=self.clock,
        )

    def contact(self, cid: str, phone: str, **cols: object) -> None:
        row = {"contactid": cid, "fullname": cid, "mobilephone": phone, **cols}
        self.directory.put("contact", row, "contactid")

    def sync(self) -> None:
        PhoneSync(self.directory, self.index, lookup_key).run(default_specs("US"), "US", full=True)


@pytest.fixture
def world() -> World:
    return World()


def test_index_hit_costs_no_dataverse_request(world: World) -> None:
    world.contact("a", "(415) 555-0101")
    world.sync()
    before = world.directory.requests
    result = world.resolver.resolve(PHONE, SENDER)
    assert result.record == RecordRef("contact", "a")
    assert result.trace.source == "index"
    assert world.directory.requests == before


def test_index_miss_makes_one_live_query_and_indexes_what_it_finds(world: World) -> None:
    world.sync()
    world.contact("fresh", "415-555-0101")  # created after the last sync
    before = world.directory.requests
    result = world.resolver.resolve(PHONE, SENDER)
    assert (result.record, result.trace.source) == (RecordRef("contact", "fresh"), "live")
    assert world.directory.requests - before == 1
    again = world.resolver.resolve(PHONE, SENDER)
    assert again.trace.source == "index"
    assert world.directory.requests - before == 1


def test_contact_beats_lead_on_table_priority(world: World) -> None:
    world.contact("c", "4155550101")
    world.directory.put("lead", {"leadid": "l", "fullname": "L", "mobilephone": PHONE}, "leadid")
    world.sync()
    result = world.resolver.resolve(PHONE, SENDER)
    assert (result.record, result.trace.decided_by) == (RecordRef("contact", "c"), TABLE_PRIORITY)
    assert {c.record.table for c in result.trace.candidates} == {"contact", "lead"}


def test_moving_a_conversation_makes_later_replies_follow(world: World) -> None:
    world.contact("c", "4155550101")
    world.directory.put("lead", {"leadid": "l", "fullname": "L", "mobilephone": PHONE}, "leadid")
    world.sync()
    assert world.resolver.resolve(PHONE, SENDER).record == RecordRef("contact", "c")
    trace = world.resolver.move(PHONE, RecordRef("lead", "l"), RecordRef("contact", "c"))
    assert trace.decided_by == "moved"
    result = world.resolver.resolve(PHONE, SENDER)
    assert (result.record, result.trace.decided_by) == (RecordRef("lead", "l"), RECENT_CONVERSATION)


def test_team_members_are_fetched_once_and_decide(world: World) -> None:
    world.contact("a", "4155550101", _ownerid_value="u-x")
    world.contact("b", "4155550101", _ownerid_value="u-mate")
    world.directory.teams["t1"] = frozenset({"u-mate"})
    world.sync()
    sender = SenderContext("cfg", owner_id="u-owner", team_id="t1")
    before = world.directory.requests
    first = world.resolver.resolve(PHONE, sender)
    world.resolver.resolve(PHONE, sender)
    assert (first.record, first.trace.decided_by) == (RecordRef("contact", "b"), TEAM_MEMBER)
    assert world.directory.requests - before == 1


def test_only_the_configurations_record_types_are_candidates(world: World) -> None:
    world.contact("c", "4155550101")
    world.directory.put("lead", {"leadid": "l", "fullname": "L", "mobilephone": PHONE}, "leadid")
    world.sync()
    sender = SenderContext("cfg", table_priority=("lead",))
    assert world.resolver.resolve(PHONE, sender).record == RecordRef("lead", "l")


def test_unknown_number_resolves_to_its_derived_lead_without_writing(world: World) -> None:
    world.sync()
    derived = RecordRef("lead", lead_id("cfg", PHONE))
    results = [world.resolver.resolve(PHONE, SENDER) for _ in range(3)]  # racing messages
    assert {r.record for r in results} == {derived}
    assert all(r.create_lead and r.trace.decided_by == "no_match" for r in results)
    assert world.directory.created_leads == []  # the message's change set creates it
    assert world.resolver.new_lead(PHONE, SENDER, derived) == NewLead(derived.id, PHONE, "u-owner")


def test_a_written_lead_is_learnt_and_no_longer_created(world: World) -> None:
    world.sync()
    derived = world.resolver.resolve(PHONE, SENDER).record
    assert derived is not None
    new = world.resolver.new_lead(PHONE, SENDER, derived)
    assert new is not None
    world.resolver.lead_written(new)
    assert world.resolver.new_lead(PHONE, SENDER, derived) is None
    before = world.directory.requests
    again = world.resolver.resolve(PHONE, SENDER)
    assert (again.record, again.trace.source, again.created) == (derived, "index", False)
    assert world.directory.requests == before


def test_only_the_numbers_own_derived_lead_is_created(world: World) -> None:
    derived = RecordRef("lead", lead_id("cfg", PHONE))
    other_config = SenderContext(configuration_id="cfg-2", owner_id="u-owner")
    assert world.resolver.new_lead(PHONE, other_config, derived) is None
    assert world.resolver.new_lead("+14155550102", SENDER, derived) is None
    assert world.resolver.new_lead(PHONE, SENDER, RecordRef("lead", "seller-made")) is None
    assert world.resolver.new_lead(PHONE, SENDER, RecordRef("contact", derived.id)) is None


def test_configured_record_types_decide_tables_columns_and_order() -> None:
    from types import MappingProxyType

    from connector.domain.model import Configuration, Provider, RecordType
    from connector.services.resolution import ConfiguredRecordTypes

    world = World()
    world.contact("c", "4155550101")
    world.directory.put("lead", {"leadid": "l", "fullname": "L", "telephone1": PHONE}, "leadid")
    world.sync()
    config = Configuration("Sales", Provider.TWILIO, "+14155550100", id="cfg")
    types = [
        RecordType("lead", phone_columns=("telephone1",), priority=1),
        RecordType("contact", phone_columns=("mobilephone",), priority=2),
        RecordType("opportunity", parent_lookups=MappingProxyType({"parentcontactid": "contact"})),
    ]
    world.directory.configurations = [(config, types)]
    configured = ConfiguredRecordTypes(world.directory, now=world.clock)
    resolver = RecordResolutionService(
        world.index,
        ResolutionLedger(world.store),
        world.directory,
        lookup_key=lookup_key,
        variants=search_variants,
        normalize=lookup_key,
        specs_for=configured.for_sender,
    )
    sender = SenderContext("cfg", default_country="US")
    result = resolver.resolve(PHONE, sender)
    assert (result.record, result.trace.decided_by) == (RecordRef("lead", "l"), TABLE_PRIORITY)
    before = world.directory.requests
    resolver.resolve(PHONE, sender)
    assert world.directory.requests == before  # record types cached
    other = resolver.resolve(PHONE, SenderContext("unconfigured", default_country="US"))
    assert {c.record.table for c in other.trace.candidates} == {"contact", "lead"}  # defaults
    assert other.trace.decided_by == RECENT_CONVERSATION  # the lead talked last


def test_record_types_refresh_failure_keeps_the_last_answer() -> None:
    from connector.domain.model import Configuration, Provider, RecordType
    from connector.errors import DataverseUnavailableError
    from connector.services.resolution import ConfiguredRecordTypes

    world = World()
    config = Configuration("Sales", Provider.TWILIO, "+14155550100", id="cfg")
    world.directory.configurations = [
        (config, [RecordType("lead", phone_columns=("mobilephone",))])
    ]
    configured = ConfiguredRecordTypes(world.directory, ttl=timedelta(seconds=0), now=world.clock)
    sender = SenderContext("cfg")
    assert [s.table for s in configured.for_sender(sender)] == ["lead"]

    def down() -> list[object]:
        raise DataverseUnavailableError("dataverse down", status=503)

    world.directory.configured_record_types = down  # type: ignore[method-assign,assignment]
    assert [s.table for s in configured.for_sender(sender)] == ["lead"]
    fresh = ConfiguredRecordTypes(world.directory, now=world.clock)
    with pytest.raises(DataverseUnavailableError):
        fresh.for_sender(sender)


def test_prefetch_looks_several_unknown_numbers_up_in_one_query(world: World) -> None:
    world.sync()
    world.contact("fresh", "415-555-0101")  # created after the last sync
    others = ["+14155550102", "+14155550103"]  # on no record
    before = world.directory.requests
    world.resolver.prefetch([PHONE, *others], SENDER)
    assert world.directory.requests - before == 1
    assert world.resolver.resolve(PHONE, SENDER).record == RecordRef("contact", "fresh")
    assert world.directory.requests - before == 1  # found by the prefetch: in the index
    for number in others:
        result = world.resolver.resolve(number, SENDER)
        assert result.created and result.record is not None
    assert world.directory.requests - before == 1  # their leads come with their messages


def test_prefetch_of_a_single_miss_leaves_the_lookup_to_resolve(world: World) -> None:
    world.sync()
    before = world.directory.requests
    world.resolver.prefetch([PHONE], SENDER)
    assert world.directory.requests == before
    world.resolver.resolve(PHONE, SENDER)
    assert world.directory.requests - before == 1  # its live query; the lead comes later
