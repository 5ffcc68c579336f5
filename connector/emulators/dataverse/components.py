"""Solution components as rows: views, forms, site maps, apps, security roles, privileges.

``dataverse-web-api.md`` section 13: views are ``savedquery`` rows (fetchxml + layoutxml),
forms ``systemform`` rows (formxml), the model-driven app an ``appmodule`` row with a
``sitemap``, security roles ``role`` rows given privileges by ``AddPrivilegesRole``. The
emulator stores them as ordinary rows and checks what it can when they are written: the XML
parses, the columns a view or form names exist on its table, a site map's areas name real
tables, and a privilege given to a role is one of the tables' own (``prv<Verb><table>``, listed
in each table's ``Privileges`` metadata, with stable ids).
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from typing import Any

from connector.emulators.dataverse.metadata import AttributeDef, EntityDef
from connector.emulators.dataverse.protocol import EmuRequest, EmuResponse, bad_request
from connector.emulators.dataverse.schema import Schema
from connector.emulators.dataverse.seed import new_table, string_column
from connector.emulators.dataverse.store import table_name

_NAMESPACE = uuid.UUID("0b7c7a4e-5d6f-4f0e-9a51-3c2f1e7d9b20")
VERBS = ("Create", "Read", "Write", "Delete", "Append", "AppendTo", "Assign", "Share")
DEPTHS = {"Basic": 0, "Local": 1, "Deep": 2, "Global": 3}
_XML_CODE = "0x80040203"


def component_tables() -> list[EntityDef]:
    """The component tables, with the columns the installer writes."""
    view = new_table("savedquery", "savedqueries", "name", ownership="OrganizationOwned", otc=1039)
    form = new_table("systemform", "systemforms", "name", ownership="OrganizationOwned", otc=1030)
    _rename_key(form, "formid")
    sitemap = new_table(
        "sitemap", "sitemaps", "sitemapname", ownership="OrganizationOwned", otc=4709
    )
    app = new_table("appmodule", "appmodules", "name", ownership="OrganizationOwned", otc=9006)
    role = new_table("role", "roles", "name", ownership="BusinessOwned", otc=1036)
    grant = new_table("roleprivileges", "roleprivilegescollection", "", ownership="None", otc=12)
    unit = new_table("businessunit", "businessunits", "name", ownership="None", otc=10)
    for entity, memos, texts, numbers, flags in (
        (
            view,
            ("fetchxml", "layoutxml"),
            ("returnedtypecode", "description"),
            ("querytype",),
            ("isdefault",),
        ),
        (
            form,
            ("formxml",),
            ("objecttypecode", "description"),
            ("type", "formactivationstate"),
            ("isdefault",),
        ),
        (sitemap, ("sitemapxml",), ("sitemapnameunique",), (), ("isappaware",)),
        (
            app,
            (),
            ("uniquename", "description", "webresourceid"),
            ("clienttype", "formfactor", "navigationtype"),
            (),
        ),
        (role, (), ("description",), (), ()),
        (grant, (), ("roleid", "privilegeid", "privilegename"), ("depth",), ()),
    ):
        for name in memos:
            entity.add(AttributeDef(name, "Memo", max_length=1048576))
        for name in texts:
            entity.add(string_column(name, 400))
        for name in numbers:
            entity.add(AttributeDef(name, "Integer"))
        for name in flags:
            entity.add(AttributeDef(name, "Boolean"))
    unit.add(AttributeDef("parentbusinessunitid", "Lookup", targets=["businessunit"]))
    return [unit, view, form, sitemap, app, role, grant]


def _rename_key(entity: EntityDef, primary_id: str) -> None:
    attribute = entity.attributes.pop(entity.primary_id)
    attribute.logical_name = attribute.schema_name = primary_id
    entity.primary_id = primary_id
    entity.attributes = {primary_id: attribute, **entity.attributes}


# -- privileges -------------------------------------------------------------------------------


def privilege_id(name: str) -> str:
    """The stable id of privilege ``name`` (the same in every emulator)."""
    return str(uuid.uuid5(_NAMESPACE, name.lower()))


def privileges(entity: EntityDef) -> list[dict[str, Any]]:
    """The ``Privileges`` of a table's metadata: organization-owned tables have no Assign or
    Share and only the Global depth."""
    owned = entity.ownership in ("UserOwned", "TeamOwned")
    verbs = VERBS if owned else VERBS[:6]
    return [
        {
            "PrivilegeId": privilege_id(f"prv{verb}{entity.logical_name}"),
            "Name": f"prv{verb}{entity.logical_name}",
            "PrivilegeType": verb,
            "CanBeBasic": owned,
            "CanBeLocal": owned,
            "CanBeDeep": owned,
            "CanBeGlobal": True,
        }
        for verb in verbs
    ]


def _all_privileges(schema: Schema) -> dict[str, tuple[dict[str, Any], EntityDef]]:
    return {
        p["PrivilegeId"]: (p, entity)
        for entity in schema.entities.values()
        for p in privileges(entity)
    }


def add_privileges_role(emulator: Any, req: EmuRequest, role_key: str) -> EmuResponse:
    """``POST roles(<id>)/Microsoft.Dynamics.CRM.AddPrivilegesRole``: adds or raises the
    role's privileges; each must be a table's own, at a depth that table allows."""
    records = emulator.records
    role_entity = records.schema.entity("role")
    if records.get(role_entity, role_key.lower()) is None:
        raise bad_request(f"role With Id = {role_key} Does Not Exist", "0x80040217")
    items = req.json().get("Privileges")
    if not isinstance(items, list) or not items:
        raise bad_request("Privileges must be a non-empty list.", _XML_CODE)
    known = _all_privileges(records.schema)
    grants = records.schema.entity("roleprivileges")
    with records.store.transaction():
        for item in items:
            found = known.get(str((item or {}).get("PrivilegeId", "")).lower())
            if found is None:
                raise bad_request(f"Privilege {item!r} does not exist.", "0x80040217")
            depth = _depth(item.get("Depth"))
            meta, _ = found
            allowed = meta["CanBeGlobal"] if depth == 3 else meta["CanBeBasic"]
            if not allowed:
                raise bad_request(f"Depth {depth} is not valid for {meta['Name']}.", _XML_CODE)
            grant_id = str(uuid.uuid5(_NAMESPACE, f"{role_key.lower()}|{meta['PrivilegeId']}"))
            current = records.get(grants, grant_id)
            row = {
                "roleid": role_key.lower(),
                "privilegeid": meta["PrivilegeId"],
                "privilegename": meta["Name"],
                "depth": depth,
            }
            if current is None:
                records.create(grants, {"roleprivilegesid": grant_id, **row})
            elif int(current["depth"]) < depth:
                records.update(grants, current, {"depth": depth})
    return EmuResponse.empty(204)


def retrieve_role_privileges(emulator: Any, req: EmuRequest, role_id: str) -> EmuResponse:
    """``GET RetrieveRolePrivilegesRole(RoleId=<id>)``: the role's privileges and depths."""
    records = emulator.records
    rows = records.store.select(
        f"SELECT privilegeid, privilegename, depth FROM {table_name('roleprivileges')} "
        "WHERE roleid = ?",
        [role_id.lower()],
    )
    names = {v: k for k, v in DEPTHS.items()}
    value = [
        {
            "PrivilegeId": r["privilegeid"],
            "PrivilegeName": r["privilegename"],
            "Depth": names[int(r["depth"])],
        }
        for r in rows
    ]
    return EmuResponse.of_json(200, {"RolePrivileges": value})


