"""The real Dataverse client over real HTTP against the emulator on 127.0.0.1."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import requests

from connector.bootstrap.server_thread import running
from connector.dataverse.client import DataverseClient
from connector.dataverse.lookups import (
    Participation,
    RowRef,
    activity_parties,
    activity_party,
    regarding,
)
from connector.dataverse.odata import and_, eq, startswith
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.limits import Limits
from connector.errors import DataverseError, DataverseNotFoundError
from connector.testing.emulator_client import emulator_client

HOSTILE = "O'Brien ' or 1 eq 1 %27 & # + ünï"


def _client(url: str, *, concurrency: int = 8, attempts: int = 4) -> DataverseClient:
    return emulator_client(
        url, attempts=attempts, concurrency=concurrency, backoff_max=0.5, page_size=50
    )


@pytest.fixture
def base(emulator_url: str) -> str:
    return emulator_url  # the session's emulator, reset for this test


@pytest.fixture
def client(base: str) -> Iterator[DataverseClient]:
    dv = _client(base)
    yield dv
    dv.api.close()


def test_create_retrieve_update_delete_round_trip(client: DataverseClient) -> None:
    contact_id = client.create("contacts", {"firstname": "Ann", "lastname": "Lee"})
    assert client.retrieve("contacts", contact_id, select=["fullname"])["fullname"] == "Ann Lee"
    client.update("contacts", contact_id, {"lastname": "Long"})
    assert client.retrieve("contacts", contact_id)["lastname"] == "Long"
    assert client.delete("contacts", contact_id) is True
    assert client.retrieve_or_none("contacts", contact_id) is None
    assert client.delete("contacts", contact_id, missing_ok=True) is False


def test_update_of_a_missing_row_is_404_not_an_upsert(client: DataverseClient) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(DataverseNotFoundError) as caught:
        client.update("contacts", missing, {"lastname": "Ghost"})
    assert caught.value.service_code == "0x80040217"
    assert client.retrieve_or_none("contacts", missing) is None


def test_create_returning_gives_the_row_with_its_key(client: DataverseClient) -> None:
    row = client.create_returning("accounts", {"name": "Acme"}, select=["name"])
    assert row["name"] == "Acme" and uuid.UUID(row["accountid"])


def test_upsert_and_create_only_are_idempotent(client: DataverseClient) -> None:
    row_id = str(uuid.uuid4())
    assert client.create_only("contacts", row_id, {"lastname": "Once"}) is True
    assert client.create_only("contacts", row_id, {"lastname": "Twice"}) is False
    assert client.retrieve("contacts", row_id)["lastname"] == "Once"
    client.upsert("contacts", row_id, {"lastname": "Upserted"})
    assert client.retrieve("contacts", row_id)["lastname"] == "Upserted"
    fresh = str(uuid.uuid4())
    assert client.upsert("contacts", fresh, {"lastname": "New"}) == fresh


def test_hostile_filter_values_match_only_themselves(client: DataverseClient) -> None:
    marker = uuid.uuid4().hex[:8]
    target = client.create("contacts", {"firstname": marker, "lastname": HOSTILE})
    client.create("contacts", {"firstname": marker, "lastname": "Other"})
    hits = list(
        client.query(
            "contacts",
            select=["lastname"],
            filter=and_(eq("firstname", marker), eq("lastname", HOSTILE)),
        )
    )
    assert [h["contactid"] for h in hits] == [target]
    assert list(client.query("contacts", filter=eq("lastname", "' or 1 eq 1"))) == []
    assert list(client.query("contacts", filter=eq("lastname", "x') or (1 eq 1"))) == []


def test_query_pages_through_next_links(client: DataverseClient) -> None:
    marker = f"page-{uuid.uuid4().hex[:8]}"
    created = {
        client.create("contacts", {"firstname": marker, "lastname": str(i)}) for i in range(7)
    }
    pages = list(
        client.query_pages(
            "contacts",
            select=["lastname"],
            filter=eq("firstname", marker),
            orderby=["lastname"],
            page_size=3,
        )
    )
    assert [len(p) for p in pages] == [3, 3, 1]
    assert {r["contactid"] for p in pages for r in p} == created
    top = list(client.query("contacts", filter=startswith("firstname", marker), top=2))
    assert len(top) == 2


def test_change_tracking_returns_changes_and_tombstones(client: DataverseClient) -> None:
    first = list(client.changes("accounts", select=["name"]))
    delta = first[-1].delta_link
    assert delta is not None
    kept = client.create("accounts", {"name": "Tracked"})
    doomed = client.create("accounts", {"name": "Doomed"})
    client.delete("accounts", doomed)
    pages = list(client.changes("accounts", delta_link=delta))
    changed = {r["accountid"] for p in pages for r in p.rows}
    deleted = {d for p in pages for d in p.deleted_ids}
    assert kept in changed and doomed in deleted
    assert pages[-1].delta_link and pages[-1].delta_link != delta


def test_activity_with_polymorphic_regarding_and_parties(client: DataverseClient) -> None:
    contact = RowRef("contact", "contacts", client.create("contacts", {"lastname": "Party"}))
    me = client.who_am_i()["UserId"]
    user = RowRef("systemuser", "systemusers", me)
    task_id = client.create(
        "tasks",
        {
            "subject": "SMS from +15551234567",
            **regarding("task", contact),
            **activity_parties(
                "task",
                [
                    activity_party(Participation.SENDER, contact),
                    activity_party(Participation.TO_RECIPIENT, user),
                ],
            ),
        },
    )
    task = client.retrieve("tasks", task_id)
    assert task["_regardingobjectid_value"] == contact.key
    parties = list(client.query("activityparties", filter=eq("_activityid_value", task_id)))
    assert {(p["participationtypemask"], p["_partyid_value"]) for p in parties} >= {
        (1, contact.key),
        (2, me),
    }


def test_an_undeclared_navigation_property_is_a_400_not_silently_dropped(
    client: DataverseClient,
) -> None:
    contact = client.create("contacts", {"lastname": "Nav"})
    with pytest.raises(DataverseError) as caught:
        client.create(
            "tasks",
            {"subject": "x", "regardingobjectid_Contact_task@odata.bind": f"/contacts({contact})"},
        )
    assert caught.value.status == 400 and caught.value.code == "dataverse_bad_request"


def test_concurrency_cap_keeps_under_the_service_limit() -> None:
    with running(create_emulator_app(limits=Limits(max_concurrent=2))) as url:
        dv = _client(url, concurrency=2, attempts=1)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(5):
                    dv.who_am_i()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stats = requests.get(url + "/_emulator/stats", timeout=10).json()
    assert errors == []
    assert stats.get("throttled", 0) == 0


def test_throttled_run_finishes_without_losing_or_duplicating_rows() -> None:
    limits = Limits(requests_per_window=15, window_seconds=1.0)
    with running(create_emulator_app(limits=limits)) as url:
        dv = _client(url, concurrency=4, attempts=30)
        marker = f"thr-{uuid.uuid4().hex[:8]}"
        keyed = [str(uuid.uuid4()) for _ in range(20)]
        errors: list[BaseException] = []

        def write(index: int) -> None:
            try:
                if index % 2:
                    dv.create("contacts", {"firstname": marker, "lastname": f"c{index}"})
                else:
                    dv.create_only(
                        "contacts", keyed[index], {"firstname": marker, "lastname": f"k{index}"}
                    )
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        rows = list(dv.query("contacts", select=["lastname"], filter=eq("firstname", marker)))
        stats = requests.get(url + "/_emulator/stats", timeout=10).json()
    assert errors == []
    assert stats["throttled"] > 0, "the run was meant to be throttled"
    assert sorted(r["lastname"] for r in rows) == sorted(
        f"c{i}" if i % 2 else f"k{i}" for i in range(20)
    )
    assert {r["contactid"] for r in rows} >= set(keyed[0::2])
