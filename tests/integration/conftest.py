"""Fixtures the integration tier shares: a client of the emulator with the schema installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector.dataverse.client import DataverseClient
from connector.testing.emulator_client import emulator_client


@pytest.fixture
def installed(installed_emulator_url: str) -> Iterator[DataverseClient]:
    """A client of an emulator the installer has put the whole schema in (installed once per
    session by the first test that needs it, then restored)."""
    dv = emulator_client(installed_emulator_url, attempts=2)
    yield dv
    dv.api.close()
