"""Emulator collection queries over real HTTP: filters, ordering, paging, expand, count."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests

from connector.bootstrap.server_thread import running
from connector.emulators.dataverse.app import create_emulator_app


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[requests.Session, str]]:
    with running(create_emulator_app()) as url, requests.Session() as session:
        session.headers["Authorization"] = "Bearer test"
        root = url + "/api/data/v9.2/"
        account = session.post(root + "accounts", json={"name": "Northwind"})
        account_id = account.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
        people = [
            ("Ann", "O'Brien", "15551230001", 0),
            ("Bob", "Smith", "15551230002", 0),
            ("Cid", "smith", None, 1),
            ("Dee", "Jones", "+15551230004", 0),
            ("Eve", "Brown", "15551230005", 0),
        ]
        for first, last, phone, state in people:
            body: dict[str, object] = {
                "firstname": first,
                "lastname": last,
                "mobilephone": phone,
                "statecode": state,
            }
            if first == "Ann":
                body["parentcustomerid_account@odata.bind"] = f"/accounts({account_id})"
            assert session.post(root + "contacts", json=body).status_code == 204
        yield session, root


def _names(session: requests.Session, url: str) -> list[str]:
    response = session.get(url)
    assert response.status_code == 200, response.text
    return [row["firstname"] for row in response.json()["value"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("lastname eq 'SMITH'", ["Bob", "Cid"]),
        ("lastname ne 'smith'", ["Ann", "Dee", "Eve"]),
        ("lastname eq 'O''Brien'", ["Ann"]),
        (
            "statecode eq 0 and (mobilephone eq '15551230002' or lastname eq 'Brown')",
            ["Bob", "Eve"],
        ),
        ("not (statecode eq 0)", ["Cid"]),
        ("mobilephone eq null", ["Cid"]),
        ("mobilephone ne null and statecode eq 0", ["Ann", "Bob", "Dee", "Eve"]),
        ("contains(lastname,'mit')", ["Bob", "Cid"]),
        ("startswith(firstname,'a') or endswith(firstname,'E')", ["Ann", "Dee", "Eve"]),
        ("mobilephone eq '%2B15551230004'", ["Dee"]),
        ("firstname gt 'Bob' and firstname le 'Dee'", ["Cid", "Dee"]),
    ],
)
def test_filter_semantics(
    api: tuple[requests.Session, str], query: str, expected: list[str]
) -> None:
    session, root = api
    names = _names(session, root + f"contacts?$select=firstname&$orderby=firstname&$filter={query}")
    assert names == expected


def test_lookup_value_filter_and_expand(api: tuple[requests.Session, str]) -> None:
    session, root = api
    account = session.get(root + "accounts?$filter=name eq 'northwind'").json()["value"][0]
    rows = session.get(
        root + f"contacts?$filter=_parentcustomerid_value eq {account['accountid']}"
        "&$select=firstname&$expand=parentcustomerid_account($select=name)"
    ).json()["value"]
    assert [r["firstname"] for r in rows] == ["Ann"]
    assert rows[0]["parentcustomerid_account"]["name"] == "Northwind"
    collection = session.get(
        root + f"accounts({account['accountid']})?$expand="
        "contact_customer_accounts($select=firstname)"
    ).json()
    assert [c["firstname"] for c in collection["contact_customer_accounts"]] == ["Ann"]


def test_orderby_desc_and_top(api: tuple[requests.Session, str]) -> None:
    session, root = api
    assert _names(session, root + "contacts?$orderby=firstname desc&$top=2") == ["Eve", "Dee"]


def test_select_returns_only_the_columns_and_the_primary_key(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    row = session.get(root + "contacts?$select=firstname&$top=1").json()["value"][0]
    assert set(row) == {"@odata.etag", "firstname", "contactid"}


def test_unknown_column_in_select_or_filter_is_400(api: tuple[requests.Session, str]) -> None:
    session, root = api
    assert session.get(root + "contacts?$select=nope").status_code == 400
    assert session.get(root + "contacts?$filter=nope eq 1").status_code == 400
    assert session.get(root + "contacts?$filter=firstname eq").status_code == 400


def test_skip_is_rejected(api: tuple[requests.Session, str]) -> None:
    session, root = api
    response = session.get(root + "contacts?$skip=1")
    assert response.status_code == 400
    assert "$skip" in response.json()["error"]["message"]


def test_paging_with_maxpagesize_and_opaque_next_link(api: tuple[requests.Session, str]) -> None:
    session, root = api
    prefer = {"Prefer": "odata.maxpagesize=2"}
    response = session.get(
        root + "contacts?$select=firstname&$orderby=firstname&$top=1", headers=prefer
    )
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=2"
    seen, pages = [], 0
    body = response.json()
    while True:
        pages += 1
        seen += [row["firstname"] for row in body["value"]]
        if "@odata.nextLink" not in body:
            break
        assert "$skiptoken=" in body["@odata.nextLink"]
        body = session.get(body["@odata.nextLink"], headers=prefer).json()
    assert seen == ["Ann", "Bob", "Cid", "Dee", "Eve"]
    assert pages == 3


def test_count_true_and_dollar_count(api: tuple[requests.Session, str]) -> None:
    session, root = api
    body = session.get(root + "contacts?$count=true&$filter=statecode eq 0&$top=1").json()
    assert body["@odata.count"] == 4 and len(body["value"]) == 1
    bare = session.get(root + "contacts/$count")
    assert bare.text == "5"


def test_related_collection_by_navigation(api: tuple[requests.Session, str]) -> None:
    session, root = api
    account = session.get(root + "accounts?$filter=name eq 'Northwind'").json()["value"][0]
    rows = session.get(
        root + f"accounts({account['accountid']})/contact_customer_accounts?$select=firstname"
    ).json()["value"]
    assert [r["firstname"] for r in rows] == ["Ann"]


def test_plus_sign_must_be_percent_encoded_like_dataverse(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    raw_plus = _names(session, root + "contacts?$filter=mobilephone eq '+15551230004'")
    assert raw_plus == []
    encoded = quote("mobilephone eq '+15551230004'")
    assert _names(session, root + f"contacts?$filter={encoded}") == ["Dee"]


def test_fetchxml_filters_orders_omits_nulls_and_pages_with_cookie(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    fetch = (
        '<fetch count="2" page="{page}"><entity name="contact">'
        '<attribute name="firstname"/><attribute name="mobilephone"/>'
        '<order attribute="firstname" descending="true"/>'
        '<filter type="or"><condition attribute="lastname" operator="like" value="%mit%"/>'
        '<condition attribute="firstname" operator="in"><value>Ann</value><value>Dee</value>'
        "</condition></filter></entity></fetch>"
    )
    prefer = {"Prefer": 'odata.include-annotations="*"'}
    first = session.get(
        root + "contacts", params={"fetchXml": fetch.format(page=1)}, headers=prefer
    ).json()
    assert [r["firstname"] for r in first["value"]] == ["Dee", "Cid"]
    assert "mobilephone" not in first["value"][1]
    assert first["@Microsoft.Dynamics.CRM.morerecords"] is True
    assert "pagingcookie=" in first["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"]
    second = session.get(
        root + "contacts", params={"fetchXml": fetch.format(page=2)}, headers=prefer
    ).json()
    assert [r["firstname"] for r in second["value"]] == ["Bob", "Ann"]
    assert "@Microsoft.Dynamics.CRM.morerecords" not in second
    wrong = session.get(root + "accounts", params={"fetchXml": fetch.format(page=1)})
    assert wrong.status_code == 400


def test_navigation_path_filter(api: tuple[requests.Session, str]) -> None:
    session, root = api
    ann = session.get(root + "contacts?$filter=firstname eq 'Ann'").json()["value"][0]
    created = session.post(
        root + "accounts",
        json={"name": "PathCo", "primarycontactid@odata.bind": f"/contacts({ann['contactid']})"},
    )
    assert created.status_code == 204
    rows = session.get(
        root + "accounts?$select=name&$filter=primarycontactid/lastname eq 'o''brien'"
    ).json()["value"]
    assert [r["name"] for r in rows] == ["PathCo"]
    assert session.get(root + "accounts?$filter=nope/name eq 'x'").status_code == 400
