"""The local state of sends that start in Dynamics: refused rows, the poll's place, and the
webhook key (stored encrypted, rotatable with a grace period)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from connector.secret_box import SecretBox
from connector.state.crm_sends import (
    ROTATION_GRACE_SECONDS,
    StateCrmSendLedger,
    WebhookKeys,
    keys_table,
)
from connector.state.db import StateStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    state = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    yield state
    state.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_refusals_and_the_poll_cursor_are_kept(store: StateStore) -> None:
    ledger = StateCrmSendLedger(store)
    assert not ledger.refused("r-1") and ledger.poll_cursor() == (None, None)
    ledger.note_refused("r-1", "consent_opted_out")
    ledger.note_refused("r-1", "consent_opted_out")
    assert ledger.refused("r-1")
    since = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    ledger.save_poll_cursor(since, 12.5)
    assert StateCrmSendLedger(store).poll_cursor() == (since, 12.5)


def test_the_key_is_stored_encrypted_and_rotates_with_a_grace_period(store: StateStore) -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    clock = Clock()
    keys = WebhookKeys(store, lambda: box, ttl=0.0, clock=clock)
    assert keys.accepted() == []
    first, push = keys.ensure()
    assert push and keys.ensure() == (first, True)  # not pushed to Dataverse yet
    keys.mark_pushed()
    assert keys.ensure() == (first, False)
    with store.engine.connect() as conn:
        stored = conn.execute(select(keys_table.c.current)).scalar()
    assert stored and first not in str(stored)
    second = keys.rotate()
    assert keys.ensure() == (second, True)
    assert set(keys.accepted()) == {first, second}
    clock.now += ROTATION_GRACE_SECONDS + 1
    assert keys.accepted() == [second]
    keys.extra.append("local-run-key")
    assert set(keys.accepted()) == {"local-run-key", second}
    keys.forget()
    assert keys.accepted() == ["local-run-key"] and keys.current() is None


def test_accepted_keys_are_cached_for_the_ttl(store: StateStore) -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    clock = Clock()
    keys = WebhookKeys(store, lambda: box, ttl=10.0, clock=clock)
    other = WebhookKeys(store, lambda: box, ttl=10.0, clock=clock)
    assert keys.accepted() == []
    key, _ = other.ensure()  # another process registers
    assert keys.accepted() == []
    clock.now += 11
    assert keys.accepted() == [key]
