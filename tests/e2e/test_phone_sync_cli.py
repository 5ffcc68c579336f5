"""``connector sync phones`` run as a user runs it, against the emulator over loopback."""

from __future__ import annotations

from pathlib import Path

import requests

from connector.bootstrap.server_thread import running
from connector.dataverse.auth import StaticTokenProvider
from connector.dataverse.client import DataverseClient
from connector.dataverse.transport import WebApi
from connector.domain.phone import lookup_key
from connector.emulators.dataverse.app import create_emulator_app
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex
from tests.e2e.conftest import connector_env, run_cli


def test_sync_phones_full_then_incremental(tmp_path: Path) -> None:
    with running(create_emulator_app()) as url:
        api = WebApi(url, StaticTokenProvider("emulator-token"), requests.Session())
        client = DataverseClient(api)
        contact = client.create(
            "contacts",
            {"lastname": "Lee", "mobilephone": "(415) 555-0101", "address1_country": "US"},
        )
        client.create("contacts", {"lastname": "Junk", "mobilephone": "call me maybe"})
        env = connector_env(
            tmp_path,
            {"CONNECTOR_DATAVERSE__URL": url, "CONNECTOR_DATAVERSE__TOKEN": "emulator-token"},
        )
        full = run_cli("sync", "phones", "--full", env=env, cwd=tmp_path, timeout=120)
        assert full.returncode == 0, full.stdout + full.stderr
        assert "phone sync" in full.stdout
        assert "contact" in full.stdout and "full" in full.stdout
        lead = client.create("leads", {"lastname": "New", "mobilephone": "+1 415 555 0199"})
        again = run_cli("sync", "phones", env=env, cwd=tmp_path, timeout=120)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "delta" in again.stdout  # the emulator tracks changes on contact and lead
        api.close()
    store = StateStore.from_url(env["CONNECTOR_STATE__URL"])
    index = PhoneIndex(store)
    assert {str(c.record) for c in index.lookup(lookup_key("+14155550101"))} == {
        f"contact:{contact}"
    }
    assert {str(c.record) for c in index.lookup(lookup_key("+14155550199"))} == {f"lead:{lead}"}
    index.close()
    store.close()


def test_sync_phones_without_dataverse_says_what_is_missing(tmp_path: Path) -> None:
    result = run_cli("sync", "phones", env=connector_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "CONNECTOR_DATAVERSE__URL" in result.stdout
