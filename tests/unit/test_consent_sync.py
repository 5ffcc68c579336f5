"""The consent ledger's sync with Dataverse: local changes pushed in one batch (failures wait
and come again), administrators' edits pulled back, and a pulled row never undoing a local
change Dataverse does not have yet (a real local ledger on SQLite, the shipped fake ledger)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.domain.consent import (
    ConsentChange,
    ConsentMethod,
    ConsentStatus,
    Evidence,
    change_id,
)
from connector.domain.model import MessageCategory
from connector.services.consent_sync import ConsentSync
from connector.state.consent import ConsentLedger
from connector.state.db import StateStore
from connector.testing.consent_ledger import FakeConsentLedger

CONFIG = str(uuid.UUID(int=7))
PHONE = "+14155550123"


def _change(status: ConsentStatus, at: float, cause: str) -> ConsentChange:
    purpose = MessageCategory.COMMERCIAL
    return ConsentChange(
        id=change_id(cause, PHONE, CONFIG, purpose),
        phone=PHONE,
        configuration_id=CONFIG,
        purpose=purpose,
        status=status,
        method=ConsentMethod.KEYWORD,
        evidence=Evidence(at=at, source="test", message_id=cause),
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[ConsentLedger]:
    local = ConsentLedger(StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}"))
    yield local
    local.close()


def test_push_writes_every_waiting_change_in_one_batch_and_only_once(
    ledger: ConsentLedger,
) -> None:
    remote = FakeConsentLedger(clock=lambda: 1000.0)
    sync = ConsentSync(ledger, remote, clock=lambda: 1000.0)
    ledger.apply(
        [_change(ConsentStatus.OPTED_IN, 1.0, "a"), _change(ConsentStatus.OPTED_OUT, 2.0, "b")]
    )
    assert sync.push() == 2
    assert remote.batches == 1 and len(remote.history) == 2
    assert next(iter(remote.current.values())).change.status is ConsentStatus.OPTED_OUT
    assert sync.push() == 0 and remote.batches == 1


def test_a_failed_push_waits_and_is_tried_again(ledger: ConsentLedger) -> None:
    now = [1000.0]
    remote = FakeConsentLedger(down=True)
    sync = ConsentSync(ledger, remote, clock=lambda: now[0])
    ledger.apply([_change(ConsentStatus.OPTED_OUT, 1.0, "stop")])
    assert sync.push() == 0
    remote.down = False
    assert sync.push() == 0  # backing off
    now[0] += 10
    assert sync.push() == 1 and len(remote.history) == 1


def test_an_administrators_edit_comes_back_but_never_over_an_unpushed_change(
    ledger: ConsentLedger,
) -> None:
    remote = FakeConsentLedger()
    sync = ConsentSync(ledger, remote)
    ledger.apply([_change(ConsentStatus.OPTED_IN, 1.0, "yes")])
    sync.push()
    assert sync.pull() == 0  # Dataverse says what the ledger says
    remote.edit(PHONE, CONFIG, MessageCategory.COMMERCIAL, ConsentStatus.OPTED_OUT)
    assert sync.pull() == 1
    held = ledger.current(PHONE, CONFIG)[MessageCategory.COMMERCIAL]
    assert held.status is ConsentStatus.OPTED_OUT
    assert ledger.unsynced(4e9) == []  # it came from Dataverse: nothing to push back
    ledger.apply([_change(ConsentStatus.OPTED_IN, 5e9, "yes-again")])  # not pushed yet
    assert sync.pull() == 0
    assert ledger.current(PHONE, CONFIG)[MessageCategory.COMMERCIAL].status is (
        ConsentStatus.OPTED_IN
    )
