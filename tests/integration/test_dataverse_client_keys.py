"""Alternate keys and metadata through the client against the emulator over real HTTP."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import requests

from connector.bootstrap.server_thread import running
from connector.dataverse.client import DataverseClient
from connector.dataverse.failures import is_duplicate
from connector.dataverse.odata import eq
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.limits import Limits
from connector.errors import DataverseConflictError, DataverseError
from connector.testing.emulator_client import emulator_client

KEY_PATH = "EntityDefinitions(LogicalName='account')/Keys"


def _client(url: str, attempts: int = 4, concurrency: int = 8) -> DataverseClient:
    return emulator_client(url, attempts=attempts, concurrency=concurrency, backoff_max=0.5)


def _add_account_number_key(client: DataverseClient) -> None:
    client.request(
        "POST",
        KEY_PATH,
        body={
            "SchemaName": "csms_accountnumber_key",
            "KeyAttributes": ["accountnumber"],
            "DisplayName": {"LocalizedLabels": [{"Label": "Account number", "LanguageCode": 1033}]},
        },
        solution="SmsConnector",
    )


@pytest.fixture
def client(emulator_url: str) -> Iterator[DataverseClient]:
    dv = _client(emulator_url)
    _add_account_number_key(dv)
    yield dv
    dv.api.close()


def test_the_key_created_through_the_metadata_api_reads_back(client: DataverseClient) -> None:
    keys = client.request("GET", KEY_PATH, strong_consistency=True).json()["value"]
    (key,) = [k for k in keys if k["SchemaName"] == "csms_accountnumber_key"]
    assert key["KeyAttributes"] == ["accountnumber"]
    client.publish_xml(
        "<importexportxml><entities><entity>account</entity></entities></importexportxml>"
    )


def test_create_only_by_alternate_key_writes_once(client: DataverseClient) -> None:
    number = f"O'Hara-{uuid.uuid4().hex[:6]}"
    key = {"accountnumber": number}
    assert client.create_only("accounts", key, {"name": "First"}) is True
    assert client.create_only("accounts", key, {"name": "Second"}) is False
    assert client.retrieve("accounts", key, select=["name"])["name"] == "First"
    client.upsert("accounts", key, {"name": "Upserted"})
    client.update("accounts", key, {"name": "Updated"})
    rows = list(client.query("accounts", select=["name"], filter=eq("accountnumber", number)))
    assert [r["name"] for r in rows] == ["Updated"]


def test_a_duplicate_key_on_plain_create_is_a_conflict(client: DataverseClient) -> None:
    number = f"dup-{uuid.uuid4().hex[:6]}"
    client.create("accounts", {"name": "A", "accountnumber": number})
    with pytest.raises(DataverseConflictError) as caught:
        client.create("accounts", {"name": "B", "accountnumber": number})
    assert is_duplicate(caught.value)


def test_a_non_key_column_in_the_url_is_refused(client: DataverseClient) -> None:
    with pytest.raises(DataverseError) as caught:
        client.retrieve("accounts", {"name": "Acme"})
    assert caught.value.status == 400


def test_repeated_deliveries_under_throttling_leave_one_row_per_key() -> None:
    with running(
        create_emulator_app(limits=Limits(requests_per_window=20, window_seconds=1.0))
    ) as url:
        dv = _client(url, attempts=40, concurrency=4)
        _add_account_number_key(dv)
        numbers = [f"msg-{uuid.uuid4().hex[:8]}" for _ in range(8)]
        created: list[bool] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def deliver(number: str) -> None:
            try:
                outcome = dv.create_only("accounts", {"accountnumber": number}, {"name": number})
                with lock:
                    created.append(outcome)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=deliver, args=(n,)) for n in numbers * 3]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        rows = [
            r
            for n in numbers
            for r in dv.query("accounts", select=["accountnumber"], filter=eq("accountnumber", n))
        ]
        throttled = requests.get(url + "/_emulator/stats", timeout=10).json()["throttled"]
    assert errors == []
    assert sorted(r["accountnumber"] for r in rows) == sorted(numbers)
    assert created.count(True) == len(numbers) and created.count(False) == 2 * len(numbers)
    assert throttled > 0
