"""`connector setup`'s use case against the emulator with the schema installed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from connector.crm.configuration_store import DataverseConfigurationStore
from connector.dataverse.client import DataverseClient
from connector.domain.model import Provider
from connector.secret_box import SecretBox
from connector.services.setup import SetupRequest, provider_secret, run_setup
from tests.integration.test_installer_emulator import make_client

TOKEN = "9f3b7c2e4d5a6b7c8d9e0f1a2b3c4d5e"


@pytest.fixture
def client(installed_emulator_url: str) -> Iterator[DataverseClient]:
    dv = make_client(installed_emulator_url)
    yield dv
    dv.api.close()


def _request(**changes: object) -> SetupRequest:
    values: dict[str, object] = {
        "sender": "+1 (415) 555-0133",
        "provider": Provider.TWILIO,
        "account_sid": "AC" + "2" * 32,
        "auth_token": TOKEN,
        "default_country": "US",
        "public_base_url": "https://sms.example.com",
    }
    values.update(changes)
    return SetupRequest(**values)  # type: ignore[arg-type]


def test_setup_twice_leaves_one_configuration_and_one_set_of_defaults(
    client: DataverseClient,
) -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    store = DataverseConfigurationStore(client)
    first = run_setup(_request(), store, box)
    second = run_setup(_request(sender="4155550133"), store, box)
    assert first.created and not second.created
    assert second.configuration.id == first.configuration.id
    configs = list(client.query("smsc_configurations", select=["smsc_senderkey"]))
    assert [c["smsc_senderkey"] for c in configs].count("14155550133") == 1
    config_id = str(first.configuration.id)
    types = store.record_types(config_id)
    assert [(t.table, t.priority) for t in types] == [
        ("contact", 1),
        ("account", 2),
        ("opportunity", 3),
        ("lead", 4),
    ]
    assert types[2].related_record_type_id == types[0].id
    keywords = sorted(k.keyword for k in store.keywords(config_id))
    assert len(keywords) == len(set(keywords)) == 13
    found = store.find_configuration("+14155550133")
    assert found is not None
    assert found.callback_url == "https://sms.example.com/webhooks/twilio/messages"
    assert found.secret is not None and box.decrypt(found.secret) == TOKEN


def test_stored_token_is_not_readable_in_plain_text(client: DataverseClient) -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    run_setup(_request(sender="+14155550144"), DataverseConfigurationStore(client), box)
    raw = client.request("GET", "smsc_configurations").content.decode()
    assert "14155550144" in raw
    assert TOKEN not in raw
    rows = json.loads(raw)["value"]
    secret = next(r["smsc_secret"] for r in rows if r["smsc_senderkey"] == "14155550144")
    assert box.decrypt(secret) == TOKEN


def test_plain_token_typed_into_dataverse_is_encrypted_on_first_read(
    client: DataverseClient,
) -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    store = DataverseConfigurationStore(client)
    config = run_setup(_request(sender="+14155550155", auth_token=None), store, box).configuration
    client.update("smsc_configurations", str(config.id), {"smsc_secret": TOKEN})
    typed = store.find_configuration("+14155550155")
    assert typed is not None and typed.secret == TOKEN
    assert provider_secret(typed, box, store) == TOKEN
    row = client.retrieve("smsc_configurations", str(config.id), select=["smsc_secret"])
    assert TOKEN not in row["smsc_secret"] and box.decrypt(row["smsc_secret"]) == TOKEN
