"""The client's ``$batch`` against the emulator over real HTTP: change sets, failures, splitting."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from connector.dataverse.batch import BatchOperation, ChangeSet
from connector.dataverse.client import DataverseClient
from connector.dataverse.odata import eq
from connector.testing.emulator_client import emulator_client


@pytest.fixture
def base(emulator_url: str) -> str:
    return emulator_url  # the session's emulator, reset for this test


@pytest.fixture
def client(base: str) -> Iterator[DataverseClient]:
    client = emulator_client(base)
    yield client
    client.api.close()


def _marker() -> str:
    return f"b-{uuid.uuid4().hex[:8]}"


def _contacts(client: DataverseClient, marker: str) -> list[dict[str, object]]:
    return list(client.query("contacts", select=["lastname"], filter=eq("firstname", marker)))


def _stats(base: str) -> dict[str, int]:
    return dict(requests.get(base + "/_emulator/stats", timeout=10).json())


def test_change_set_creates_a_contact_and_a_task_regarding_it(client: DataverseClient) -> None:
    marker = _marker()
    changeset = ChangeSet(
        [
            BatchOperation("POST", "contacts", {"firstname": marker, "lastname": "Atomic"}),
            BatchOperation(
                "POST",
                "tasks",
                {"subject": marker, "regardingobjectid_contact_task@odata.bind": "$1"},
            ),
        ]
    )
    read = BatchOperation("GET", f"contacts?$select=lastname&$filter=firstname eq '{marker}'")
    contact, task, got = client.execute_batch([changeset, read])
    assert contact.ok and task.ok and got.ok
    assert contact.entity_id and task.entity_id
    assert client.retrieve("tasks", task.entity_id)["_regardingobjectid_value"] == contact.entity_id
    assert [row["lastname"] for row in got.body["value"]] == ["Atomic"]


def test_failed_change_set_rolls_back_and_independent_parts_still_run(
    client: DataverseClient,
) -> None:
    marker = _marker()
    doomed = ChangeSet(
        [
            BatchOperation("POST", "contacts", {"firstname": marker, "lastname": "RolledBack"}),
            BatchOperation("POST", "tasks", {"subject": marker, "no_such_nav@odata.bind": "$1"}),
        ]
    )
    independent = BatchOperation("POST", "contacts", {"firstname": marker, "lastname": "Kept"})
    results = client.execute_batch([doomed, independent], continue_on_error=True)
    assert [r.ok for r in results] == [False, False, True]
    assert results[1].error is not None and results[1].error.status == 400
    assert [c["lastname"] for c in _contacts(client, marker)] == ["Kept"]


def test_without_continue_on_error_the_batch_stops_and_later_parts_never_run(
    client: DataverseClient,
) -> None:
    marker = _marker()
    results = client.execute_batch(
        [
            BatchOperation("POST", "contacts", {"firstname": marker, "lastname": "First"}),
            BatchOperation(
                "PATCH", f"contacts({uuid.uuid4()})", {"lastname": "x"}, {"If-Match": "*"}
            ),
            BatchOperation("POST", "contacts", {"firstname": marker, "lastname": "Never"}),
        ]
    )
    assert results[0].ok
    assert results[1].error is not None and results[1].error.status == 404
    assert not results[2].executed
    assert [c["lastname"] for c in _contacts(client, marker)] == ["First"]


def test_more_than_1000_operations_are_split_into_two_batches(
    client: DataverseClient, base: str
) -> None:
    marker = _marker()
    before = _stats(base)
    ops = [
        BatchOperation("POST", "contacts", {"firstname": marker, "lastname": str(i)})
        for i in range(1001)
    ]
    results = client.execute_batch(ops, continue_on_error=True)
    after = _stats(base)
    assert len(results) == 1001 and all(r.ok for r in results)
    assert after["batch_requests"] - before["batch_requests"] == 2
    assert len({r.entity_id for r in results}) == 1001
    assert len(_contacts(client, marker)) == 1001
