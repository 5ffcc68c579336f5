"""Solution components declared in ``solution_schema/components.yaml``, and their XML.

Views (saved queries), main forms, the model-driven app with its site map, and security roles
with their privileges (``dataverse-web-api.md`` section 13). The YAML names tables and columns
only; this module builds what Dataverse stores: ``fetchxml`` and ``layoutxml`` of a view,
``formxml`` of a form (every tab, section and cell id derived from the form and its position,
so the same declaration always gives the same XML and a second ``apply`` finds nothing to
change), ``sitemapxml`` of the app. Pure: no I/O. Checking the names against the tables is
:func:`connector.schema.spec.component_problems`'s job.
"""

from __future__ import annotations

import uuid
from typing import Literal
from xml.sax.saxutils import quoteattr

from pydantic import BaseModel, ConfigDict, Field

Depth = Literal["Basic", "Local", "Deep", "Global"]
Verb = Literal["Create", "Read", "Write", "Delete", "Append", "AppendTo", "Assign", "Share"]
_NAMESPACE = uuid.UUID("9d3c1f2e-7a41-4c55-8b0e-2f6a1d4c7e93")
ACTIVITY_KEY = "activityid"
DEFAULT_APP_ICON = "953b9fac-1e5e-e611-80d6-00155ded156f"  # the docs' default app icon
CLASS_IDS = {  # community-agreed control class ids (section 13.2)
    "text": "{4273EDBD-AC1D-40D3-9FB2-095C621B552D}",
    "memo": "{E0DECE4B-6FC8-4A8F-A065-082708572369}",
    "lookup": "{270BD3DB-D9AF-4782-9025-509E298DEC0A}",
    "datetime": "{5B773807-9FB2-42DB-97C3-7A91EFF8ADFF}",
    "choice": "{3EF39988-22BB-4F0B-BBBE-64B5A3748AEE}",
    "subgrid": "{E7A81278-8635-4D9E-8D4D-59480B391C5B}",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Model):
    """One filter condition of a view (FetchXML operator names)."""

    column: str
    operator: Literal["eq", "ne", "gt", "ge", "lt", "le", "in", "eq-userid", "last-x-days"]
    value: str | None = None
    values: tuple[str, ...] = ()


class Order(_Model):
    """One sort column of a view."""

    column: str
    descending: bool = False


class ViewSpec(_Model):
    """A public view of one table."""

    name: str = Field(min_length=1, max_length=100)
    table: str
    columns: tuple[str, ...] = Field(min_length=1)
    filter: tuple[Condition, ...] = ()
    order: tuple[Order, ...] = ()


class SectionSpec(_Model):
    """A section of a form: its columns, one per row."""

    name: str
    columns: tuple[str, ...] = Field(min_length=1)


class SubgridSpec(_Model):
    """A subgrid of a form: related rows (through ``lookup`` on ``table``) or all rows."""

    name: str
    label: str
    table: str
    view: str | None = None
    lookup: str | None = None


class FormSpec(_Model):
    """A main form of one table."""

    name: str = Field(min_length=1, max_length=100)
    table: str
    sections: tuple[SectionSpec, ...] = Field(min_length=1)
    subgrids: tuple[SubgridSpec, ...] = ()


class GroupSpec(_Model):
    """A site-map group listing tables."""

    name: str
    tables: tuple[str, ...] = Field(min_length=1)


class AreaSpec(_Model):
    """A site-map area."""

    name: str
    groups: tuple[GroupSpec, ...] = Field(min_length=1)


class AppSpec(_Model):
    """The model-driven app and its site map."""

    name: str = Field(min_length=1, max_length=100)
    unique_name: str
    description: str = ""
    areas: tuple[AreaSpec, ...] = Field(min_length=1)


class RoleSpec(_Model):
    """A security role: table -> privilege verb -> depth."""

    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    privileges: dict[str, dict[Verb, Depth]]


class Components(_Model):
    """Everything ``components.yaml`` declares."""

    views: tuple[ViewSpec, ...] = ()
    forms: tuple[FormSpec, ...] = ()
    app: AppSpec | None = None
    roles: tuple[RoleSpec, ...] = ()

    def view(self, name: str) -> ViewSpec | None:
        """A declared view by name."""
        return next((v for v in self.views if v.name == name), None)


def stable_id(*parts: str) -> str:
    """A GUID derived from ``parts`` (form element ids, the same on every run)."""
    return str(uuid.uuid5(_NAMESPACE, "|".join(parts)))


def fetch_xml(view: ViewSpec, primary_id: str) -> str:
    """The view's query: its columns and the primary key, conditions, order."""
    names = [*view.columns, *([primary_id] if primary_id not in view.columns else [])]
    parts = [f"<attribute name={quoteattr(c)} />" for c in names]
    for order in view.order:
        descending = quoteattr(str(order.descending).lower())
        parts.append(f"<order attribute={quoteattr(order.column)} descending={descending} />")
    if view.filter:
        parts.append('<filter type="and">' + "".join(map(_condition, view.filter)) + "</filter>")
    entity = f"<entity name={quoteattr(view.table)}>{''.join(parts)}</entity>"
    return f'<fetch version="1.0" mapping="logical">{entity}</fetch>'


