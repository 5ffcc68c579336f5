"""The consent ledger against the emulator over HTTP: the current row by its alternate key (a
lookup in the key), one history row per change linked to it, idempotent retries, reads back.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest

from connector.crm import tables
from connector.crm.configuration_store import DataverseConfigurationStore
from connector.crm.consent_rows import DataverseConsentLedger, consent_path
from connector.dataverse import odata
from connector.dataverse.client import DataverseClient
from connector.domain.consent import ConsentChange, ConsentMethod, ConsentStatus
from connector.domain.model import Configuration, MessageCategory, Provider
from connector.errors import is_transient
from connector.testing.emulator_client import emulator_client
from tests.port_contracts import CUSTOMER, SENDER, consent_change

NOW = 1_767_000_000.0
STOP_SID = "SM" + "7" * 32
COMMERCIAL = MessageCategory.COMMERCIAL


@pytest.fixture
def config_id(installed: DataverseClient) -> str:
    store = DataverseConfigurationStore(installed)
    return str(store.save_configuration(Configuration("Main", Provider.TWILIO, SENDER)).id)


def _pending(config_id: str) -> ConsentChange:
    return consent_change(
        "form-1",
        config_id,
        COMMERCIAL,
        ConsentStatus.PENDING,
        ConsentMethod.FORM,
        at=NOW,
        expires_at=NOW + 72 * 3600,
    )


def _stop(config_id: str) -> ConsentChange:
    return consent_change(
        STOP_SID,
        config_id,
        COMMERCIAL,
        ConsentStatus.OPTED_OUT,
        ConsentMethod.KEYWORD,
        at=NOW + 60,
        text="STOP",
        message_id=STOP_SID,
    )


def _history(client: DataverseClient) -> list[dict[str, Any]]:
    table = tables.CONSENT_CHANGE
    return list(client.query(table.entity_set, orderby=["smsc_evidenceon"]))


def test_the_current_row_is_addressed_by_phone_configuration_lookup_and_purpose(
    installed: DataverseClient, config_id: str
) -> None:
    ledger = DataverseConsentLedger(installed)
    assert ledger.write([_pending(config_id)]) == [None]
    path = f"smsc_consents(smsc_phone='14155550123',_smsc_configurationid_value={config_id},"
    assert consent_path(_pending(config_id)) == path + "smsc_purpose=105710001)"
    row = installed.request("GET", consent_path(_pending(config_id))).json()
    assert row["smsc_phone"] == "14155550123" and row["smsc_purpose"] == 105710001
    assert row["_smsc_configurationid_value"] == config_id
    assert (row["smsc_status"], row["smsc_method"]) == (105710002, 105710002)
    assert row["smsc_evidenceon"] == "2025-12-29T09:20:00Z"
    assert row["smsc_pendingexpireson"] == "2026-01-01T09:20:00Z"
    assert row["smsc_evidencesource"] == "test:form-1"


def test_a_later_change_rewrites_the_current_row_and_history_keeps_both(
    installed: DataverseClient, config_id: str
) -> None:
    ledger = DataverseConsentLedger(installed)
    pending, stop = _pending(config_id), _stop(config_id)
    assert ledger.write([pending]) == [None]
    assert ledger.write([stop]) == [None]
    current = list(installed.query(tables.CONSENT.entity_set))
    assert len(current) == 1
    row = current[0]
    assert (row["smsc_status"], row["smsc_method"]) == (105710001, 105710000)
    assert (row["smsc_evidencetext"], row["smsc_evidencemessageid"]) == ("STOP", STOP_SID)
    assert row["smsc_pendingexpireson"] is None  # the whole state: no expiry once opted out
    history = _history(installed)
    assert [h["smsc_consentchangeid"] for h in history] == [pending.id, stop.id]
    assert [h["smsc_status"] for h in history] == [105710002, 105710001]
    assert {h["_smsc_consentid_value"] for h in history} == {row["smsc_consentid"]}
    assert {h["_smsc_configurationid_value"] for h in history} == {config_id}
    assert history[1]["smsc_name"] == "STOP from +14155550123 (commercial)"
    assert history[0]["smsc_name"] == "Pending by form: +14155550123 (commercial)"
    assert history[0]["smsc_pendingexpireson"] == "2026-01-01T09:20:00Z"


def test_writing_the_same_changes_again_adds_no_rows(
    installed: DataverseClient, config_id: str
) -> None:
    ledger = DataverseConsentLedger(installed)
    changes = [_pending(config_id), _stop(config_id)]
    for _ in range(3):
        assert ledger.write(changes) == [None, None]
    assert len(list(installed.query(tables.CONSENT.entity_set))) == 1
    assert [h["smsc_consentchangeid"] for h in _history(installed)] == [c.id for c in changes]


def test_a_change_that_dataverse_refuses_fails_alone(
    installed: DataverseClient, config_id: str
) -> None:
    ghost = consent_change(
        "api-9",
        str(uuid.uuid4()),  # no such configuration: its bind finds no row
        COMMERCIAL,
        ConsentStatus.OPTED_IN,
        ConsentMethod.API,
        at=NOW,
    )
    errors = DataverseConsentLedger(installed).write([ghost, _stop(config_id)])
    assert errors[0] is not None and not is_transient(errors[0]) and errors[1] is None
    assert [h["smsc_consentchangeid"] for h in _history(installed)] == [_stop(config_id).id]
    assert len(list(installed.query(tables.CONSENT.entity_set))) == 1  # no current row for it


def test_dataverse_unreachable_is_every_change_transient_error(config_id: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = emulator_client(f"http://127.0.0.1:{port}", attempts=1)
    try:
        errors = DataverseConsentLedger(client).write([_pending(config_id), _stop(config_id)])
    finally:
        client.api.close()
    assert len(errors) == 2 and all(e is not None and is_transient(e) for e in errors)


def test_changed_since_reads_current_rows_and_skips_rows_it_cannot_read(
    installed: DataverseClient, config_id: str
) -> None:
    ledger = DataverseConsentLedger(installed)
    transactional = consent_change(
        "import-1",
        config_id,
        MessageCategory.TRANSACTIONAL,
        ConsentStatus.OPTED_IN,
        ConsentMethod.IMPORT,
        at=NOW,
    )
    assert ledger.write([_pending(config_id), _stop(config_id), transactional]) == [None] * 3
    # an admin's row with no configuration, and one with no status: both skipped
    installed.create(
        tables.CONSENT.entity_set, {"smsc_phone": "14155550999", "smsc_purpose": 105710000}
    )
    installed.create(
        tables.CONSENT.entity_set,
        {
            "smsc_phone": "14155550998",
            "smsc_purpose": 105710000,
            f"{tables.CONFIGURATION_NAV}@odata.bind": odata.bind(
                tables.CONFIGURATION.entity_set, config_id
            ),
        },
    )
    read = ledger.changed_since(None)
    assert sorted((c.purpose.value, c.status.value, c.method.value) for c in read) == [
        ("commercial", "opted_out", "keyword"),
        ("transactional", "opted_in", "import"),
    ]
    stop = next(c for c in read if c.purpose is COMMERCIAL)
    assert (stop.phone, stop.configuration_id) == (CUSTOMER, config_id)
    assert (stop.evidence.text, stop.evidence.message_id, stop.evidence.at) == (
        "STOP",
        STOP_SID,
        NOW + 60,
    )
    assert stop.expires_at is None and stop.id != _stop(config_id).id
