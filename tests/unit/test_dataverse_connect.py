"""Building the Dataverse client from settings, and its place in the composition root."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.bootstrap import build
from connector.dataverse.auth import MsalTokenProvider, StaticTokenProvider
from connector.dataverse.connect import build_client
from connector.dataverse.protection import MemoryPacingStore
from connector.errors import ConfigurationError
from connector.settings import load_settings
from connector.state.dataverse_pacing import StateStorePacing


def test_static_token_settings_build_a_client_for_the_v92_endpoint() -> None:
    settings = load_settings(
        {
            "CONNECTOR_DATAVERSE__URL": "https://contoso.crm.dynamics.com",
            "CONNECTOR_DATAVERSE__TOKEN": "t",
            "CONNECTOR_DATAVERSE__MAX_CONCURRENCY": "4",
        }
    )
    client = build_client(settings.dataverse)
    assert client.api.base_url == "https://contoso.crm.dynamics.com/api/data/v9.2/"
    assert isinstance(client.api._tokens, StaticTokenProvider)


def test_app_registration_settings_use_msal_without_touching_the_network() -> None:
    settings = load_settings(
        {
            "CONNECTOR_DATAVERSE__URL": "https://contoso.crm.dynamics.com",
            "CONNECTOR_DATAVERSE__TENANT_ID": "tenant",
            "CONNECTOR_DATAVERSE__CLIENT_ID": "client",
            "CONNECTOR_DATAVERSE__CLIENT_SECRET": "secret",
        }
    )
    connector = build(settings)
    tokens = connector.dataverse.api._tokens
    assert isinstance(tokens, MsalTokenProvider)
    assert tokens.scope == "https://contoso.crm.dynamics.com/.default"
    connector.close()


def test_local_mode_without_a_running_emulator_says_so_and_needs_an_explicit_url(
    tmp_path: Path,
) -> None:
    settings = load_settings({"CONNECTOR_STATE__URL": f"sqlite:///{tmp_path / 'state.db'}"})
    with pytest.raises(ConfigurationError, match="start `connector serve` first"):
        _ = build(settings).dataverse
    with pytest.raises(ConfigurationError):
        build_client(settings.dataverse)
    client = build_client(settings.dataverse, url="http://127.0.0.1:9")
    assert client.api.base_url == "http://127.0.0.1:9/api/data/v9.2/"


def test_serve_and_worker_share_dataverse_protection_through_the_state_store(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        {
            "CONNECTOR_DATAVERSE__URL": "https://contoso.crm.dynamics.com",
            "CONNECTOR_DATAVERSE__TOKEN": "secret-token",
            "CONNECTOR_DATAVERSE__FLEET_MAX_CONCURRENCY": "20",
            "CONNECTOR_STATE__URL": f"sqlite:///{tmp_path / 'state.db'}",
        }
    )
    fleet, tool = build(settings, shared_pacing=True), build(settings)
    try:
        shared = fleet.dataverse.api.protection
        assert isinstance(shared.store, StateStorePacing) and shared.fleet_cap == 20
        assert shared.key.startswith("https://contoso.crm.dynamics.com token-")
        assert "secret-token" not in shared.key  # the user's key names no secret
        assert shared.law.initial_rate == 25.0 and shared.law.window_seconds == 300.0
        own = tool.dataverse.api.protection
        assert isinstance(own.store, MemoryPacingStore) and own.key == shared.key
    finally:
        fleet.close()
        tool.close()
