"""Shared fixtures for every tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector.settings import ENV_PREFIX


@pytest.fixture(autouse=True)
def _clean_connector_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's own CONNECTOR_* variables."""
    import os

    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    yield
