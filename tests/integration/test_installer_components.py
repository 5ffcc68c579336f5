"""Solution components installed by ``schema apply`` against the emulator: views, forms, the
app with its site map, roles with privileges; a second run changes nothing; an edited view is
put back; the views' fetchxml runs; the emulator refuses components naming what does not
exist."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from connector.dataverse.client import DataverseClient
from connector.errors import DataverseError
from connector.schema.installer import Installer
from connector.schema.spec import Schema, load_schema
from connector.testing.emulator_client import emulator_client
from tests.integration.test_installer_emulator import changing_requests

SCHEMA = load_schema()
assert SCHEMA.components is not None
COMPONENTS = SCHEMA.components


@pytest.fixture
def client(emulator_url: str) -> Iterator[DataverseClient]:
    dv = emulator_client(emulator_url, attempts=2)
    yield dv
    dv.api.close()


def _installer(client: DataverseClient, schema: Schema = SCHEMA) -> Installer:
    return Installer(client, schema, poll_interval=0.02, key_timeout=30)


def _view(client: DataverseClient, name: str) -> dict[str, object]:
    (row,) = client.query("savedqueries", filter=f"name eq '{name}'")
    return row


def test_the_plan_lists_every_component_and_a_second_apply_changes_nothing(
    client: DataverseClient, emulator_url: str
) -> None:
    planned = _installer(client).plan()
    kinds = [(s.action, s.kind, s.name) for s in planned.changes]
    for view in COMPONENTS.views:
        assert ("create", "view", view.name) in kinds
    for form in COMPONENTS.forms:
        assert ("create", "form", form.name) in kinds
    assert ("create", "app", "smsc_SmsConnector") in kinds
    for role in COMPONENTS.roles:
        assert ("create", "role", role.name) in kinds
        assert ("create", "privileges", role.name) in kinds
    assert _installer(client).apply().complete
    before = changing_requests(emulator_url)
    assert _installer(client).plan().empty
    assert _installer(client).apply().complete
    assert changing_requests(emulator_url) == before


def test_installed_components_are_stored_with_their_privileges(
    installed: DataverseClient,
) -> None:
    names = {r["name"] for r in installed.query("savedqueries", filter="querytype eq 0")}
    assert {v.name for v in COMPONENTS.views} <= names
    forms = {r["name"]: r for r in installed.query("systemforms", filter="type eq 2")}
    assert {f.name for f in COMPONENTS.forms} <= set(forms)
    assert "smsc_message" in str(forms["SMS Conversation"]["formxml"])  # the messages subgrid
    (app,) = installed.query("appmodules", filter="uniquename eq 'smsc_SmsConnector'")
    assert app["name"] == "SMS Connector"
    (sitemap,) = installed.query("sitemaps")
    assert 'Entity="smsc_errorlog"' in str(sitemap["sitemapxml"])
    for role in COMPONENTS.roles:
        (row,) = installed.query("roles", filter=f"name eq '{role.name}'")
        held = installed.request(
            "GET", f"RetrieveRolePrivilegesRole(RoleId={row['roleid']})"
        ).json()["RolePrivileges"]
        wanted = {
            (f"prv{verb}{t}", d)
            for t, verbs in role.privileges.items()
            for verb, d in verbs.items()
        }
        assert {(p["PrivilegeName"], p["Depth"]) for p in held} == wanted


def test_an_edited_view_is_put_back_by_the_next_apply(installed: DataverseClient) -> None:
    view = _view(installed, "Unread conversations")
    installed.update("savedqueries", str(view["savedqueryid"]), {"layoutxml": "<grid />"})
    steps = _installer(installed).plan().changes
    assert [(s.action, s.kind, s.name, s.detail) for s in steps] == [
        ("update", "view", "Unread conversations", "layoutxml")
    ]
    assert _installer(installed).apply().complete
    assert _view(installed, "Unread conversations")["layoutxml"] != "<grid />"


def test_the_unread_view_lists_exactly_the_unread_conversations(
    installed: DataverseClient,
) -> None:
    ids = {}
    for name, unread in (("read", 0), ("two unread", 2), ("one unread", 1)):
        ids[name] = installed.create("smsc_sessions", {"subject": name, "smsc_unreadcount": unread})
    fetch = str(_view(installed, "Unread conversations")["fetchxml"])
    rows = installed.fetch_xml("smsc_sessions", fetch).rows
    assert {r["activityid"] for r in rows} == {ids["two unread"], ids["one unread"]}
    mine = str(_view(installed, "My text conversations")["fetchxml"])
    assert len(installed.fetch_xml("smsc_sessions", mine).rows) == 3  # owned by the caller


@pytest.mark.parametrize(
    ("entity_set", "body"),
    [
        (
            "savedqueries",
            {
                "name": "x",
                "returnedtypecode": "smsc_session",
                "querytype": 0,
                "fetchxml": '<fetch><entity name="smsc_session"><attribute name="nope"/></entity>'
                "</fetch>",
            },
        ),
        ("savedqueries", {"name": "x", "returnedtypecode": "smsc_session", "fetchxml": "<fetch"}),
        ("savedqueries", {"name": "x", "returnedtypecode": "nosuchtable"}),
        (
            "systemforms",
            {
                "name": "x",
                "objecttypecode": "smsc_message",
                "type": 2,
                "formxml": '<form><control id="a" datafieldname="nope"/></form>',
            },
        ),
        (
            "sitemaps",
            {"sitemapname": "x", "sitemapxml": '<SiteMap><SubArea Entity="nope"/></SiteMap>'},
        ),
    ],
)
def test_the_emulator_refuses_components_naming_what_does_not_exist(
    installed: DataverseClient, entity_set: str, body: dict[str, object]
) -> None:
    with pytest.raises(DataverseError) as refused:
        installed.create(entity_set, body)
    assert refused.value.status == 400


def test_a_role_cannot_be_given_a_privilege_no_table_has(installed: DataverseClient) -> None:
    role = installed.create("roles", {"name": "Probe"})
    unknown = [{"PrivilegeId": str(uuid.uuid4()), "Depth": "Global"}]
    with pytest.raises(DataverseError) as refused:
        installed.call_action(
            "AddPrivilegesRole", {"Privileges": unknown}, bound_to=("roles", role)
        )
    assert refused.value.status == 400
