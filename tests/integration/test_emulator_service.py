"""Emulator service behaviour over real HTTP: change tracking, throttling, stats, reset, files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import requests

from connector.bootstrap.server_thread import running
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.limits import Limits


@pytest.fixture
def api(emulator_url: str) -> Iterator[tuple[requests.Session, str, str]]:
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer test"
        yield session, emulator_url + "/api/data/v9.2/", emulator_url


def _create(session: requests.Session, url: str, body: dict[str, object]) -> str:
    response = session.post(url, json=body)
    assert response.status_code == 204, response.text
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def test_change_tracking_delta_returns_changes_then_tombstones(
    api: tuple[requests.Session, str, str],
) -> None:
    session, root, _ = api
    kept = _create(session, root + "accounts", {"name": "Kept"})
    doomed = _create(session, root + "accounts", {"name": "Doomed"})
    track = {"Prefer": "odata.track-changes"}
    first = session.get(root + "accounts?$select=name", headers=track)
    assert first.headers["Preference-Applied"] == "odata.track-changes"
    body = first.json()
    assert {row["name"] for row in body["value"]} == {"Kept", "Doomed"}
    delta_link = body["@odata.deltaLink"]
    assert "$deltatoken=" in delta_link
    session.patch(root + f"accounts({kept})", json={"name": "Kept 2"}, headers={"If-Match": "*"})
    session.delete(root + f"accounts({doomed})")
    added = _create(session, root + "accounts", {"name": "New"})
    delta = session.get(delta_link, headers=track).json()
    assert delta["@odata.context"].endswith("/$delta")
    changed = [row for row in delta["value"] if "name" in row]
    assert [row["name"] for row in changed] == ["Kept 2", "New"]
    assert {row["accountid"] for row in changed} == {kept, added}
    tombstones = [row for row in delta["value"] if row.get("reason") == "deleted"]
    assert tombstones == [
        {
            "@odata.context": f"{root}$metadata#accounts/$deletedEntity",
            "id": doomed,
            "reason": "deleted",
        }
    ]
    assert delta["value"].index(tombstones[0]) == len(delta["value"]) - 1
    empty = session.get(delta["@odata.deltaLink"], headers=track).json()
    assert empty["value"] == []


def test_change_tracking_refuses_filter(api: tuple[requests.Session, str, str]) -> None:
    session, root, _ = api
    response = session.get(
        root + "accounts?$filter=name eq 'x'", headers={"Prefer": "odata.track-changes"}
    )
    assert response.status_code == 400
    assert "Change Tracking" in response.json()["error"]["message"]


def test_request_limit_answers_429_with_retry_after_and_code() -> None:
    app = create_emulator_app(limits=Limits(requests_per_window=3, window_seconds=60))
    with running(app) as url, requests.Session() as session:
        session.headers["Authorization"] = "Bearer one"
        statuses = [session.get(url + "/api/data/v9.2/WhoAmI").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = session.get(url + "/api/data/v9.2/WhoAmI")
        assert refused.json()["error"]["code"] == "0x80072322"
        assert 1 <= int(refused.headers["Retry-After"]) <= 61  # grows by 1 s per refusal
        other_user = requests.get(
            url + "/api/data/v9.2/WhoAmI", headers={"Authorization": "Bearer two"}, timeout=10
        )
        assert other_user.status_code == 200
        stats = requests.get(url + "/_emulator/stats", timeout=10).json()
        assert stats["throttled"] == 2


def test_stats_and_reset(api: tuple[requests.Session, str, str]) -> None:
    session, root, base = api
    _create(session, root + "contacts", {"lastname": "Gone"})
    session.get(root + "contacts")
    stats = requests.get(base + "/_emulator/stats", timeout=10).json()
    assert stats["requests"] == 2 and stats["by_method"] == {"POST": 1, "GET": 1}
    assert requests.post(base + "/_emulator/reset", timeout=10).status_code == 204
    assert session.get(root + "contacts").json()["value"] == []
    assert session.get(root + "WhoAmI").status_code == 200


def test_file_database_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "dataverse.db")
    headers = {"Authorization": "Bearer t"}
    with running(create_emulator_app(db_path=db)) as url:
        root = url + "/api/data/v9.2/"
        requests.post(
            root + "EntityDefinitions",
            headers=headers,
            timeout=10,
            json={
                "SchemaName": "csms_Kept",
                "OwnershipType": "UserOwned",
                "Attributes": [
                    {
                        "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                        "SchemaName": "csms_Name",
                        "IsPrimaryName": True,
                    }
                ],
            },
        )
        requests.post(root + "csms_kepts", headers=headers, json={"csms_name": "a"}, timeout=10)
        contact = requests.post(
            root + "contacts", headers=headers, json={"lastname": "Stay"}, timeout=10
        ).headers["OData-EntityId"]
    with running(create_emulator_app(db_path=db)) as url:
        root = url + "/api/data/v9.2/"
        assert (
            requests.get(
                contact.replace(contact.split("/api/")[0], url), headers=headers, timeout=10
            ).json()["lastname"]
            == "Stay"
        )
        rows = requests.get(root + "csms_kepts", headers=headers, timeout=10).json()["value"]
        assert [r["csms_name"] for r in rows] == ["a"]


def test_change_tracking_pages_follow_maxpagesize_and_end_with_the_delta_link(
    api: tuple[requests.Session, str, str],
) -> None:
    session, root, _ = api
    for n in range(5):
        _create(session, root + "contacts", {"lastname": f"Paged{n}"})
    prefer = {"Prefer": "odata.track-changes, odata.maxpagesize=2"}
    body = session.get(root + "contacts?$select=lastname", headers=prefer).json()
    names, pages = [], 0
    while True:
        pages += 1
        names += [row["lastname"] for row in body["value"]]
        if "@odata.nextLink" not in body:
            break
        assert "@odata.deltaLink" not in body
        body = session.get(body["@odata.nextLink"], headers=prefer).json()
    assert names == [f"Paged{n}" for n in range(5)] and pages == 3
    delta_link = body["@odata.deltaLink"]
    doomed = _create(session, root + "contacts", {"lastname": "Late"})
    session.delete(root + f"contacts({doomed})")
    delta = session.get(delta_link, headers=prefer).json()
    assert [row.get("reason") for row in delta["value"]] == ["deleted"]


def test_delta_token_older_than_retention_is_refused(
    api: tuple[requests.Session, str, str],
) -> None:
    session, root, _ = api
    track = {"Prefer": "odata.track-changes"}
    link = session.get(root + "accounts?$select=name", headers=track).json()["@odata.deltaLink"]
    version = unquote(link.split("$deltatoken=")[1]).split("!")[0]
    stale = link.split("$deltatoken=")[0] + "$deltatoken=" + quote(f"{version}!01/01/2020 00:00:00")
    response = session.get(stale, headers=track)
    assert response.status_code == 400
    assert "expired" in response.json()["error"]["message"]
