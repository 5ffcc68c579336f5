"""FetchXML paging and paged change tracking through the client against the emulator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from connector.dataverse.auth import StaticTokenProvider
from connector.dataverse.client import DataverseClient
from connector.dataverse.transport import WebApi


@pytest.fixture
def client(emulator_url: str) -> Iterator[DataverseClient]:
    api = WebApi(emulator_url, StaticTokenProvider("emulator-token"), requests.Session())
    yield DataverseClient(api, page_size=3)
    api.close()


def test_fetch_xml_all_reads_every_page_through_the_paging_cookie(
    client: DataverseClient,
) -> None:
    marker = f"fx-{uuid.uuid4().hex[:8]}"
    created = {client.create("accounts", {"name": f"{marker}-{i}"}) for i in range(5)}
    fetch = (
        '<fetch page="1" count="2"><entity name="account"><attribute name="name" />'
        '<attribute name="accountid" /><order attribute="name" />'
        f'<filter><condition attribute="name" operator="like" value="{marker}%" /></filter>'
        "</entity></fetch>"
    )
    first = client.fetch_xml("accounts", fetch)
    assert len(first.rows) == 2 and first.more_records and first.paging_cookie
    rows = list(client.fetch_xml_all("accounts", fetch))
    assert [r["name"] for r in rows] == [f"{marker}-{i}" for i in range(5)]
    assert {r["accountid"] for r in rows} == created


def test_change_tracking_pages_carry_the_delta_link_only_on_the_last_page(
    client: DataverseClient,
) -> None:
    baseline = list(client.changes("leads", select=["lastname"]))
    delta = baseline[-1].delta_link
    assert delta and all(p.delta_link is None for p in baseline[:-1])
    ids = [client.create("leads", {"lastname": f"L{i}"}) for i in range(7)]
    client.delete("leads", ids[0])
    pages = list(client.changes("leads", delta_link=delta))
    assert len(pages) >= 2  # six changed rows at page size 3
    assert all(p.delta_link is None for p in pages[:-1]) and pages[-1].delta_link
    changed = [r["leadid"] for p in pages for r in p.rows]
    deleted = [d for p in pages for d in p.deleted_ids]
    assert set(changed) >= set(ids[1:]) and len(changed) == len(set(changed))
    assert deleted == [ids[0]]
    assert list(client.changes("leads", delta_link=pages[-1].delta_link))[-1].rows == []
