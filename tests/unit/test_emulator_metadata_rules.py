"""Metadata derivation rules of the emulator: set names, payload parsing, navigation names."""

from __future__ import annotations

import pytest

from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.metadata import label, pluralise
from connector.emulators.dataverse.metadata_shapes import attribute_from_payload, attribute_json
from connector.emulators.dataverse.protocol import EmuRequest
from connector.emulators.dataverse.router import Emulator
from connector.emulators.dataverse.standard import standard_schema


@pytest.mark.parametrize(
    ("logical", "entity_set"),
    [
        ("new_bankaccount", "new_bankaccounts"),
        ("msdyn_smsengagementctx", "msdyn_smsengagementctxes"),
        ("csms_sms", "csms_smses"),
        ("csms_category", "csms_categories"),
        ("csms_day", "csms_days"),
    ],
)
def test_entity_set_names_are_english_plurals(logical: str, entity_set: str) -> None:
    assert pluralise(logical) == entity_set


def test_attribute_payload_kinds_and_defaults() -> None:
    text = attribute_from_payload(
        {
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "SchemaName": "csms_Phone",
            "DisplayName": label("Phone"),
        }
    )
    assert (text.logical_name, text.attribute_type, text.max_length) == (
        "csms_phone",
        "String",
        100,
    )
    complex_int = attribute_from_payload(
        {
            "@odata.type": "Microsoft.Dynamics.CRM.ComplexIntegerAttributeMetadata",
            "SchemaName": "new_Count",
        }
    )
    assert complex_int.attribute_type == "Integer"
    choice = attribute_from_payload(
        {
            "@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
            "SchemaName": "x_Dir",
            "OptionSet": {"Options": [{"Value": 1, "Label": label("In")}]},
        }
    )
    shown = attribute_json(standard_schema().entities["contact"], choice)
    assert shown["@odata.type"] == "#Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
    assert shown["OptionSet"]["Options"][0]["Label"]["LocalizedLabels"][0]["Label"] == "In"
    with pytest.raises(EmulatorRequestError):
        attribute_from_payload(
            {
                "@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata",
                "SchemaName": "x_Lookup",
            }
        )


def test_standard_navigation_properties() -> None:
    schema = standard_schema()
    contact = schema.single_navs("contact")
    assert contact["parentcustomerid_account"].targets == ("account",)
    assert contact["parentcustomerid_contact"].attribute == "parentcustomerid"
    assert set(contact["ownerid"].targets) == {"systemuser", "team"}
    task = schema.single_navs("task")
    assert {
        "regardingobjectid_contact_task",
        "regardingobjectid_account_task",
        "regardingobjectid_lead_task",
        "regardingobjectid_opportunity_task",
    } <= set(task)
    assert "task_activity_parties" in schema.collection_navs("task")
    assert "opportunity_parent_contact" in schema.collection_navs("contact")


def test_core_answers_without_a_socket() -> None:
    emulator = Emulator()
    request = EmuRequest.build("GET", "WhoAmI", "", {}, body=b"", base_url="http://x")
    assert emulator.handle(request).json()["UserId"]
    missing = EmuRequest.build("GET", "nosuch", "", {}, body=b"", base_url="http://x")
    response = emulator.handle(missing)
    assert response.status == 404 and response.json()["error"]["code"] == "0x8006088a"
