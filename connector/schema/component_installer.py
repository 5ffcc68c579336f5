"""Installing the solution components: read what exists, plan, send (``schema plan|apply``).

Views, forms, the site map and app, and security roles are rows (``savedqueries``,
``systemforms``, ``sitemaps``, ``appmodules``, ``roles``), found by their natural names (view
and form name with their table, the site map's and app's unique names, the role's name in the
root business unit). A missing one is created inside the solution (``MSCRM.SolutionUniqueName``);
an existing view, form or site map whose XML differs from the declaration is PATCHed; a role
missing privileges (or holding them at a lower depth) gets them through ``AddPrivilegesRole``.
Nothing is deleted, so a second run plans nothing. Bodies need the tables' metadata (object
type codes, privilege ids): for a table the same run creates, the step's body is built when it
is sent (:func:`send`), after the tables exist.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.dataverse import odata
from connector.dataverse.client import DataverseClient
from connector.errors import ConfigurationError, DataverseNotFoundError
from connector.schema.components import (
    DEFAULT_APP_ICON,
    AppSpec,
    Components,
    FormSpec,
    RoleSpec,
    ViewSpec,
    fetch_xml,
    form_xml,
    layout_xml,
    sitemap_xml,
    stable_id,
)
from connector.schema.plan import Step
from connector.schema.spec import Schema, TableSpec, relationship_name

DEPTHS = {"Basic": 0, "Local": 1, "Deep": 2, "Global": 3}
_KINDS = {
    "string": "text",
    "integer": "text",
    "decimal": "text",
    "boolean": "choice",
    "memo": "memo",
    "datetime": "datetime",
    "choice": "choice",
    "lookup": "lookup",
}
_STANDARD_KINDS = {
    "regardingobjectid": "lookup",
    "ownerid": "lookup",
    "createdon": "datetime",
    "modifiedon": "datetime",
    "actualstart": "datetime",
    "actualend": "datetime",
    "description": "memo",
    "statecode": "choice",
    "statuscode": "choice",
}


@dataclass(frozen=True, slots=True)
class TableFacts:
    """What a component body needs from a table's metadata."""

    primary_id: str
    primary_name: str
    object_type_code: int
    privileges: Mapping[str, str]  # privilege name (lowercase) -> id


@dataclass
class LiveComponents:
    """The component rows that exist, by natural name."""

    tables: dict[str, TableFacts] = field(default_factory=dict)
    views: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    forms: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    sitemap: dict[str, Any] | None = None
    app: dict[str, Any] | None = None
    roles: dict[str, str] = field(default_factory=dict)  # name -> roleid
    grants: dict[str, dict[str, int]] = field(default_factory=dict)  # roleid -> {pid: depth}
    root_unit: str | None = None


def _tables_used(components: Components) -> set[str]:
    used = {v.table for v in components.views} | {f.table for f in components.forms}
    for role in components.roles:
        used |= set(role.privileges)
    return used


def _facts(client: DataverseClient, table: str) -> TableFacts | None:
    path = f"EntityDefinitions(LogicalName='{table}')"
    query = {"$select": "PrimaryIdAttribute,PrimaryNameAttribute,ObjectTypeCode,Privileges"}
    try:
        body = client.request("GET", path, query=query, strong_consistency=True).json() or {}
    except DataverseNotFoundError:
        return None
    privileges = {
        str(p["Name"]).lower(): str(p["PrivilegeId"]) for p in body.get("Privileges") or []
    }
    return TableFacts(
        str(body["PrimaryIdAttribute"]),
        str(body.get("PrimaryNameAttribute") or ""),
        int(body.get("ObjectTypeCode") or 0),
        privileges,
    )


def read_components(client: DataverseClient, components: Components) -> LiveComponents:
    """What exists now (reads only)."""
    live = LiveComponents()
    for table in sorted(_tables_used(components)):
        facts = _facts(client, table)
        if facts is not None:
            live.tables[table] = facts
    if components.views:
        tables = sorted({v.table for v in components.views})
        rows = client.query(
            "savedqueries",
            select=["savedqueryid", "name", "returnedtypecode", "fetchxml", "layoutxml"],
            filter=odata.and_(odata.eq("querytype", 0), odata.in_("returnedtypecode", tables)),
        )
        live.views = {(str(r["returnedtypecode"]), str(r["name"])): r for r in rows}
    if components.forms:
        tables = sorted({f.table for f in components.forms})
        rows = client.query(
            "systemforms",
            select=["formid", "name", "objecttypecode", "formxml"],
            filter=odata.and_(odata.eq("type", 2), odata.in_("objecttypecode", tables)),
        )
        live.forms = {(str(r["objecttypecode"]), str(r["name"])): r for r in rows}
    if components.app is not None:
        unique = components.app.unique_name
        live.sitemap = next(
            iter(
                client.query(
                    "sitemaps",
                    select=["sitemapid", "sitemapxml"],
                    filter=odata.eq("sitemapnameunique", _sitemap_name(unique)),
                    top=1,
                )
            ),
            None,
        )
        live.app = next(
            iter(
                client.query(
                    "appmodules",
                    select=["appmoduleid"],
                    filter=odata.eq("uniquename", unique),
                    top=1,
                )
            ),
            None,
        )
    if components.roles:
        live.root_unit = _root_unit(client)
        for role in components.roles:
            found = next(
                iter(
                    client.query(
                        "roles", select=["roleid"], filter=odata.eq("name", role.name), top=1
                    )
                ),
                None,
            )
            if found is not None:
                role_id = str(found["roleid"])
                live.roles[role.name] = role_id
                live.grants[role_id] = _grants(client, role_id)
    return live


