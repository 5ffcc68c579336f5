"""Emulator metadata API over real HTTP: tables, activity tables, columns, lookups, keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connector.bootstrap.server_thread import running
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.metadata import label
from connector.emulators.dataverse.router import Emulator

SOLUTION = {"MSCRM.SolutionUniqueName": "ContosoSmsConnector"}


@pytest.fixture
def api(emulator_url: str) -> Iterator[tuple[requests.Session, str]]:
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer test"
        yield session, emulator_url + "/api/data/v9.2/"


def _table(schema: str, *, activity: bool = False, primary: str = "csms_Name") -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
        "SchemaName": schema,
        "DisplayName": label(schema),
        "DisplayCollectionName": label(schema + "s"),
        "OwnershipType": "UserOwned",
        "IsActivity": activity,
        "HasActivities": False,
        "HasNotes": activity,
        "IsAvailableOffline": True,
        "IsMailMergeEnabled": False,
        "Attributes": [
            {
                "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                "SchemaName": primary,
                "IsPrimaryName": True,
                "MaxLength": 100,
                "FormatName": {"Value": "Text"},
                "DisplayName": label("Name"),
            }
        ],
    }


def test_create_table_derives_names_and_serves_rows(api: tuple[requests.Session, str]) -> None:
    session, root = api
    response = session.post(
        root + "EntityDefinitions", json=_table("csms_Configuration"), headers=SOLUTION
    )
    assert response.status_code == 204
    assert "/EntityDefinitions(" in response.headers["OData-EntityId"]
    body = session.get(
        root + "EntityDefinitions(LogicalName='csms_configuration')?$select="
        "LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute,"
        "MetadataId",
        headers={"Consistency": "Strong"},
    ).json()
    assert body["EntitySetName"] == "csms_configurations"
    assert body["PrimaryIdAttribute"] == "csms_configurationid"
    assert body["PrimaryNameAttribute"] == "csms_name"
    assert "IsActivity" not in body
    assert session.post(root + "csms_configurations", json={"csms_name": "x"}).status_code == 204
    listed = session.get(
        root + "EntityDefinitions?$select=LogicalName,EntitySetName"
        "&$filter=LogicalName eq 'csms_configuration'"
    ).json()["value"]
    assert [e["EntitySetName"] for e in listed] == ["csms_configurations"]
    by_id = session.get(root + f"EntityDefinitions({body['MetadataId']})").json()
    assert by_id["LogicalName"] == "csms_configuration"
    assert session.get(root + "EntityDefinitions(LogicalName='nope')").status_code == 404


def test_activity_table_inherits_activity_columns_regarding_and_parties(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    wrong = session.post(root + "EntityDefinitions", json=_table("csms_Bad", activity=True))
    assert wrong.status_code == 400
    created = session.post(
        root + "EntityDefinitions", json=_table("csms_Sms", activity=True, primary="Subject")
    )
    assert created.status_code == 204
    meta = session.get(root + "EntityDefinitions(LogicalName='csms_sms')").json()
    assert meta["PrimaryIdAttribute"] == "activityid" and meta["IsActivity"] is True
    contact = session.post(root + "contacts", json={"lastname": "Sms"})
    contact_id = contact.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    sms = session.post(
        root + "csms_smses",
        json={
            "subject": "hello",
            "regardingobjectid_contact_csms_sms@odata.bind": f"/contacts({contact_id})",
            "csms_sms_activity_parties": [
                {
                    "partyid_contact@odata.bind": f"/contacts({contact_id})",
                    "participationtypemask": 1,
                }
            ],
        },
        headers={"Prefer": "return=representation"},
    )
    assert sms.status_code == 201, sms.text
    assert sms.json()["_regardingobjectid_value"] == contact_id
    assert sms.json()["activitytypecode"] == "csms_sms"


def test_columns_of_each_type_and_the_picklist_cast(api: tuple[requests.Session, str]) -> None:
    session, root = api
    session.post(root + "EntityDefinitions", json=_table("csms_Thing"))
    columns = [
        {
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "SchemaName": "csms_Phone",
            "MaxLength": 20,
            "FormatName": {"Value": "Phone"},
        },
        {
            "@odata.type": "Microsoft.Dynamics.CRM.MemoAttributeMetadata",
            "SchemaName": "csms_Body",
            "MaxLength": 4000,
        },
        {
            "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
            "SchemaName": "csms_Segments",
        },
        {
            "@odata.type": "Microsoft.Dynamics.CRM.BooleanAttributeMetadata",
            "SchemaName": "csms_Sent",
        },
        {
            "@odata.type": "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata",
            "SchemaName": "csms_SentOn",
        },
        {
            "@odata.type": "Microsoft.Dynamics.CRM.DecimalAttributeMetadata",
            "SchemaName": "csms_Price",
        },
        {
            "@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
            "SchemaName": "csms_Direction",
            "OptionSet": {
                "Options": [
                    {"Value": 727000000, "Label": label("Inbound")},
                    {"Value": 727000001, "Label": label("Outbound")},
                ]
            },
        },
    ]
    table = root + "EntityDefinitions(LogicalName='csms_thing')/Attributes"
    for column in columns:
        response = session.post(table, json=column)
        assert response.status_code == 204, response.text
        assert "/Attributes(" in response.headers["OData-EntityId"]
    assert session.post(table, json=columns[0]).status_code == 400
    row = session.post(
        root + "csms_things",
        headers={"Prefer": "return=representation"},
        json={
            "csms_name": "n",
            "csms_phone": "15551234567",
            "csms_body": "b",
            "csms_segments": 2,
            "csms_sent": True,
            "csms_senton": "2026-01-02T03:04:05Z",
            "csms_price": 0.0075,
            "csms_direction": 727000001,
        },
    )
    assert row.status_code == 201, row.text
    assert row.json()["csms_sent"] is True and row.json()["csms_segments"] == 2
    picklists = session.get(
        table + "/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
        "?$select=LogicalName&$expand=OptionSet($select=Options)"
    ).json()
    assert [p["LogicalName"] for p in picklists["value"]] == ["csms_direction"]
    options = picklists["value"][0]["OptionSet"]["Options"]
    assert [o["Value"] for o in options] == [727000000, 727000001]
    one = session.get(table + "(LogicalName='csms_phone')?$select=MetadataId,MaxLength").json()
    assert one["MaxLength"] == 20


def test_a_boolean_column_takes_its_default_value_when_a_create_leaves_it_out(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    session.post(root + "EntityDefinitions", json=_table("csms_Flag"))
    table = root + "EntityDefinitions(LogicalName='csms_flag')/Attributes"
    for name, default in (("csms_Active", True), ("csms_Review", False), ("csms_Plain", None)):
        column: dict[str, Any] = {
            "@odata.type": "Microsoft.Dynamics.CRM.BooleanAttributeMetadata",
            "SchemaName": name,
        }
        if default is not None:
            column["DefaultValue"] = default
        assert session.post(table, json=column).status_code == 204
    shown = session.get(table + "(LogicalName='csms_active')").json()
    assert shown["DefaultValue"] is True
    created = session.post(
        root + "csms_flags", headers={"Prefer": "return=representation"}, json={"csms_name": "n"}
    ).json()
    assert (created["csms_active"], created["csms_review"], created["csms_plain"]) == (
        True,
        False,
        None,
    )
    given = session.post(
        root + "csms_flags",
        headers={"Prefer": "return=representation"},
        json={"csms_name": "m", "csms_active": False},
    ).json()
    assert given["csms_active"] is False


def test_relationship_creates_lookup_with_given_navigation_names(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    session.post(
        root + "EntityDefinitions", json=_table("csms_Session", activity=True, primary="Subject")
    )
    session.post(
        root + "EntityDefinitions", json=_table("csms_Msg", activity=True, primary="Subject")
    )
    relationship = {
        "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "SchemaName": "csms_session_csms_msg",
        "ReferencedEntity": "csms_session",
        "ReferencedAttribute": "activityid",
        "ReferencingEntity": "csms_msg",
        "ReferencingEntityNavigationPropertyName": "csms_SessionId",
        "ReferencedEntityNavigationPropertyName": "csms_session_messages",
        "Lookup": {
            "@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata",
            "SchemaName": "csms_SessionId",
            "DisplayName": label("Session"),
        },
    }
    bad = dict(relationship, ReferencedAttribute="csms_sessionid", SchemaName="csms_bad")
    assert session.post(root + "RelationshipDefinitions", json=bad).status_code == 400
    response = session.post(root + "RelationshipDefinitions", json=relationship)
    assert response.status_code == 204, response.text
    found = session.get(
        root + "RelationshipDefinitions?$filter=SchemaName eq 'csms_session_csms_msg'"
    ).json()["value"]
    assert found[0]["ReferencingEntityNavigationPropertyName"] == "csms_SessionId"
    parent = session.post(root + "csms_sessions", json={"subject": "s"})
    parent_url = parent.headers["OData-EntityId"]
    child = session.post(
        root + "csms_msgs", json={"subject": "m", "csms_SessionId@odata.bind": parent_url}
    )
    assert child.status_code == 204, child.text
    lower = session.post(
        root + "csms_msgs", json={"subject": "m", "csms_sessionid@odata.bind": parent_url}
    )
    assert lower.status_code == 400


def test_alternate_key_addressing_uniqueness_and_upsert(api: tuple[requests.Session, str]) -> None:
    session, root = api
    session.post(root + "EntityDefinitions", json=_table("csms_Msgkey"))
    session.post(
        root + "EntityDefinitions(LogicalName='csms_msgkey')/Attributes",
        json={
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "SchemaName": "csms_ProviderId",
            "MaxLength": 64,
        },
    )
    keys_url = root + "EntityDefinitions(LogicalName='csms_msgkey')/Keys"
    assert session.get(root + "csms_msgkeys(csms_providerid='SM1')").status_code == 400
    created = session.post(
        keys_url, json={"SchemaName": "csms_providerid_key", "KeyAttributes": ["csms_providerid"]}
    )
    assert created.status_code == 204
    keys = session.get(keys_url + "?$select=SchemaName,EntityKeyIndexStatus").json()["value"]
    assert keys[0]["EntityKeyIndexStatus"] == "Active"
    upsert = session.patch(
        root + "csms_msgkeys(csms_providerid='O''Neil-1')", json={"csms_name": "first"}
    )
    assert upsert.status_code == 204
    assert upsert.headers["OData-EntityId"].endswith("csms_msgkeys(csms_providerid='O''Neil-1')")
    again = session.patch(
        root + "csms_msgkeys(csms_providerid='O''Neil-1')",
        json={"csms_name": "dup"},
        headers={"If-None-Match": "*"},
    )
    assert again.status_code == 412
    got = session.get(root + "csms_msgkeys(csms_providerid='O%27%27Neil-1')").json()
    assert got["csms_name"] == "first" and got["csms_providerid"] == "O'Neil-1"
    duplicate = session.post(
        root + "csms_msgkeys", json={"csms_name": "x", "csms_providerid": "O'Neil-1"}
    )
    assert duplicate.status_code == 412
    assert duplicate.json()["error"]["code"] == "0x80060892"
    missing = session.patch(
        root + "csms_msgkeys(csms_providerid='none')", json={}, headers={"If-Match": "*"}
    )
    assert missing.status_code == 404
    expanded = session.get(
        root + "EntityDefinitions?$select=SchemaName&$filter=LogicalName eq "
        "'csms_msgkey'&$expand=Keys($select=KeyAttributes)"
    ).json()
    assert expanded["value"][0]["Keys"][0]["KeyAttributes"] == ["csms_providerid"]


def test_key_stays_pending_until_its_index_is_built() -> None:
    # A delay no test outlasts, so "Pending" holds however slow the machine; the test then
    # makes the build due itself instead of sleeping past a short delay.
    emulator = Emulator(key_delay=3600)
    with running(create_emulator_app(emulator=emulator)) as url, requests.Session() as session:
        session.headers["Authorization"] = "Bearer t"
        root = url + "/api/data/v9.2/"
        keys = root + "EntityDefinitions(LogicalName='contact')/Keys"
        session.post(keys, json={"SchemaName": "mobile_key", "KeyAttributes": ["mobilephone"]})
        assert session.get(keys).json()["value"][0]["EntityKeyIndexStatus"] == "Pending"
        assert session.get(root + "contacts(mobilephone='1')").status_code == 400
        (key,) = emulator.schema.entities["contact"].keys
        key.active_after = 0.0  # the delay is over
        assert session.get(keys).json()["value"][0]["EntityKeyIndexStatus"] == "Active"
        assert session.get(root + "contacts(mobilephone='1')").status_code == 404


def test_publish_and_standard_seed(api: tuple[requests.Session, str]) -> None:
    session, root = api
    assert session.post(root + "PublishAllXml").status_code == 204
    assert (
        session.post(root + "PublishXml", json={"ParameterXml": "<importexportxml/>"}).status_code
        == 204
    )
    sets = {
        e["EntitySetName"]
        for e in session.get(root + "EntityDefinitions?$select=EntitySetName").json()["value"]
    }
    assert {
        "contacts",
        "accounts",
        "leads",
        "opportunities",
        "systemusers",
        "teams",
        "teammemberships",
        "appnotifications",
        "annotations",
        "activitypointers",
        "activityparties",
        "publishers",
        "solutions",
    } <= sets
    state = session.get(
        root + "EntityDefinitions(LogicalName='lead')/Attributes"
        "(LogicalName='statecode')?$expand=OptionSet"
    ).json()
    assert [o["Value"] for o in state["OptionSet"]["Options"]] == [0, 1, 2]
    publisher = session.post(
        root + "publishers",
        json={
            "uniquename": "contososms",
            "friendlyname": "Contoso SMS",
            "customizationprefix": "csms",
            "customizationoptionvalueprefix": 72700,
        },
    )
    solution = session.post(
        root + "solutions",
        json={
            "uniquename": "ContosoSmsConnector",
            "friendlyname": "Contoso",
            "version": "1.0.0.0",
            "publisherid@odata.bind": publisher.headers["OData-EntityId"],
        },
    )
    assert solution.status_code == 204
    assert (
        len(
            session.get(root + "solutions?$filter=uniquename eq 'contososmsconnector'").json()[
                "value"
            ]
        )
        == 1
    )


def test_relationship_sides_and_status_cast(api: tuple[requests.Session, str]) -> None:
    session, root = api
    table = root + "EntityDefinitions(LogicalName='contact')"
    many_to_one = session.get(table + "/ManyToOneRelationships?$select=SchemaName").json()
    assert "contact_customer_accounts" in {r["SchemaName"] for r in many_to_one["value"]}
    one_to_many = session.get(table + "/OneToManyRelationships").json()["value"]
    assert "opportunity_parent_contact" in {r["SchemaName"] for r in one_to_many}
    assert session.get(table + "/ManyToManyRelationships").json()["value"] == []
    status = session.get(
        table + "/Attributes(LogicalName='statuscode')/"
        "Microsoft.Dynamics.CRM.StatusAttributeMetadata?$expand=OptionSet"
    ).json()
    assert [o["Value"] for o in status["OptionSet"]["Options"]] == [1, 2]


def test_key_over_duplicate_values_fails(api: tuple[requests.Session, str]) -> None:
    session, root = api
    for _ in range(2):
        session.post(root + "contacts", json={"emailaddress1": "same@example.com"})
    keys = root + "EntityDefinitions(LogicalName='contact')/Keys"
    created = session.post(
        keys, json={"SchemaName": "email_key", "KeyAttributes": ["emailaddress1"]}
    )
    assert created.status_code == 204
    statuses = {
        k["SchemaName"]: k["EntityKeyIndexStatus"] for k in session.get(keys).json()["value"]
    }
    assert statuses["email_key"] == "Failed"
    assert session.get(root + "contacts(emailaddress1='same@example.com')").status_code == 400


def test_customer_relationships_create_one_polymorphic_lookup(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    session.post(root + "EntityDefinitions", json=_table("csms_Bank"))
    response = session.post(
        root + "CreateCustomerRelationships",
        json={
            "OneToManyRelationships": [
                {
                    "SchemaName": "csms_bank_customer_account",
                    "ReferencedEntity": "account",
                    "ReferencingEntity": "csms_bank",
                },
                {
                    "SchemaName": "csms_bank_customer_contact",
                    "ReferencedEntity": "contact",
                    "ReferencingEntity": "csms_bank",
                },
            ],
            "Lookup": {
                "@odata.type": "Microsoft.Dynamics.CRM.ComplexLookupAttributeMetadata",
                "SchemaName": "csms_CustomerId",
                "DisplayName": label("Customer"),
            },
        },
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["RelationshipIds"]) == 2
    contact = session.post(root + "contacts", json={"lastname": "Cust"})
    bank = session.post(
        root + "csms_banks",
        headers={"Prefer": "return=representation"},
        json={
            "csms_name": "b",
            "csms_CustomerId_contact@odata.bind": contact.headers["OData-EntityId"],
        },
    )
    assert bank.status_code == 201, bank.text
    assert bank.json()["_csms_customerid_value"] in contact.headers["OData-EntityId"]
    attribute = session.get(
        root + "EntityDefinitions(LogicalName='csms_bank')/Attributes("
        "LogicalName='csms_customerid')"
    ).json()
    assert attribute["AttributeType"] == "Customer"
    assert sorted(attribute["Targets"]) == ["account", "contact"]
