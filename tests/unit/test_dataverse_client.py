"""The client sends exactly the documented requests and reads the documented answers.

Dataverse is replayed with ``responses`` (third-party HTTP in an adapter test); each test
checks the request the client sent (method, URL, headers, body) as well as what it returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote, unquote

import pytest
import requests
import responses

from connector.dataverse.auth import StaticTokenProvider
from connector.dataverse.batch import BatchOperation, ChangeSet
from connector.dataverse.client import DataverseClient
from connector.dataverse.odata import eq
from connector.dataverse.paging import rebased_link
from connector.dataverse.retry import RetryPolicy
from connector.dataverse.transport import WebApi
from connector.errors import (
    DataverseConflictError,
    DataverseNotFoundError,
    InvalidInputError,
)

ORG = "https://org.crm.dynamics.com"
API = f"{ORG}/api/data/v9.2/"
ID = "7eb682f1-ca75-e511-80d4-00155d2a68d1"
TOKEN = "static-test-token"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(waits: list[float]) -> DataverseClient:
    api = WebApi(
        ORG,
        StaticTokenProvider(TOKEN),
        requests.Session(),
        retry=RetryPolicy(max_attempts=4, sleep=waits.append),
    )
    return DataverseClient(api, page_size=2)


def _sent(rsps: responses.RequestsMock, index: int = -1) -> requests.PreparedRequest:
    return rsps.calls[index].request


def _json_body(request: requests.PreparedRequest) -> object:
    body = request.body
    return json.loads(body.decode() if isinstance(body, bytes) else str(body))


def test_create_reads_the_id_from_odata_entityid_of_a_204(
    client: DataverseClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(
        API + "accounts",
        status=204,
        headers={"OData-EntityId": f"{API}accounts({ID})", "OData-Version": "4.0"},
    )
    assert client.create("accounts", {"name": "Sample Account", "creditonhold": False}) == ID
    sent = _sent(rsps)
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["OData-MaxVersion"] == "4.0" and sent.headers["OData-Version"] == "4.0"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"].startswith("application/json")
    assert "Prefer" not in sent.headers
    assert _json_body(sent) == {"name": "Sample Account", "creditonhold": False}


def test_create_returning_asks_for_representation_and_returns_the_201_body(
    client: DataverseClient, rsps: responses.RequestsMock
) -> None:
    row = {"@odata.etag": 'W/"536530"', "name": "Sample Account", "accountid": ID}
    rsps.post(
        API + "accounts",
        status=201,
        json=row,
        headers={"Preference-Applied": "return=representation"},
    )
    assert client.create_returning("accounts", {"name": "Sample Account"}, ["name"]) == row
    sent = _sent(rsps)
    assert sent.headers["Prefer"] == "return=representation"
    assert sent.url == API + "accounts?$select=name"


def test_update_sends_if_match_star_and_a_404_envelope_becomes_not_found(
    client: DataverseClient, rsps: responses.RequestsMock
) -> None:
    rsps.patch(
        API + f"accounts({ID})",
        status=404,
        json={"error": {"code": "0x80040217", "message": f"account With Id = {ID} Does Not Exist"}},
        headers={"x-ms-service-request-id": "req-404"},
    )
    with pytest.raises(DataverseNotFoundError) as caught:
        client.update("accounts", ID, {"name": "Updated"})
    assert _sent(rsps).headers["If-Match"] == "*"
    error = caught.value
    assert (error.status, error.service_code, error.request_id) == (404, "0x80040217", "req-404")
    assert not error.transient and len(rsps.calls) == 1


def test_create_only_by_alternate_key_treats_412_as_already_there(
    client: DataverseClient, rsps: responses.RequestsMock
) -> None:
    url = API + "csms_smses(csms_providermessageid='SM''1')"
    rsps.patch(url, status=204, headers={"OData-EntityId": url})
    rsps.patch(
        url,
        status=412,
        json={"error": {"code": "0x80040237", "message": "A record with matching key values..."}},
    )
    key = {"csms_providermessageid": "SM'1"}
    assert client.create_only("csms_smses", key, {"subject": "hi"}) is True
    assert client.create_only("csms_smses", key, {"subject": "hi"}) is False
    assert all(c.request.headers["If-None-Match"] == "*" for c in rsps.calls)
    assert all("If-Match" not in c.request.headers for c in rsps.calls)


def test_upsert_patches_without_preconditions_and_a_concurrency_412_still_raises(
    client: DataverseClient, rsps: responses.RequestsMock
) -> None:
    url = API + "example_records(example_key1=2,example_key2=2)"
    rsps.patch(url, status=204, headers={"OData-EntityId": url})
    assert client.upsert("example_records", {"example_key1": 2, "example_key2": 2}, {}) is None
    sent = _sent(rsps)
    assert "If-Match" not in sent.headers and "If-None-Match" not in sent.headers
    rsps.patch(API + f"accounts({ID})", status=412, json={"error": {"code": "", "message": "x"}})
    with pytest.raises(DataverseConflictError):
        client.update("accounts", ID, {"name": "x"})


def test_retrieve_and_delete(client: DataverseClient, rsps: responses.RequestsMock) -> None:
    rsps.get(API + f"contacts({ID})", json={"contactid": ID, "fullname": "Ann"})
    rsps.delete(API + f"contacts({ID})", status=204)
    rsps.delete(API + f"contacts({ID})", status=404, json={"error": {"code": "0x80040217"}})
    row = client.retrieve("contacts", ID, select=["fullname", "mobilephone"])
    assert row["fullname"] == "Ann"
    assert rsps.calls[0].request.url == API + f"contacts({ID})?$select=fullname,mobilephone"
    assert client.delete("contacts", ID) is True
    assert client.delete("contacts", ID, missing_ok=True) is False


def test_query_pages_through_next_links_with_the_same_max_page_size(
    client: DataverseClient, rsps: responses.RequestsMock
) -> None:
    next_link = API + "contacts?$select=fullname&$skiptoken=%3Ccookie%20pagenumber=%222%22%20/%3E"
    rsps.get(API + "contacts", json={"value": [{"n": 1}, {"n": 2}], "@odata.nextLink": next_link})
    rsps.get(next_link, json={"value": [{"n": 3}]})
    rows = list(
        client.query("contacts", select=["fullname"], filter=eq("mobilephone", "+1 555 & co"))
    )
    assert [r["n"] for r in rows] == [1, 2, 3]
    first, second = rsps.calls[0].request, rsps.calls[1].request
    assert first.headers["Prefer"] == second.headers["Prefer"] == "odata.maxpagesize=2"
    assert unquote(first.url or "").endswith("$filter=mobilephone eq '+1 555 & co'")
    assert second.url == next_link


def test_top_is_never_combined_with_max_page_size(
    client: DataverseClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(API + "contacts", json={"value": []})
    assert list(client.query("contacts", top=5, orderby=["modifiedon desc"])) == []
    sent = _sent(rsps)
    assert "Prefer" not in sent.headers
    assert sent.url == API + "contacts?$orderby=modifiedon%20desc&$top=5"


def test_a_next_link_to_another_host_is_refused_before_the_token_leaves(
    client: DataverseClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(API + "contacts", json={"value": [], "@odata.nextLink": "https://evil.test/x"})
    with pytest.raises(InvalidInputError):
        list(client.query("contacts"))
    assert len(rsps.calls) == 1


def test_change_tracking_reads_delta_link_and_tombstones(
    client: DataverseClient, rsps: responses.RequestsMock
) -> None:
    delta = API + "accounts?$select=name&$deltatoken=919042%2108%2f22%2f2017%2008%3a10%3a44"
    rsps.get(
        API + "accounts",
        json={"value": [{"accountid": ID, "name": "A"}], "@odata.deltaLink": delta},
    )
    rsps.get(
        delta,
        json={
            "@odata.context": f"{API}$metadata#accounts(name)/$delta",
            "value": [
                {"accountid": "b" * 8 + ID[8:], "name": "B"},
                {
                    "@odata.context": f"{API}$metadata#accounts/$deletedEntity",
                    "id": ID.upper(),
                    "reason": "deleted",
                },
            ],
            "@odata.deltaLink": delta + "2",
        },
    )
    first = list(client.changes("accounts", select=["name"]))
    assert [p.rows for p in first] == [[{"accountid": ID, "name": "A"}]]
    assert first[-1].delta_link == delta
    assert "odata.track-changes" in rsps.calls[0].request.headers["Prefer"]
    (page,) = client.changes("accounts", delta_link=delta)
    assert [r["name"] for r in page.rows] == ["B"]
    assert page.deleted_ids == [ID]
    assert page.delta_link == delta + "2"
    assert unquote(rsps.calls[1].request.url or "") == unquote(delta)  # hex case may differ
    assert "odata.track-changes" in rsps.calls[1].request.headers["Prefer"]


def test_fetch_xml_is_url_encoded_and_paging_annotations_are_read(
    client: DataverseClient, rsps: responses.RequestsMock
) -> None:
    fetch = (
        '<fetch page="1" count="2"><entity name="account"><attribute name="name"/></entity></fetch>'
    )
    rsps.get(
        API + "accounts",
        json={
            "value": [{"name": "A"}],
            "@Microsoft.Dynamics.CRM.morerecords": True,
            "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie": "<cookie/>",
        },
    )
    page = client.fetch_xml("accounts", fetch)
    assert page.rows == [{"name": "A"}] and page.more_records and page.paging_cookie == "<cookie/>"
    url = _sent(rsps).url or ""
    assert "<" not in url and " " not in url
    assert unquote(url.split("fetchXml=", 1)[1]) == fetch
    assert "fetchxmlpagingcookie" in _sent(rsps).headers["Prefer"]


def test_fetch_xml_all_follows_the_paging_cookie(
    client: DataverseClient, rsps: responses.RequestsMock
) -> None:
    inner = '<cookie page="1"><accountid last="{X}" first="{Y}" /></cookie>'
    encoded = quote(quote(inner, safe=""), safe="")
    cookie = f'<cookie pagenumber="2" pagingcookie="{encoded}" istracking="False" />'
    rsps.get(
        API + "accounts",
        json={
            "value": [{"name": "A"}],
            "@Microsoft.Dynamics.CRM.morerecords": True,
            "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie": cookie,
        },
    )
    rsps.get(API + "accounts", json={"value": [{"name": "B"}]})
    fetch = (
        '<fetch page="1" count="1"><entity name="account"><attribute name="name" />'
        "</entity></fetch>"
    )
    assert [r["name"] for r in client.fetch_xml_all("accounts", fetch)] == ["A", "B"]
    second = unquote((rsps.calls[1].request.url or "").split("fetchXml=", 1)[1])
    assert 'page="2"' in second
    assert (
        'paging-cookie="&lt;cookie page=&quot;1&quot;&gt;&lt;accountid last=&quot;{X}&quot;'
        in second
    )


def test_actions_and_functions(client: DataverseClient, rsps: responses.RequestsMock) -> None:
    rsps.get(API + "WhoAmI", json={"UserId": ID, "BusinessUnitId": ID, "OrganizationId": ID})
    rsps.post(API + "PublishXml", status=204)
    rsps.post(API + f"contacts({ID})/Microsoft.Dynamics.CRM.Custom", json={"ok": True})
    rsps.get(API + "RetrieveVersion()", json={"Version": "9.2"})
    assert client.who_am_i()["UserId"] == ID
    client.publish_xml("<importexportxml/>")
    assert _json_body(rsps.calls[1].request) == {"ParameterXml": "<importexportxml/>"}
    assert client.call_action("Custom", {"a": 1}, bound_to=("contacts", ID)) == {"ok": True}
    assert client.call_function("RetrieveVersion") == {"Version": "9.2"}


def test_metadata_request_carries_solution_and_consistency_headers(
    client: DataverseClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(
        API + "EntityDefinitions",
        status=204,
        headers={"OData-EntityId": f"{API}EntityDefinitions({ID})"},
    )
    answer = client.request(
        "POST",
        "EntityDefinitions",
        body={"SchemaName": "csms_sms"},
        solution="SmsConnector",
        strong_consistency=True,
    )
    assert answer.status == 204
    sent = _sent(rsps)
    assert sent.headers["MSCRM.SolutionUniqueName"] == "SmsConnector"
    assert sent.headers["Consistency"] == "Strong"
    assert sent.req_kwargs["timeout"] == 30.0  # type: ignore[attr-defined]
    rsps.get(API + "EntityDefinitions(LogicalName='csms_sms')", json={"LogicalName": "csms_sms"})
    slow = client.request("GET", "EntityDefinitions(LogicalName='csms_sms')", timeout=120)
    assert slow.json() == {"LogicalName": "csms_sms"}
    assert _sent(rsps).req_kwargs["timeout"] == 120  # type: ignore[attr-defined]


def test_batch_with_failed_change_set_reports_one_result_per_operation(
    client: DataverseClient, rsps: responses.RequestsMock
) -> None:
    body = (
        "--batchresponse_1\r\n"
        "Content-Type: application/http\r\n"
        "Content-Transfer-Encoding: binary\r\n\r\n"
        "HTTP/1.1 400 Bad Request\r\n"
        "Content-Type: application/json\r\n\r\n"
        '{"error":{"code":"0x80044331","message":"A validation error occurred."}}\r\n'
        "--batchresponse_1\r\n"
        "Content-Type: application/http\r\n"
        "Content-Transfer-Encoding: binary\r\n\r\n"
        "HTTP/1.1 204 No Content\r\n"
        f"OData-EntityId: {API}tasks({ID})\r\n\r\n\r\n"
        "--batchresponse_1--\r\n"
    )
    rsps.post(
        API + "$batch",
        status=200,
        body=body,
        content_type="multipart/mixed; boundary=batchresponse_1",
    )
    items: list[BatchOperation | ChangeSet] = [
        ChangeSet(
            [
                BatchOperation("POST", "contacts", {"lastname": "A"}),
                BatchOperation("POST", "tasks", {"subject": "x" * 300}),
            ]
        ),
        BatchOperation("POST", "tasks", {"subject": "ok"}),
    ]
    results = client.execute_batch(items, continue_on_error=True)
    assert [r.ok for r in results] == [False, False, True]
    assert results[2].entity_id == ID
    sent = _sent(rsps)
    assert sent.headers["Prefer"] == "odata.continue-on-error"
    assert sent.headers["Content-Type"].startswith("multipart/mixed; boundary=")
    assert b"POST /api/data/v9.2/contacts HTTP/1.1" in (sent.body or b"")


def test_a_stopped_batch_answered_400_is_parsed_not_raised(
    client: DataverseClient, rsps: responses.RequestsMock
) -> None:
    body = (
        "--batchresponse_2\r\nContent-Type: application/http\r\n"
        "Content-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 400 Bad Request\r\n"
        "REQ_ID: r-1\r\n\r\n"
        '{"error":{"code":"0x80044331","message":"too long"}}\r\n--batchresponse_2--\r\n'
    )
    rsps.post(
        API + "$batch",
        status=400,
        body=body,
        content_type="multipart/mixed; boundary=batchresponse_2",
    )
    results = client.execute_batch(
        [BatchOperation("POST", "tasks", {}), BatchOperation("POST", "tasks", {})]
    )
    assert results[0].error is not None and results[0].error.request_id == "r-1"
    assert not results[1].executed
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("http://127.0.0.1:40123/api/data/v9.2/contacts?$deltatoken=9%3A1",
         "contacts?$deltatoken=9%3A1"),
        ("https://org.crm.dynamics.com/api/data/v9.1/accounts?$deltatoken=5",
         "accounts?$deltatoken=5"),
        ("https://org.crm.dynamics.com/tenant/api/data/v9.2/leads", "leads"),
        ("contacts?$deltatoken=3", "contacts?$deltatoken=3"),
        ("https://elsewhere.example.com/feed?t=1", None),
        ("https://org.crm.dynamics.com/api/data/v9.2/", None),
    ],
)  # fmt: skip
def test_stored_link_is_rebased_onto_the_web_api_root(link: str, expected: str | None) -> None:
    assert rebased_link(link) == expected