def _root_unit(client: DataverseClient) -> str | None:
    rows = client.query(
        "businessunits",
        select=["businessunitid"],
        filter=odata.is_null("_parentbusinessunitid_value"),
        top=1,
    )
    return next((str(r["businessunitid"]) for r in rows), None)


def _grants(client: DataverseClient, role_id: str) -> dict[str, int]:
    answer = client.request("GET", f"RetrieveRolePrivilegesRole(RoleId={role_id})").json() or {}
    return {
        str(p["PrivilegeId"]).lower(): DEPTHS.get(str(p.get("Depth")), 0)
        for p in answer.get("RolePrivileges") or []
    }


def _sitemap_name(app_unique_name: str) -> str:
    return f"{app_unique_name}_sitemap".lower()


# -- bodies -----------------------------------------------------------------------------------


def view_body(view: ViewSpec, facts: TableFacts) -> dict[str, Any]:
    """The ``savedquery`` row of a view."""
    return {
        "name": view.name,
        "description": "Installed by the SMS connector",
        "returnedtypecode": view.table,
        "querytype": 0,
        "isdefault": False,
        "fetchxml": fetch_xml(view, facts.primary_id),
        "layoutxml": layout_xml(view, facts.primary_id, facts.primary_name, facts.object_type_code),
    }


def form_body(schema: Schema, form: FormSpec) -> dict[str, Any]:
    """The ``systemform`` row of a main form."""
    table = schema.table(form.table)
    kinds = {c.logical_name: _KINDS[c.type] for c in table.columns}
    kinds[table.primary.logical_name] = "text"
    for name, kind in _STANDARD_KINDS.items():
        kinds.setdefault(name, kind)
    relationships = {}
    for grid in form.subgrids:
        if grid.lookup:
            child: TableSpec = schema.table(grid.table)
            column = next(c for c in child.lookups if c.logical_name == grid.lookup)
            relationships[grid.name] = relationship_name(child, column)
    return {
        "name": form.name,
        "description": "Installed by the SMS connector",
        "objecttypecode": form.table,
        "type": 2,
        "formactivationstate": 1,
        "formxml": form_xml(form, kinds, relationships),
    }


def _titles(schema: Schema) -> dict[str, str]:
    return {t.logical_name: t.plural_name for t in schema.tables}


def _privileges(role: RoleSpec, live: LiveComponents) -> list[dict[str, Any]]:
    """The role's declared privileges it does not hold (or holds at a lower depth)."""
    held = live.grants.get(live.roles.get(role.name, ""), {})
    wanted = []
    for table, verbs in sorted(role.privileges.items()):
        facts = live.tables.get(table)
        for verb, depth in sorted(verbs.items()):
            name = f"prv{verb}{table}".lower()
            pid = facts.privileges.get(name) if facts else None
            if pid is None or held.get(pid.lower(), -1) >= DEPTHS[depth]:
                continue
            wanted.append(
                {"PrivilegeId": pid, "Depth": depth, "PrivilegeName": f"prv{verb}{table}"}
            )
    return wanted


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowKind:
    """A component stored as one row: its step kind, entity set, key and compared columns."""

    kind: Any
    entity_set: str
    id_column: str
    compared: tuple[str, ...]


VIEW = RowKind("view", "savedqueries", "savedqueryid", ("fetchxml", "layoutxml"))
FORM = RowKind("form", "systemforms", "formid", ("formxml",))
SITEMAP = RowKind("sitemap", "sitemaps", "sitemapid", ("sitemapxml",))


def component_steps(schema: Schema, live: LiveComponents) -> Iterator[Step]:
    """Steps creating or updating the declared components (nothing for what matches)."""
    components = schema.components
    if components is None:
        return
    for view in components.views:
        facts = live.tables.get(view.table)
        body = view_body(view, facts) if facts else None
        current = live.views.get((view.table, view.name))
        yield from _row_step(VIEW, view.name, current, body, table=view.table)
    for form in components.forms:
        current = live.forms.get((form.table, form.name))
        yield from _row_step(FORM, form.name, current, form_body(schema, form), table=form.table)
    if components.app is not None:
        yield from _app_steps(schema, components.app, live)
    for role in components.roles:
        yield from _role_steps(role, live)


