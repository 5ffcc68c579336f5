"""$batch builder and parser against the documented multipart shapes."""

from __future__ import annotations

import pytest

from connector.dataverse.batch import (
    BatchOperation,
    ChangeSet,
    build_batch,
    count_operations,
    split_items,
)
from connector.dataverse.batch_results import parse_batch_response
from connector.errors import DataverseConflictError, DataverseError, InvalidInputError

ACCOUNT = "00000000-0000-0000-0000-000000000001"
TASK = "e73ffc82-e292-ed11-aad1-000d3a9933c9"


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


def _documented_items() -> list[BatchOperation | ChangeSet]:
    create = BatchOperation(
        "POST",
        "tasks",
        {
            "subject": "Task 1 in batch",
            "regardingobjectid_account_task@odata.bind": f"accounts({ACCOUNT})",
        },
    )
    read = BatchOperation("GET", f"accounts({ACCOUNT})/Account_Tasks?$select=subject")
    return [ChangeSet([create]), read]


def test_builds_the_documented_request_body() -> None:
    built = build_batch(_documented_items(), batch_id="22975cad")
    assert built.content_type == 'multipart/mixed; boundary="batch_22975cad"'
    assert built.body == _crlf(
        "--batch_22975cad\n"
        'Content-Type: multipart/mixed; boundary="changeset_22975cad_0"\n'
        "\n"
        "--changeset_22975cad_0\n"
        "Content-Type: application/http\n"
        "Content-Transfer-Encoding: binary\n"
        "Content-ID: 1\n"
        "\n"
        "POST /api/data/v9.2/tasks HTTP/1.1\n"
        "Content-Type: application/json; type=entry\n"
        "\n"
        '{"subject":"Task 1 in batch","regardingobjectid_account_task@odata.bind":'
        f'"accounts({ACCOUNT})"}}\n'
        "--changeset_22975cad_0--\n"
        "\n"
        "--batch_22975cad\n"
        "Content-Type: application/http\n"
        "Content-Transfer-Encoding: binary\n"
        "Content-ID: 2\n"  # every operation is numbered, so answers trace back to it
        "\n"
        f"GET /api/data/v9.2/accounts({ACCOUNT})/Account_Tasks?$select=subject HTTP/1.1\n"
        "\n"
        "\n"
        "--batch_22975cad--\n"
    )


def test_parses_documented_success_response_one_result_per_operation() -> None:
    built = build_batch(_documented_items(), batch_id="x")
    body = _crlf(
        "--batchresponse_f27ef42d\n"
        "Content-Type: multipart/mixed; boundary=changesetresponse_64cc3fff\n"
        "\n"
        "--changesetresponse_64cc3fff\n"
        "Content-Type: application/http\n"
        "Content-Transfer-Encoding: binary\n"
        "Content-ID: 1\n"
        "\n"
        "HTTP/1.1 204 No Content\n"
        "OData-Version: 4.0\n"
        f"Location: https://org.crm.dynamics.com/api/data/v9.2/tasks({TASK})\n"
        f"OData-EntityId: https://org.crm.dynamics.com/api/data/v9.2/tasks({TASK})\n"
        "\n"
        "\n"
        "--changesetresponse_64cc3fff--\n"
        "--batchresponse_f27ef42d\n"
        "Content-Type: application/http\n"
        "Content-Transfer-Encoding: binary\n"
        "\n"
        "HTTP/1.1 200 OK\n"
        "Content-Type: application/json; odata.metadata=minimal; odata.streaming=true\n"
        "OData-Version: 4.0\n"
        "\n"
        '{"value":[{"subject":"Task 1 in batch","activityid":"' + TASK + '"}]}\n'
        "--batchresponse_f27ef42d--\n"
    )
    results = parse_batch_response(
        "multipart/mixed; boundary=batchresponse_f27ef42d", body, built.items
    )
    assert [(r.status, r.ok) for r in results] == [(204, True), (200, True)]
    assert results[0].entity_id == TASK
    assert results[0].operation.content_id == "1"
    assert results[1].body["value"][0]["activityid"] == TASK


def test_stopped_batch_reports_the_failure_and_the_operations_never_run() -> None:
    items = [
        BatchOperation("POST", "tasks", {"subject": "x" * 300}),
        BatchOperation("POST", "tasks", {"subject": "second"}),
    ]
    body = _crlf(
        "--batchresponse_156da4b8\n"
        "Content-Type: application/http\n"
        "Content-Transfer-Encoding: binary\n"
        "\n"
        "HTTP/1.1 400 Bad Request\n"
        "REQ_ID: 5ecd1cb3-1730-4ffc-909c-d44c22270026\n"
        "Content-Type: application/json; odata.metadata=minimal\n"
        "OData-Version: 4.0\n"
        "\n"
        '{"error":{"code":"0x80044331","message":"A validation error occurred."}}\n'
        "--batchresponse_156da4b8--\n"
    )
    first, second = parse_batch_response(
        "multipart/mixed; boundary=batchresponse_156da4b8", body, items
    )
    assert first.status == 400 and isinstance(first.error, DataverseError)
    assert first.error.service_code == "0x80044331"
    assert first.error.request_id == "5ecd1cb3-1730-4ffc-909c-d44c22270026"
    assert not second.executed and second.error is not None and second.error.transient


