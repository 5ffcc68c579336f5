"""The emulator's state object: a snapshot taken and restored (the shared test emulator)."""

from __future__ import annotations

from connector.emulators.dataverse.state import EmulatorState


def test_restore_returns_to_the_snapshot_rows_and_zeroes_the_counters() -> None:
    state = EmulatorState()
    contact = state.schema.entities["contact"]
    state.records.create(contact, {"contactid": "00000000-0000-4000-8000-000000000001"})
    snapshot = state.snapshot()
    state.records.create(contact, {"contactid": "00000000-0000-4000-8000-000000000002"})
    state.stats["requests"] += 5
    state.restore(snapshot)
    assert state.records.get(contact, "00000000-0000-4000-8000-000000000001") is not None
    assert state.records.get(contact, "00000000-0000-4000-8000-000000000002") is None
    assert state.stats["requests"] == 0
    snapshot.close()
    state.store.close()
