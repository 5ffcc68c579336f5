"""The emulator's state object: a snapshot taken and restored (the shared test emulator)."""

from __future__ import annotations

from pathlib import Path

from connector.emulators.dataverse.metadata import AttributeDef
from connector.emulators.dataverse.state import EmulatorState

ROW = "00000000-0000-4000-8000-000000000003"


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


def test_a_file_from_an_older_emulator_gets_the_reference_columns(tmp_path: Path) -> None:
    """A database written before the reference columns existed: its standard tables catch
    up when it is opened again, and keep their rows and custom columns."""
    path = str(tmp_path / "emulator.db")
    state = EmulatorState(path)
    contact = state.schema.entities["contact"]
    for name in ("donotphone", "preferredcontactmethodcode", "address2_city"):
        del contact.attributes[name]  # as an older emulator stored it
    contact.add(AttributeDef("new_loyaltytier", "String", max_length=20))
    state.persist_schema()
    state.records.create(contact, {"contactid": ROW, "lastname": "Lee", "new_loyaltytier": "gold"})
    state.store.close()

    reopened = EmulatorState(path)
    contact = reopened.schema.entities["contact"]
    assert {"donotphone", "preferredcontactmethodcode", "address2_city"} <= set(contact.attributes)
    assert "new_loyaltytier" in contact.attributes
    reopened.records.update(
        contact,
        {"contactid": ROW},
        {"donotphone": True, "preferredcontactmethodcode": 2, "address2_city": "Gouda"},
    )
    row = reopened.records.get(contact, ROW)
    assert row is not None
    assert (row["lastname"], row["new_loyaltytier"], row["address2_city"]) == (
        "Lee",
        "gold",
        "Gouda",
    )
    reopened.store.close()
