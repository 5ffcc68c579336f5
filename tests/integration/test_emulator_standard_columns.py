"""The emulator's standard tables carry Microsoft's reference columns, over real HTTP.

Columns admins' templates, views and compliance settings name (``description``,
``donotphone``, ``birthdate``, ``address1_city``, ``preferredcontactmethodcode``...) are
writable as in Dataverse; a choice value outside the column's options and a name that is no
column are 400s; the metadata API describes the new columns with their real types.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
STANDARD = (
    "contact",
    "account",
    "lead",
    "opportunity",
    "systemuser",
    "team",
    "businessunit",
    "activitypointer",
)


@pytest.fixture()
def api(emulator_url: str) -> Iterator[tuple[requests.Session, str]]:
    session = requests.Session()
    session.headers.update(
        {"Authorization": "Bearer test", "Accept": "application/json", "OData-Version": "4.0"}
    )
    yield session, emulator_url + "/api/data/v9.2/"
    session.close()


def _created(session: requests.Session, url: str, body: dict[str, object]) -> str:
    response = session.post(url, json=body)
    assert response.status_code == 204, response.text
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


REAL_COLUMNS: dict[str, object] = {
    "description": "Met at the trade fair; prefers texts after 5 pm.",
    "donotphone": True,
    "donotbulkemail": True,
    "birthdate": "1984-03-09",
    "emailaddress2": "ann.private@example.org",
    "address1_city": "Utrecht",
    "preferredcontactmethodcode": 3,
}


def test_create_and_patch_with_real_contact_columns(api: tuple[requests.Session, str]) -> None:
    session, root = api
    contact = _created(session, root + "contacts", {"lastname": "Lee", **REAL_COLUMNS})
    stored = session.get(root + f"contacts({contact})").json()
    for name, value in REAL_COLUMNS.items():
        if name == "birthdate":
            assert str(stored[name]).startswith("1984-03-09")
        else:
            assert stored[name] == value, name

    patch = {"donotphone": False, "address1_city": "Leiden", "preferredcontactmethodcode": 2}
    assert session.patch(root + f"contacts({contact})", json=patch).status_code == 204
    shown = session.get(
        root + f"contacts({contact})?$select=donotphone,address1_city,preferredcontactmethodcode",
        headers={"Prefer": 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'},
    ).json()
    assert shown["donotphone"] is False
    assert shown["address1_city"] == "Leiden"
    assert shown["preferredcontactmethodcode"] == 2
    formatted = "preferredcontactmethodcode@OData.Community.Display.V1.FormattedValue"
    assert shown[formatted] == "Email"


def test_real_columns_of_account_and_lead(api: tuple[requests.Session, str]) -> None:
    session, root = api
    account = _created(
        session,
        root + "accounts",
        {"name": "Contoso", "description": "Key account", "donotphone": True, "revenue": 1.5e6},
    )
    assert session.get(root + f"accounts({account})").json()["revenue"] == 1.5e6
    lead = {"lastname": "Diaz", "leadqualitycode": 1, "address1_city": "Ghent"}
    lead_id = _created(session, root + "leads", lead)
    assert session.get(root + f"leads({lead_id})").json()["leadqualitycode"] == 1


def test_option_value_outside_the_choices_is_a_400_and_changes_nothing(
    api: tuple[requests.Session, str],
) -> None:
    session, root = api
    contact = _created(session, root + "contacts", {"lastname": "Lee"})
    response = session.patch(
        root + f"contacts({contact})",
        json={"preferredcontactmethodcode": 7, "address1_city": "Delft"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "0x8004431a"
    assert "preferredcontactmethodcode" in error["message"]
    assert "Accepted Values: 1,2,3,4,5" in error["message"]
    stored = session.get(root + f"contacts({contact})").json()
    assert stored["address1_city"] is None and stored["preferredcontactmethodcode"] is None
    created = session.post(root + "contacts", json={"lastname": "X", "gendercode": 99})
    assert created.status_code == 400


def test_unknown_column_is_still_a_400(api: tuple[requests.Session, str]) -> None:
    session, root = api
    response = session.post(root + "contacts", json={"lastname": "Lee", "favouritecolour": "red"})
    assert response.status_code == 400
    assert "favouritecolour" in response.json()["error"]["message"]
    too_long = session.post(root + "contacts", json={"address1_city": "x" * 81})
    assert too_long.status_code == 400  # MaxLength 80, from the reference


def test_metadata_describes_the_reference_columns(api: tuple[requests.Session, str]) -> None:
    session, root = api
    url = root + "EntityDefinitions(LogicalName='contact')/Attributes"
    by_name = {a["LogicalName"]: a for a in session.get(url).json()["value"]}
    assert len(by_name) > 150
    assert by_name["address1_city"]["AttributeType"] == "String"
    assert by_name["address1_city"]["MaxLength"] == 80
    assert by_name["address1_city"]["IsCustomAttribute"] is False
    assert by_name["donotphone"]["AttributeType"] == "Boolean"
    assert by_name["birthdate"]["AttributeType"] == "DateTime"
    assert by_name["description"]["AttributeType"] == "Memo"
    assert by_name["parentcustomerid"]["AttributeType"] == "Customer"
    assert by_name["parentcustomerid"]["Targets"] == ["account", "contact"]
    assert by_name["fullname"]["IsValidForCreate"] is False
    assert by_name["ownerid"]["RequiredLevel"]["Value"] == "SystemRequired"
    assert "parentcustomeridname" not in by_name  # AttributeOf companions are no properties
    picklist = session.get(
        root + "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName="
        "'preferredcontactmethodcode')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
        "?$expand=OptionSet"
    )
    assert picklist.status_code == 200, picklist.text
    options = picklist.json()["OptionSet"]["Options"]
    assert [(o["Value"], o["Label"]["UserLocalizedLabel"]["Label"]) for o in options] == [
        (1, "Any"),
        (2, "Email"),
        (3, "Phone"),
        (4, "Fax"),
        (5, "Mail"),
    ]


def test_data_file_names_its_source_and_regeneration() -> None:
    path = ROOT / "connector" / "emulators" / "dataverse" / "standard_columns.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert "CC BY 4.0" in data["license"]
    assert "scripts/generate_standard_columns.py" in data["regenerate"]
    assert set(data["tables"]) == set(STANDARD)
    for table in data["tables"].values():
        for column in table["columns"]:
            assert set(column) <= {
                "name",
                "schema",
                "type",
                "max_length",
                "targets",
                "options",
                "required",
                "create",
                "update",
                "read",
            }


def _generate(pages: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own script with our own arguments
        [sys.executable, "scripts/generate_standard_columns.py", str(pages), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


_PAGE = """---
ms.date: 01/02/2024
---
# {title}