def add_app_components(emulator: Any, req: EmuRequest) -> EmuResponse:
    """``POST AddAppComponents``: the app and each component (site map, view, form) exist."""
    records = emulator.records
    body = req.json()
    checks = [("appmodule", body.get("AppId"))]
    for item in body.get("Components") or []:
        kind = str(item.get("@odata.type", "")).rsplit(".", 1)[-1]
        key = {"sitemap": "sitemapid", "savedquery": "savedqueryid", "systemform": "formid"}
        if kind not in key:
            raise bad_request(f"Component type {kind!r} is not supported.", _XML_CODE)
        checks.append((kind, item.get(key[kind])))
    for table, row_id in checks:
        if records.get(records.schema.entity(table), str(row_id or "").lower()) is None:
            raise bad_request(f"{table} With Id = {row_id} Does Not Exist", "0x80040217")
    return EmuResponse.empty(204)


def _depth(value: Any) -> int:
    if isinstance(value, str) and value in DEPTHS:
        return DEPTHS[value]
    if isinstance(value, (int, str)) and str(value) in {"0", "1", "2", "3"}:
        return int(value)
    raise bad_request(f"Depth {value!r} is not a PrivilegeDepth.", _XML_CODE)


# -- validation of component rows ---------------------------------------------------------------


def validate(schema: Schema, entity: EntityDef, row: dict[str, Any]) -> None:
    """Check a component row as it will be stored (``row``: current values with the write's)."""
    name = entity.logical_name
    if name == "savedquery":
        table = _table(schema, row.get("returnedtypecode"), "returnedtypecode")
        if row.get("fetchxml"):
            _check_fetch(table, str(row["fetchxml"]))
        if row.get("layoutxml"):
            _check_layout(table, str(row["layoutxml"]))
    elif name == "systemform":
        table = _table(schema, row.get("objecttypecode"), "objecttypecode")
        if row.get("formxml"):
            _check_form(schema, table, str(row["formxml"]))
    elif name == "sitemap" and row.get("sitemapxml"):
        for area in _xml(str(row["sitemapxml"]), "sitemapxml").iter("SubArea"):
            if area.get("Entity"):
                _table(schema, area.get("Entity"), "SubArea Entity")
    elif name == "appmodule" and not (row.get("name") and row.get("uniquename")):
        raise bad_request("name and uniquename are required for an app module.", _XML_CODE)


