"""Conformance of lookups over real HTTP: @odata.bind names, polymorphic lookups, parties, $ref."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

ANNOTATIONS = {"Prefer": 'odata.include-annotations="*"'}


@pytest.fixture
def api(emulator_url: str) -> Iterator[tuple[requests.Session, str]]:
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer test"
        yield session, emulator_url + "/api/data/v9.2/"


def _create(session: requests.Session, url: str, body: dict[str, object]) -> str:
    response = session.post(url, json=body)
    assert response.status_code == 204, response.text
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def test_customer_lookup_binds_account_or_contact_and_reports_annotations(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    account = _create(session, root + "accounts", {"name": "Acme"})
    contact = _create(
        session,
        root + "contacts",
        {"lastname": "C", "parentcustomerid_account@odata.bind": f"/accounts({account})"},
    )
    body = session.get(
        root + f"contacts({contact})?$select=_parentcustomerid_value", headers=ANNOTATIONS
    ).json()
    assert body["_parentcustomerid_value"] == account
    assert body["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert (
        body["_parentcustomerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"]
        == "parentcustomerid_account"
    )
    assert body["_parentcustomerid_value@OData.Community.Display.V1.FormattedValue"] == "Acme"


def test_bind_name_is_case_sensitive_and_undeclared_names_are_400(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    account = _create(session, root + "accounts", {"name": "Acme"})
    response = session.post(
        root + "contacts", json={"ParentCustomerId_account@odata.bind": f"/accounts({account})"}
    )
    assert response.status_code == 400
    assert "undeclared property" in response.json()["error"]["message"]


def test_bind_to_wrong_target_table_is_400(api: tuple[requests.Session, str]) -> None:
    session, root = api
    contact = _create(session, root + "contacts", {"lastname": "W"})
    response = session.post(
        root + "contacts", json={"parentcustomerid_account@odata.bind": f"/contacts({contact})"}
    )
    assert response.status_code == 400


def test_bind_to_missing_row_is_404(api: tuple[requests.Session, str]) -> None:
    session, root = api
    response = session.post(
        root + "contacts", json={"parentcustomerid_account@odata.bind": f"accounts({uuid.uuid4()})"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "0x80040217"


def test_null_bind_and_null_lookup_clear_the_lookup(api: tuple[requests.Session, str]) -> None:
    session, root = api
    account = _create(session, root + "accounts", {"name": "Parent"})
    child = _create(
        session,
        root + "accounts",
        {"name": "Child", "parentaccountid@odata.bind": f"{root}accounts({account})"},
    )
    assert session.get(root + f"accounts({child})").json()["_parentaccountid_value"] == account
    session.patch(
        root + f"accounts({child})",
        json={"parentaccountid@odata.bind": None},
        headers={"If-Match": "*"},
    )
    assert session.get(root + f"accounts({child})").json()["_parentaccountid_value"] is None
    session.patch(
        root + f"accounts({child})", json={"parentaccountid@odata.bind": f"/accounts({account})"}
    )
    session.patch(root + f"accounts({child})", json={"parentaccountid": None})
    assert session.get(root + f"accounts({child})").json()["_parentaccountid_value"] is None


def test_activity_regarding_and_parties_by_deep_insert(api: tuple[requests.Session, str]) -> None:
    session, root = api
    contact = _create(session, root + "contacts", {"lastname": "Party"})
    user = session.get(root + "WhoAmI").json()["UserId"]
    task = _create(
        session,
        root + "tasks",
        {
            "subject": "SMS from +15551234567",
            "regardingobjectid_contact_task@odata.bind": f"/contacts({contact})",
            "task_activity_parties": [
                {"partyid_contact@odata.bind": f"/contacts({contact})", "participationtypemask": 1},
                {
                    "partyid_systemuser@odata.bind": f"/systemusers({user})",
                    "participationtypemask": 2,
                },
                {"addressused": "+15550000000", "participationtypemask": 2},
            ],
        },
    )
    body = session.get(root + f"tasks({task})", headers=ANNOTATIONS).json()
    assert body["activitytypecode"] == "task"
    assert body["_regardingobjectid_value"] == contact
    assert (
        body["_regardingobjectid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"]
        == "regardingobjectid_contact_task"
    )
    parties = session.get(
        root + f"activityparties?$filter=_activityid_value eq {task}"
        "&$select=participationtypemask,partyid,addressused&$orderby=participationtypemask"
    ).json()["value"]
    assert [p["participationtypemask"] for p in parties] == [1, 2, 2]
    assert {p["_partyid_value"] for p in parties} == {contact, user, None}
    expanded = session.get(
        root + f"tasks({task})?$expand=task_activity_parties($select=participationtypemask)"
    ).json()
    assert len(expanded["task_activity_parties"]) == 3


def test_activityparty_set_is_read_only(api: tuple[requests.Session, str]) -> None:
    session, root = api
    assert session.post(root + "activityparties", json={}).status_code == 405


def test_owner_binds_to_user_or_team(api: tuple[requests.Session, str]) -> None:
    session, root = api
    team = _create(session, root + "teams", {"name": "Sales"})
    contact = _create(
        session, root + "contacts", {"lastname": "Owned", "ownerid@odata.bind": f"/teams({team})"}
    )
    body = session.get(root + f"contacts({contact})", headers=ANNOTATIONS).json()
    assert body["_ownerid_value"] == team
    assert body["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "team"


def test_ref_associates_and_disassociates(api: tuple[requests.Session, str]) -> None:
    session, root = api
    account = _create(session, root + "accounts", {"name": "A"})
    contact = _create(session, root + "contacts", {"lastname": "R"})
    put = session.put(
        root + f"accounts({account})/primarycontactid/$ref",
        json={"@odata.id": f"{root}contacts({contact})"},
    )
    assert put.status_code == 204
    assert session.get(root + f"accounts({account})").json()["_primarycontactid_value"] == contact
    assert session.delete(root + f"accounts({account})/primarycontactid/$ref").status_code == 204
    assert session.get(root + f"accounts({account})").json()["_primarycontactid_value"] is None


def test_send_app_notification_creates_a_row_for_the_recipient(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    user = session.get(root + "WhoAmI").json()["UserId"]
    response = session.post(
        root + "SendAppNotification",
        json={
            "Title": "New SMS",
            "Body": "From +1 555",
            "Recipient": f"/systemusers({user})",
            "IconType": 100000000,
            "ToastType": 200000000,
        },
    )
    assert response.status_code == 200
    notification = response.json()["NotificationId"]
    row = session.get(root + f"appnotifications({notification})").json()
    assert row["title"] == "New SMS" and row["_ownerid_value"] == user


def test_team_members_through_teammembership_association(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    team = _create(session, root + "teams", {"name": "Support"})
    users = [
        _create(session, root + "systemusers", {"firstname": n, "lastname": "U"})
        for n in ("Ana", "Ben")
    ]
    for user in users:
        response = session.post(
            root + f"teams({team})/teammembership_association/$ref",
            json={"@odata.id": f"{root}systemusers({user})"},
        )
        assert response.status_code == 204
    members = session.get(
        root + f"teams({team})/teammembership_association?$select=fullname&$orderby=fullname"
    ).json()["value"]
    assert [m["fullname"] for m in members] == ["Ana U", "Ben U"]
    teams = session.get(
        root + f"systemusers({users[0]})?$expand=teammembership_association($select=name)"
    ).json()["teammembership_association"]
    assert [t["name"] for t in teams] == ["Support"]
    removed = session.delete(root + f"teams({team})/teammembership_association({users[0]})/$ref")
    assert removed.status_code == 204
    left = session.get(root + f"teams({team})/teammembership_association").json()["value"]
    assert [m["systemuserid"] for m in left] == [users[1]]


def test_activities_are_visible_through_activitypointers(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    contact = _create(session, root + "contacts", {"lastname": "Pointer"})
    task = _create(
        session,
        root + "tasks",
        {
            "subject": "Call back",
            "regardingobjectid_contact_task@odata.bind": f"/contacts({contact})",
        },
    )
    query = root + f"activitypointers?$filter=_regardingobjectid_value eq {contact}"
    rows = session.get(query).json()["value"]
    assert [(r["activityid"], r["activitytypecode"], r["subject"]) for r in rows] == [
        (task, "task", "Call back")
    ]
    session.patch(root + f"tasks({task})", json={"subject": "Done"}, headers={"If-Match": "*"})
    assert session.get(query).json()["value"][0]["subject"] == "Done"
    session.delete(root + f"tasks({task})")
    assert session.get(query).json()["value"] == []


def test_deep_insert_of_a_single_valued_navigation(api: tuple[requests.Session, str]) -> None:
    session, root = api
    account = _create(
        session,
        root + "accounts",
        {"name": "Deep", "primarycontactid": {"firstname": "Inner", "lastname": "Contact"}},
    )
    body = session.get(
        root + f"accounts({account})?$expand=primarycontactid($select=fullname)"
    ).json()
    assert body["primarycontactid"]["fullname"] == "Inner Contact"