def _condition(condition: Condition) -> str:
    operator = quoteattr(condition.operator)
    head = f"<condition attribute={quoteattr(condition.column)} operator={operator}"
    if condition.operator == "in":
        values = "".join(f"<value>{v}</value>" for v in condition.values)
        return f"{head}>{values}</condition>"
    if condition.value is None:
        return f"{head} />"
    return f"{head} value={quoteattr(condition.value)} />"


def layout_xml(view: ViewSpec, primary_id: str, primary_name: str, object_type_code: int) -> str:
    """The view's grid: one cell per column; ``object`` is the table's type code (read from
    the environment: it differs between environments for custom tables)."""
    cells = "".join(f'<cell name={quoteattr(c)} width="150" />' for c in view.columns)
    return (
        f'<grid name="resultset" object="{object_type_code}" jump={quoteattr(primary_name)} '
        f'select="1" icon="1" preview="1"><row name="result" id={quoteattr(primary_id)}>'
        f"{cells}</row></grid>"
    )


def _label(text: str) -> str:
    return f'<labels><label description={quoteattr(text)} languagecode="1033" /></labels>'


def form_xml(form: FormSpec, kinds: dict[str, str], relationships: dict[str, str]) -> str:
    """The form: one tab, a section per declared section and subgrid.

    ``kinds`` maps each column to its control kind (text, memo, lookup, datetime, choice);
    ``relationships`` maps a subgrid's name to the relationship it follows.
    """
    sections = [
        _section(form, s.name, [_cell(form, c, kinds.get(c, "text")) for c in s.columns])
        for s in form.sections
    ]
    sections += [
        _section(form, g.label, [_subgrid(form, g, relationships.get(g.name))])
        for g in form.subgrids
    ]
    tab_id = stable_id(form.table, form.name, "tab")
    return (
        f'<form><tabs><tab name="general" id="{{{tab_id}}}" IsUserDefined="1" '
        f'showlabel="true" expanded="true">{_label("General")}<columns><column width="100%">'
        f"<sections>{''.join(sections)}</sections></column></columns></tab></tabs></form>"
    )


def _section(form: FormSpec, name: str, rows: list[str]) -> str:
    section_id = stable_id(form.table, form.name, "section", name)
    key = "s_" + section_id.replace("-", "")[:12]
    return (
        f'<section name="{key}" id="{{{section_id}}}" IsUserDefined="1" showlabel="true" '
        f'showbar="false" columns="1">{_label(name)}<rows>'
        + "".join(f"<row>{r}</row>" for r in rows)
        + "</rows></section>"
    )


def _cell(form: FormSpec, column: str, kind: str) -> str:
    cell_id = stable_id(form.table, form.name, "cell", column)
    return (
        f'<cell id="{{{cell_id}}}">{_label(column)}<control id={quoteattr(column)} '
        f'classid="{CLASS_IDS[kind]}" datafieldname={quoteattr(column)} /></cell>'
    )


def _subgrid(form: FormSpec, grid: SubgridSpec, relationship: str | None) -> str:
    cell_id = stable_id(form.table, form.name, "subgrid", grid.name)
    view_id = "{" + stable_id("view", grid.table, grid.view) + "}" if grid.view else ""
    parameters = (
        f"<TargetEntityType>{grid.table}</TargetEntityType>"
        f"<RelationshipName>{relationship or ''}</RelationshipName>"
        f"<ViewId>{view_id}</ViewId><RecordsPerPage>10</RecordsPerPage>"
        "<EnableViewPicker>false</EnableViewPicker><AutoExpand>Fixed</AutoExpand>"
    )
    return (
        f'<cell id="{{{cell_id}}}" rowspan="6" colspan="1">{_label(grid.label)}'
        f'<control id={quoteattr(grid.name)} classid="{CLASS_IDS["subgrid"]}" '
        f'indicationOfSubgrid="true"><parameters>{parameters}</parameters></control></cell>'
    )


def sitemap_xml(app: AppSpec, titles: dict[str, str]) -> str:
    """The app's site map: areas, groups, a sub-area per table (titled with its plural)."""
    areas = []
    for area in app.areas:
        groups = []
        for group in area.groups:
            subs = "".join(
                f'<SubArea Id="sub_{t}" Entity="{t}"><Titles><Title LCID="1033" '
                f"Title={quoteattr(titles.get(t, t))} /></Titles></SubArea>"
                for t in group.tables
            )
            groups.append(
                f'<Group Id="grp_{_slug(group.name)}" IsProfile="false"><Titles><Title '
                f'LCID="1033" Title={quoteattr(group.name)} /></Titles>{subs}</Group>'
            )
        areas.append(
            f'<Area Id="area_{_slug(area.name)}" ShowGroups="true"><Titles><Title LCID="1033" '
            f"Title={quoteattr(area.name)} /></Titles>{''.join(groups)}</Area>"
        )
    return f"<SiteMap>{''.join(areas)}</SiteMap>"


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower())