def test_failed_change_set_fails_every_member_and_independent_parts_still_report() -> None:
    changeset = ChangeSet(
        [
            BatchOperation("POST", "contacts", {"lastname": "A"}),
            BatchOperation("POST", "tasks", {"regardingobjectid_contact_task@odata.bind": "$1"}),
        ]
    )
    independent = BatchOperation("PATCH", f"accounts({ACCOUNT})", {"name": "ok"})
    built = build_batch([changeset, independent], batch_id="b")
    body = _crlf(
        "--batchresponse_1\n"
        "Content-Type: application/http\n"
        "Content-Transfer-Encoding: binary\n"
        "\n"
        "HTTP/1.1 412 Precondition Failed\n"
        "Content-Type: application/json\n"
        "\n"
        '{"error":{"code":"0x80060892","message":"A record that has the attribute values'
        ' already exists."}}\n'
        "--batchresponse_1\n"
        "Content-Type: application/http\n"
        "Content-Transfer-Encoding: binary\n"
        "\n"
        "HTTP/1.1 204 No Content\n"
        f"OData-EntityId: https://org/api/data/v9.2/accounts({ACCOUNT})\n"
        "\n"
        "\n"
        "--batchresponse_1--\n"
    )
    results = parse_batch_response("multipart/mixed; boundary=batchresponse_1", body, built.items)
    assert len(results) == 3
    assert all(isinstance(r.error, DataverseConflictError) for r in results[:2])
    assert results[2].ok and results[2].entity_id == ACCOUNT


def test_change_set_members_get_unique_content_ids_and_references_are_checked() -> None:
    first = ChangeSet([BatchOperation("POST", "contacts", {}), BatchOperation("PATCH", "$1", {})])
    second = ChangeSet([BatchOperation("POST", "contacts", {})])
    built = build_batch([first, second], batch_id="c")
    ids = [op.content_id for item in built.items for op in item.operations]  # type: ignore[union-attr]
    assert ids == ["1", "2", "3"]
    assert b"PATCH $1 HTTP/1.1" in built.body
    with pytest.raises(InvalidInputError):
        build_batch([ChangeSet([BatchOperation("PATCH", "$1", {})])])
    with pytest.raises(InvalidInputError):
        build_batch([ChangeSet([BatchOperation("GET", "contacts")])])


def test_splits_at_the_operation_limit_without_cutting_a_change_set() -> None:
    items: list[BatchOperation | ChangeSet] = [
        BatchOperation("PATCH", f"accounts({ACCOUNT})", {}) for _ in range(998)
    ]
    items.append(ChangeSet([BatchOperation("POST", "tasks", {}) for _ in range(3)]))
    items += [BatchOperation("DELETE", f"tasks({TASK})") for _ in range(1500)]
    groups = list(split_items(items))
    assert [count_operations(g) for g in groups] == [998, 1000, 503]
    assert isinstance(groups[1][0], ChangeSet)
    with pytest.raises(InvalidInputError):
        build_batch(items)
    with pytest.raises(InvalidInputError):
        list(split_items([ChangeSet([BatchOperation("POST", "t", {})] * 1001)]))


def test_stopped_batch_maps_the_failure_by_content_id_and_earlier_operations_ran() -> None:
    items = [
        BatchOperation("POST", "contacts", {"lastname": "ran"}),
        BatchOperation("PATCH", f"contacts({TASK})", {"lastname": "x"}, {"If-Match": "*"}),
        BatchOperation("POST", "contacts", {"lastname": "never"}),
    ]
    built = build_batch(items, batch_id="s")
    body = _crlf(
        "--batchresponse_3\n"
        "Content-Type: application/http\n"
        "Content-Transfer-Encoding: binary\n"
        "Content-ID: 2\n"
        "\n"
        "HTTP/1.1 404 Not Found\n"
        "\n"
        '{"error":{"code":"0x80040217","message":"contact Does Not Exist"}}\n'
        "--batchresponse_3--\n"
    )
    ran, failed, never = parse_batch_response(
        "multipart/mixed; boundary=batchresponse_3", body, built.items
    )
    assert ran.executed and ran.error is None and ran.status == 0
    assert failed.error is not None and failed.error.status == 404
    assert not never.executed


def test_request_lines_are_percent_encoded() -> None:
    op = BatchOperation("GET", "contacts?$filter=lastname eq 'O''Neil ü'&$select=lastname")
    built = build_batch([op], batch_id="q")
    assert (
        b"GET /api/data/v9.2/contacts?$filter=lastname%20eq%20'O''Neil%20%C3%BC'&$select=lastname"
        b" HTTP/1.1" in built.body
    )