## Properties

|Property|Value|
|--------|-----|
|EntitySetName|{plural}|
|LogicalName|{name}|
|PrimaryIdAttribute|{name}id|

## Writable columns/attributes

### <a name="BKMK_Code"></a> Code

|Property|Value|
|--------|-----|
|LogicalName|code|
|RequiredLevel|ApplicationRequired|
|Type|Picklist|

#### Code Choices/Options

|Value|Label|Description|
|-----|-----|--------|
|1|One||
|2|Two||

### <a name="BKMK_ParentId"></a> ParentId

|Property|Value|
|--------|-----|
|IsValidForRead|True|
|LogicalName|parentid|
|RequiredLevel|None|
|Targets|account,contact|
|Type|Customer|

### <a name="BKMK_ParentIdName"></a> ParentIdName

|Property|Value|
|--------|-----|
|LogicalName|parentidname|
|MaxLength|100|
|Type|String|

## Read-only columns/attributes

### <a name="BKMK_Note"></a> Note

|Property|Value|
|--------|-----|
|IsValidForRead|True|
|LogicalName|note|
|MaxLength|42|
|RequiredLevel|None|
|Type|String|

## Many-To-One Relationships

### <a name="BKMK_x"></a> x
"""


def test_generator_reads_the_current_page_layout(tmp_path: Path) -> None:
    """The generator run as a maintainer runs it, over pages in today's powerapps-docs layout."""
    pages = tmp_path / "pages"
    pages.mkdir()
    for table in STANDARD:
        page = _PAGE.format(title=table, plural=table + "s", name=table)
        (pages / f"{table}.md").write_text(page, encoding="utf-8")
    out = tmp_path / "columns.json"
    done = _generate(pages, out)
    assert done.returncode == 0, done.stderr
    columns = json.loads(out.read_text(encoding="utf-8"))["tables"]["lead"]["columns"]
    assert columns == [
        {
            "name": "code",
            "schema": "Code",
            "type": "Picklist",
            "options": [[1, "One"], [2, "Two"]],
            "required": "ApplicationRequired",
            "create": True,
            "update": True,
            "read": True,
        },
        {
            "name": "note",
            "schema": "Note",
            "type": "String",
            "max_length": 42,
            "required": "None",
            "create": False,
            "update": False,
            "read": True,
        },
        {
            "name": "parentid",
            "schema": "ParentId",
            "type": "Customer",
            "targets": ["account", "contact"],
            "required": "None",
            "create": True,
            "update": True,
            "read": True,
        },
    ]


def test_generator_refuses_a_missing_page_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "columns.json"
    done = _generate(tmp_path, out)
    assert done.returncode == 2
    assert "contact.md is missing" in done.stderr
    assert not out.exists()