def _app_steps(schema: Schema, app: AppSpec, live: LiveComponents) -> Iterator[Step]:
    unique = _sitemap_name(app.unique_name)
    sitemap = {
        "sitemapname": app.name,
        "sitemapnameunique": unique,
        "isappaware": True,
        "sitemapxml": sitemap_xml(app, _titles(schema)),
    }
    yield from _row_step(SITEMAP, unique, live.sitemap, sitemap)
    if live.app is None:
        body = {
            "name": app.name,
            "uniquename": app.unique_name,
            "description": app.description,
            "webresourceid": DEFAULT_APP_ICON,
            "clienttype": 4,
            "formfactor": 1,
            "navigationtype": 0,
        }
        yield Step(
            "create",
            "app",
            app.unique_name,
            path="appmodules",
            body=body,
            detail="with its site map",
        )


def _role_steps(role: RoleSpec, live: LiveComponents) -> Iterator[Step]:
    exists = role.name in live.roles
    if not exists:
        role_body: dict[str, Any] = {"name": role.name, "description": role.description}
        yield Step("create", "role", role.name, path="roles", body=role_body)
    wanted = _privileges(role, live)
    if not exists or wanted:
        count = len(wanted) if exists else sum(len(v) for v in role.privileges.values())
        grants: dict[str, Any] | None = {"Privileges": wanted} if exists else None
        yield Step("create", "privileges", role.name, body=grants, detail=f"{count} privileges")


def _row_step(
    kind: RowKind,
    name: str,
    current: dict[str, Any] | None,
    body: dict[str, Any] | None,
    *,
    table: str | None = None,
) -> Iterator[Step]:
    if current is None:
        yield Step("create", kind.kind, name, table, path=kind.entity_set, body=body)
        return
    if body is None:
        return
    changed = {k: body[k] for k in kind.compared if current.get(k) != body[k]}
    if changed:
        path = odata.entity_path(kind.entity_set, str(current[kind.id_column]))
        detail = ", ".join(sorted(changed))
        yield Step(
            "update", kind.kind, name, table, method="PATCH", path=path, body=changed, detail=detail
        )


# -- sending ----------------------------------------------------------------------------------


def send(client: DataverseClient, schema: Schema, step: Step, solution: str) -> None:
    """Carry out one component step (bodies needing fresh metadata are built now)."""
    components = schema.components
    assert components is not None
    if step.action == "update":
        client.request("PATCH", step.path, body=step.body, solution=solution)
        return
    if step.kind == "view" and step.body is None:
        view = next(v for v in components.views if v.name == step.name)
        facts = _facts(client, view.table)
        if facts is None:
            raise ConfigurationError(f"table {view.table} does not exist for view {view.name}")
        client.request("POST", "savedqueries", body=view_body(view, facts), solution=solution)
    elif step.kind == "app":
        client.request("POST", step.path, body=step.body, solution=solution)
        _link_app(client, components)
    elif step.kind == "role":
        root = _root_unit(client)
        body: dict[str, Any] = dict(step.body or {})
        if root:
            body["businessunitid@odata.bind"] = f"/businessunits({root})"
        client.request("POST", "roles", body=body, solution=solution)
    elif step.kind == "privileges":
        role = next(r for r in components.roles if r.name == step.name)
        live = read_components(client, Components(roles=(role,)))
        wanted = _privileges(role, live)
        if wanted:
            client.call_action(
                "AddPrivilegesRole",
                {"Privileges": wanted},
                bound_to=("roles", live.roles[role.name]),
            )
    else:
        client.request("POST", step.path, body=step.body, solution=solution)


def _link_app(client: DataverseClient, components: Components) -> None:
    """The new app gets its site map, and the app and site map are published."""
    assert components.app is not None
    live = read_components(client, Components(app=components.app))
    if live.app is None or live.sitemap is None:
        return
    app_id, sitemap_id = str(live.app["appmoduleid"]), str(live.sitemap["sitemapid"])
    components_body = [{"@odata.type": "Microsoft.Dynamics.CRM.sitemap", "sitemapid": sitemap_id}]
    client.call_action("AddAppComponents", {"AppId": app_id, "Components": components_body})
    client.publish_xml(
        f"<importexportxml><sitemaps><sitemap>{sitemap_id}</sitemap></sitemaps>"
        f"<appmodules><appmodule>{app_id}</appmodule></appmodules></importexportxml>"
    )


__all__ = ["component_steps", "read_components", "send", "stable_id"]
