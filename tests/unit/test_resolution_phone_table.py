"""Numbers stored in every format of the phone test table resolve to their record.

Each valid row of the phone module's table is stored as written in a contact's mobile phone,
with the row's region chain split the way resolution uses it (the record's own country, the
record type's default country, the sender's country). After a sync, resolving the row's
E.164 number finds that contact from the index without asking Dataverse; a junk row is
skipped by the sync and never indexed. All in memory: the fake directory and an in-memory
SQLite state store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from connector.domain.phone import lookup_key, search_variants
from connector.domain.record_types import standard_spec
from connector.domain.routing import RecordRef, SenderContext
from connector.services.phone_sync import PhoneSync
from connector.services.resolution import RecordResolutionService
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex
from connector.state.resolution_ledger import ResolutionLedger
from connector.testing.phone_directory import FakePhoneDirectory
from tests.unit.test_phone import TABLE

VALID = [row for row in TABLE if not row[2].startswith("!")]
JUNK = [row for row in TABLE if row[2].startswith("!")]
CONTACT = RecordRef("contact", "00000000-0000-0000-0000-00000000c0de")


@dataclass
class World:
    resolver: RecordResolutionService
    directory: FakePhoneDirectory
    sender: SenderContext
    skipped: int
    index: PhoneIndex


@pytest.fixture
def closing() -> Iterator[ExitStack]:
    """Closes what a test opened (the index, then its state store)."""
    with ExitStack() as stack:
        yield stack


def _world(raw: str, regions: tuple[str | None, ...], closing: ExitStack) -> World:
    own, default, sender = (*regions, None, None, None)[:3]
    row = {"contactid": CONTACT.id, "fullname": "Row", "mobilephone": raw}
    if own:
        row["address1_country"] = own
    directory = FakePhoneDirectory()
    directory.put("contact", row, "contactid")
    spec = standard_spec("contact", ("mobilephone",), default_country=default)
    store = StateStore.from_url("sqlite://")
    closing.callback(store.close)
    index = PhoneIndex(store)
    closing.callback(index.close)
    report = PhoneSync(directory, index, lookup_key).run([spec], sender, full=True)
    resolver = RecordResolutionService(
        index,
        ResolutionLedger(store),
        directory,
        lookup_key=lookup_key,
        variants=search_variants,
        normalize=lookup_key,
        specs_for=lambda _sender: [spec],
    )
    sender_ctx = SenderContext("cfg", default_country=sender)
    return World(resolver, directory, sender_ctx, report.skipped, index)


@pytest.mark.parametrize(("raw", "regions", "e164"), VALID, ids=[r[0] for r in VALID])
def test_stored_format_resolves_from_the_index(
    raw: str, regions: tuple[str | None, ...], e164: str, closing: ExitStack
) -> None:
    world = _world(raw, regions, closing)
    before = world.directory.requests
    result = world.resolver.resolve(e164, world.sender)
    assert world.skipped == 0
    assert (result.record, result.trace.source) == (CONTACT, "index")
    assert world.directory.requests == before


@pytest.mark.parametrize(("raw", "regions", "reason"), JUNK, ids=[repr(r[0]) for r in JUNK])
def test_junk_in_a_record_is_skipped_by_the_sync(
    raw: str, regions: tuple[str | None, ...], reason: str, closing: ExitStack
) -> None:
    world = _world(raw, regions, closing)
    assert world.skipped == (0 if reason == "!empty" else 1)  # a blank column is simply no number
    assert world.index.count() == 0
