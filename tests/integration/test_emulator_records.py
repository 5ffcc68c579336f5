"""Emulator row API over real HTTP: create, retrieve, update, upsert, delete, properties."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests


@pytest.fixture
def base(emulator_url: str) -> str:
    return emulator_url  # the session's emulator, reset for this test


@pytest.fixture()
def api(base: str) -> Iterator[tuple[requests.Session, str]]:
    session = requests.Session()
    session.headers.update(
        {
            "Authorization": "Bearer test",
            "Accept": "application/json",
            "OData-Version": "4.0",
            "OData-MaxVersion": "4.0",
        }
    )
    yield session, base + "/api/data/v9.2/"
    session.close()


def _id_of(response: requests.Response) -> str:
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def test_request_without_bearer_token_gets_401_envelope(base: str) -> None:
    response = requests.get(base + "/api/data/v9.2/contacts", timeout=10)
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message"}


def test_create_returns_204_with_entity_id_and_no_body(api: tuple[requests.Session, str]) -> None:
    session, root = api
    response = session.post(root + "contacts", json={"firstname": "Ann", "lastname": "Lee"})
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["OData-EntityId"].startswith(root + "contacts(")
    record = session.get(root + f"contacts({_id_of(response)})").json()
    assert record["fullname"] == "Ann Lee"
    assert record["statecode"] == 0 and record["statuscode"] == 1
    assert record["createdon"].endswith("Z") and record["modifiedon"] == record["createdon"]
    assert record["_ownerid_value"] == session.get(root + "WhoAmI").json()["UserId"]


def test_create_with_return_representation_gives_201_body_without_entity_id(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    response = session.post(
        root + "accounts?$select=name,createdon",
        json={"name": "Acme"},
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201
    assert "OData-EntityId" not in response.headers
    assert response.headers["Preference-Applied"] == "return=representation"
    body = response.json()
    assert body["@odata.context"].endswith("#accounts(name,createdon,accountid)/$entity")
    assert set(body) == {"@odata.context", "@odata.etag", "name", "createdon", "accountid"}


def test_client_supplied_primary_key_is_honoured(api: tuple[requests.Session, str]) -> None:
    session, root = api
    wanted = str(uuid.uuid4())
    response = session.post(root + "contacts", json={"contactid": wanted, "lastname": "X"})
    assert _id_of(response) == wanted
    again = session.post(root + "contacts", json={"contactid": wanted, "lastname": "Y"})
    assert again.status_code == 412


def test_retrieve_missing_row_is_404_with_object_does_not_exist(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    missing = str(uuid.uuid4())
    response = session.get(root + f"contacts({missing})")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "0x80040217"
    assert missing in response.json()["error"]["message"]


def test_etag_changes_on_every_write_and_conditional_get_gives_304(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    record_id = _id_of(session.post(root + "contacts", json={"lastname": "E"}))
    first = session.get(root + f"contacts({record_id})").headers["ETag"]
    assert (
        session.get(root + f"contacts({record_id})", headers={"If-None-Match": first}).status_code
        == 304
    )
    session.patch(
        root + f"contacts({record_id})", json={"lastname": "F"}, headers={"If-Match": "*"}
    )
    second = session.get(root + f"contacts({record_id})").headers["ETag"]
    assert second != first and second.startswith('W/"')
    stale = session.patch(
        root + f"contacts({record_id})", json={"lastname": "G"}, headers={"If-Match": first}
    )
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "0x80060882"
    ok = session.patch(
        root + f"contacts({record_id})", json={"lastname": "G"}, headers={"If-Match": second}
    )
    assert ok.status_code == 204


def test_patch_with_if_match_star_on_missing_row_is_404(api: tuple[requests.Session, str]) -> None:
    session, root = api
    response = session.patch(
        root + f"contacts({uuid.uuid4()})", json={"lastname": "Z"}, headers={"If-Match": "*"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "0x80040217"


def test_patch_without_if_match_upserts_by_id(api: tuple[requests.Session, str]) -> None:
    session, root = api
    wanted = str(uuid.uuid4())
    created = session.patch(
        root + f"contacts({wanted})",
        json={"lastname": "Up"},
        headers={"Prefer": "return=representation"},
    )
    assert created.status_code == 201
    updated = session.patch(
        root + f"contacts({wanted})",
        json={"lastname": "Up2"},
        headers={"Prefer": "return=representation"},
    )
    assert updated.status_code == 200
    assert updated.json()["lastname"] == "Up2"
    plain = session.patch(root + f"contacts({wanted})", json={"lastname": "Up3"})
    assert plain.status_code == 204


def test_if_none_match_star_refuses_existing_row_with_412(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    record_id = _id_of(session.post(root + "contacts", json={"lastname": "N"}))
    response = session.patch(
        root + f"contacts({record_id})", json={"lastname": "M"}, headers={"If-None-Match": "*"}
    )
    assert response.status_code == 412
    assert response.json()["error"] == {
        "code": "0x80040237",
        "message": "A record with matching key values already exists.",
    }
    fresh = session.patch(
        root + f"contacts({uuid.uuid4()})", json={"lastname": "M"}, headers={"If-None-Match": "*"}
    )
    assert fresh.status_code == 204


def test_delete_then_retrieve_is_404_and_second_delete_404(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    record_id = _id_of(session.post(root + "contacts", json={"lastname": "D"}))
    assert session.delete(root + f"contacts({record_id})").status_code == 204
    assert session.get(root + f"contacts({record_id})").status_code == 404
    assert session.delete(root + f"contacts({record_id})").status_code == 404


def test_string_longer_than_max_length_is_validation_error(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    response = session.post(root + "contacts", json={"mobilephone": "1" * 51})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80044331"


def test_unknown_column_is_400(api: tuple[requests.Session, str]) -> None:
    session, root = api
    response = session.post(root + "contacts", json={"nosuchcolumn": "x"})
    assert response.status_code == 400
    assert "nosuchcolumn" in response.json()["error"]["message"]


def test_single_property_get_put_delete(api: tuple[requests.Session, str]) -> None:
    session, root = api
    record_id = _id_of(session.post(root + "contacts", json={"lastname": "P"}))
    assert (
        session.put(root + f"contacts({record_id})/jobtitle", json={"value": "CEO"}).status_code
        == 204
    )
    assert session.get(root + f"contacts({record_id})/jobtitle").json()["value"] == "CEO"
    assert session.delete(root + f"contacts({record_id})/jobtitle").status_code == 204
    assert session.get(root + f"contacts({record_id})/jobtitle").json()["value"] is None


def test_patch_on_collection_is_405(api: tuple[requests.Session, str]) -> None:
    session, root = api
    assert session.patch(root + "contacts", json={}).status_code == 405


def test_unknown_entity_set_is_404(api: tuple[requests.Session, str]) -> None:
    session, root = api
    assert session.get(root + "nosuchthings").status_code == 404


def test_upsert_multiple_and_update_multiple(api: tuple[requests.Session, str]) -> None:
    session, root = api
    keys = root + "EntityDefinitions(LogicalName='account')/Keys"
    assert (
        session.post(
            keys, json={"SchemaName": "accnum_key", "KeyAttributes": ["accountnumber"]}
        ).status_code
        == 204
    )
    upsert = session.post(
        root + "accounts/Microsoft.Dynamics.CRM.UpsertMultiple",
        json={
            "Targets": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.account",
                    "@odata.id": f"accounts(accountnumber='ACC-{n}')",
                    "name": f"A{n}",
                }
                for n in range(3)
            ]
        },
    )
    assert upsert.status_code == 200
    ids = upsert.json()["Ids"]
    again = session.post(
        root + "accounts/Microsoft.Dynamics.CRM.UpsertMultiple",
        json={"Targets": [{"@odata.id": "accounts(accountnumber='ACC-0')", "name": "A0 renamed"}]},
    )
    assert again.json()["Ids"] == ids[:1]
    update = session.post(
        root + "accounts/Microsoft.Dynamics.CRM.UpdateMultiple",
        json={"Targets": [{"accountid": ids[1], "name": "A1 renamed"}]},
    )
    assert update.status_code == 204
    names = {session.get(root + f"accounts({i})").json()["name"] for i in ids}
    assert names == {"A0 renamed", "A1 renamed", "A2"}
    assert session.get(root + "accounts(accountnumber='ACC-2')").json()["accountid"] == ids[2]


def test_single_row_get_gives_display_annotations_only_when_asked(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    created = session.post(root + "contacts", json={"firstname": "Ana", "lastname": "Lee"})
    url = root + f"contacts({_id_of(created)})?$select=statecode,_ownerid_value,firstname"
    plain = session.get(url).json()
    assert plain["statecode"] == 0 and plain["firstname"] == "Ana"
    assert not [key for key in plain if "@" in key and not key.startswith("@odata.")]
    prefer = {"Prefer": 'odata.include-annotations="*"'}
    annotated = session.get(url, headers=prefer)
    body = annotated.json()
    assert annotated.headers["Preference-Applied"] == 'odata.include-annotations="*"'
    assert body["statecode@OData.Community.Display.V1.FormattedValue"] == "Active"
    assert body["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "systemuser"
    assert body["_ownerid_value@OData.Community.Display.V1.FormattedValue"]
    assert "firstname@OData.Community.Display.V1.FormattedValue" not in body  # plain text
