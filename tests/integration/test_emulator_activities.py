"""The emulator's activity rules over real HTTP: parties, state on create, closing, and what
a completed activity refuses (dataverse-web-api.md section 12)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

Api = tuple[requests.Session, str]


@pytest.fixture()
def api(emulator_url: str) -> Iterator[Api]:
    session = requests.Session()
    session.headers.update({"Authorization": "Bearer test", "Accept": "application/json"})
    yield session, emulator_url + "/api/data/v9.2/"
    session.close()


def _id_of(response: requests.Response) -> str:
    assert response.status_code == 204, response.text
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def _contact(api: Api) -> str:
    session, root = api
    return _id_of(session.post(root + "contacts", json={"lastname": "Lee"}))


def _task(api: Api, **extra: object) -> str:
    session, root = api
    return _id_of(session.post(root + "tasks", json={"subject": "Call back", **extra}))


def _parties(api: Api, task_id: str) -> list[tuple[int, str | None, str | None]]:
    session, root = api
    rows = session.get(
        root + "activityparties",
        params={"$filter": f"_activityid_value eq {task_id}"},
    ).json()["value"]
    return sorted(
        (r["participationtypemask"], r.get("_partyid_value"), r.get("addressused")) for r in rows
    )


def test_create_ignores_statecode_and_the_activity_starts_open(api: Api) -> None:
    session, root = api
    task = _task(api, statecode=1)
    row = session.get(root + f"tasks({task})").json()
    assert (row["statecode"], row["statuscode"]) == (0, 1)


def test_create_refuses_a_status_reason_of_another_state(api: Api) -> None:
    session, root = api
    response = session.post(root + "tasks", json={"subject": "x", "statuscode": 2})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80048408"


def test_completing_with_the_pair_and_what_a_completed_activity_refuses(api: Api) -> None:
    session, root = api
    task = _task(api)
    done = session.patch(
        root + f"tasks({task})",
        json={"statecode": 1, "statuscode": 2, "actualend": "2026-01-05T09:30:12Z"},
    )
    assert done.status_code == 204
    refused = session.patch(root + f"tasks({task})", json={"subject": "changed"})
    assert refused.status_code == 400
    assert "Closed or Cancelled" in refused.json()["error"]["message"]
    row = session.get(root + f"tasks({task})").json()
    assert (row["statecode"], row["statuscode"], row["subject"]) == (1, 2, "Call back")
    assert row["actualend"] == "2026-01-05T09:30:12Z"


def test_an_update_that_reopens_may_change_columns_and_a_state_alone_takes_its_first_reason(
    api: Api,
) -> None:
    session, root = api
    task = _task(api)
    assert session.patch(root + f"tasks({task})", json={"statecode": 2}).status_code == 204
    assert session.get(root + f"tasks({task})").json()["statuscode"] == 3
    reopened = session.patch(
        root + f"tasks({task})", json={"statecode": 0, "statuscode": 1, "subject": "again"}
    )
    assert reopened.status_code == 204
    row = session.get(root + f"tasks({task})").json()
    assert (row["statecode"], row["subject"]) == (0, "again")


def test_a_status_reason_must_belong_to_the_state(api: Api) -> None:
    session, root = api
    task = _task(api)
    response = session.patch(root + f"tasks({task})", json={"statecode": 1, "statuscode": 3})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80048408"


def test_parties_are_bound_rows_or_addresses_and_an_update_replaces_them(api: Api) -> None:
    session, root = api
    contact = _contact(api)
    me = session.get(root + "WhoAmI").json()["UserId"]
    task = _task(
        api,
        task_activity_parties=[
            {"partyid_contact@odata.bind": f"/contacts({contact})", "participationtypemask": 1},
            {"addressused": "+14155550100", "participationtypemask": 2},
        ],
    )
    assert _parties(api, task) == [(1, contact, None), (2, None, "+14155550100")]
    again = [{"partyid_systemuser@odata.bind": f"/systemusers({me})", "participationtypemask": 2}]
    response = session.patch(root + f"tasks({task})", json={"task_activity_parties": again})
    assert response.status_code == 204
    assert _parties(api, task) == [(2, me, None)]


@pytest.mark.parametrize(
    "party",
    [
        {"participationtypemask": 1},
        {"addressused": "+1415", "participationtypemask": 13},
        {"addressused": "+1415"},
        {
            "partyid_opportunity@odata.bind": f"/opportunities({uuid.UUID(int=1)})",
            "participationtypemask": 2,
        },
    ],
)
def test_refuses_a_malformed_party(api: Api, party: dict[str, object]) -> None:
    session, root = api
    response = session.post(root + "tasks", json={"subject": "x", "task_activity_parties": [party]})
    assert response.status_code == 400