def _table(schema: Schema, name: Any, field: str) -> EntityDef:
    table = schema.entities.get(str(name or ""))
    if table is None:
        raise bad_request(f"{field} '{name}' is not a table.", _XML_CODE)
    return table


def _xml(text: str, what: str) -> ET.Element:
    try:
        return ET.fromstring(text)  # noqa: S314 - the emulator's own test data, no DTDs
    except ET.ParseError as exc:
        raise bad_request(f"Invalid {what}: {exc}.", "0x80041102") from exc


def _column(table: EntityDef, name: str | None, where: str) -> None:
    if not name or name not in table.attributes:
        raise bad_request(
            f"'{table.logical_name}' entity doesn't contain attribute with Name = '{name}' "
            f"({where}).",
            "0x80041103",
        )


def _check_fetch(table: EntityDef, text: str) -> None:
    fetch = _xml(text, "fetchxml")
    node = fetch.find("entity")
    if fetch.tag != "fetch" or node is None or node.get("name") != table.logical_name:
        raise bad_request("The fetchxml entity must be the view's table.", "0x80041102")
    for tag in ("attribute", "order"):
        for item in node.iter(tag):
            _column(table, item.get("name") or item.get("attribute"), f"fetchxml {tag}")
    for condition in node.iter("condition"):
        _column(table, condition.get("attribute"), "fetchxml condition")


def _check_layout(table: EntityDef, text: str) -> None:
    grid = _xml(text, "layoutxml")
    if grid.tag != "grid":
        raise bad_request("layoutxml must be a <grid>.", "0x80041102")
    for row in grid.iter("row"):
        _column(table, row.get("id"), "layoutxml row id")
    for cell in grid.iter("cell"):
        _column(table, cell.get("name"), "layoutxml cell")


def _check_form(schema: Schema, table: EntityDef, text: str) -> None:
    form = _xml(text, "formxml")
    if form.tag != "form":
        raise bad_request("formxml must be a <form>.", "0x80041102")
    for control in form.iter("control"):
        if control.get("datafieldname"):
            _column(table, control.get("datafieldname"), "formxml control")
        target = control.findtext("parameters/TargetEntityType")
        if target:
            _table(schema, target, "subgrid TargetEntityType")
