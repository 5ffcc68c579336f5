"""Integration fixtures: one Dataverse emulator on loopback for the session, clean per test.

``emulator_url`` is a fresh emulator (``POST /_emulator/reset`` before the test);
``installed_emulator_url`` has the solution schema installed by the real installer and no
rows of ours. Tests that need an emulator built differently (limits, key delay, a database
file, TLS, a wrapper app) still start their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector.testing.shared_emulator import SharedEmulator


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[SharedEmulator]:
    """The session's emulator; use ``emulator_url`` or ``installed_emulator_url`` instead."""
    emulator = SharedEmulator()
    try:
        yield emulator
    finally:
        emulator.close()


@pytest.fixture
def emulator_url(shared_emulator: SharedEmulator) -> str:
    """A fresh emulator's base URL: standard tables and seed rows only."""
    shared_emulator.reset()
    return shared_emulator.url


@pytest.fixture
def installed_emulator_url(shared_emulator: SharedEmulator) -> str:
    """An emulator with the solution schema installed and no rows of ours."""
    shared_emulator.restore_installed()
    return shared_emulator.url
