"""Collection reads: ``$select $filter $orderby $top $expand $count``, paging, change tracking.

Paging follows Dataverse: ``Prefer: odata.maxpagesize`` (default and maximum 5000) yields an
``@odata.nextLink`` carrying an opaque ``$skiptoken`` (a paging cookie), ``$top`` is ignored
when a page size is asked for, ``$skip`` is refused, ``@odata.count`` is capped at 5000.
``Prefer: odata.track-changes`` answers with an ``@odata.deltaLink`` whose ``$deltatoken`` is
the store's row version; following it returns changed rows then ``$deletedEntity`` tombstones.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote, urlencode

from connector.emulators.dataverse.changes import changes
from connector.emulators.dataverse.fetchxml import run_fetch
from connector.emulators.dataverse.metadata import STRING_TYPES, EntityDef
from connector.emulators.dataverse.protocol import EmuRequest, EmuResponse, bad_request
from connector.emulators.dataverse.query import (
    ExpandItem,
    parse_expand,
    parse_filter,
    parse_orderby,
    to_sql,
)
from connector.emulators.dataverse.records import Records
from connector.emulators.dataverse.schema import Schema
from connector.emulators.dataverse.store import q, table_name
from connector.emulators.dataverse.values import row_to_json, select_names

MAX_PAGE = 5000
URL_SAFE = "$,()'="
COUNT_CAP = 5000


def column_resolver(schema: Schema, entity: EntityDef) -> Any:
    """Map a filter/orderby property to its quoted column (400 when undeclared)."""

    def column_of(name: str) -> str:
        if "/" in name:
            return _navigation_path(schema, entity, name)
        return q(schema.attribute(entity, name).logical_name)

    return column_of


def _navigation_path(schema: Schema, entity: EntityDef, path: str) -> str:
    """``primarycontactid/fullname``: the related row's column as a correlated subquery."""
    nav_name, _, prop = path.partition("/")
    nav = schema.single_navs(entity.logical_name).get(nav_name)
    if nav is None or len(nav.targets) != 1 or "/" in prop:
        raise bad_request(f"The navigation path '{path}' is not supported.")
    target = schema.entity(nav.targets[0])
    attr = schema.attribute(target, prop)
    column = q(attr.logical_name)
    collate = " COLLATE NOCASE" if attr.attribute_type in STRING_TYPES else ""
    return (
        f"(SELECT related.{column} FROM {table_name(target)} AS related WHERE "
        f"related.{q(target.primary_id)} = {table_name(entity)}.{q(nav.attribute)}){collate}"
    )


def wants_annotations(req: EmuRequest) -> bool:
    """Whether ``Prefer: odata.include-annotations`` asks for lookup/formatted values."""
    return "odata.include-annotations" in req.prefer()


def list_rows(
    records: Records,
    req: EmuRequest,
    entity: EntityDef,
    scope: tuple[str, list[Any]] | None = None,
) -> EmuResponse:
    """``GET <entityset>`` with query options; ``scope`` narrows it (related rows)."""
    if "$skip" in req.query:
        raise bad_request("The query parameter $skip is not supported", "0x80060888")
    if "$deltatoken" in req.query or "odata.track-changes" in req.prefer():
        return changes(records, req, entity)
    if "fetchXml" in req.query:
        return run_fetch(records, req, entity)
    schema = records.schema
    names = select_names(schema, entity, req.query.get("$select"))
    where, params = _where(schema, entity, req, scope)
    order = _order_sql(schema, entity, req.query.get("$orderby"))
    limit, paged, headers = _page_plan(req)
    offset = _decode_skiptoken(req.query.get("$skiptoken"))
    expands = parse_expand(req.query["$expand"]) if req.query.get("$expand") else []
    sql = (
        f"SELECT {_columns(schema, entity, names, expands)} FROM {table_name(entity)} "
        f"WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"
    )
    rows = records.store.select(sql, [*params, limit + 1, offset])
    annotate = wants_annotations(req)
    body: dict[str, Any] = {"@odata.context": f"{req.api_root}/$metadata#{entity.entity_set}"}
    if req.query.get("$count", "").lower() == "true":
        inner = f"SELECT 1 FROM {table_name(entity)} WHERE {where} LIMIT ?"
        body["@odata.count"] = records.store.scalar(
            f"SELECT COUNT(*) FROM ({inner})", [*params, COUNT_CAP]
        )
    body["value"] = [
        expand_row(
            records,
            req,
            entity,
            row,
            row_to_json(schema, entity, row, names, annotate, display=records.display_name),
            expands=expands,
        )
        for row in rows[:limit]
    ]
    if paged and len(rows) > limit:
        body["@odata.nextLink"] = _next_link(req, entity, offset + limit, limit)
    return EmuResponse.of_json(200, body, headers)


def _where(
    schema: Schema, entity: EntityDef, req: EmuRequest, scope: tuple[str, list[Any]] | None
) -> tuple[str, list[Any]]:
    params: list[Any] = []
    where = "1=1"
    if req.query.get("$filter"):
        where = to_sql(parse_filter(req.query["$filter"]), column_resolver(schema, entity), params)
    if scope is not None:
        where = f"({where}) AND {scope[0]}"
        params.extend(scope[1])
    return where, params


def _page_plan(req: EmuRequest) -> tuple[int, bool, dict[str, str]]:
    """Rows per response, whether more pages get a nextLink, and Preference-Applied.

    ``odata.maxpagesize`` wins over ``$top`` (which is then ignored, as documented).
    """
    prefer = req.prefer()
    applied = []
    top = _int_option(req, "$top")
    limit, paged = (MAX_PAGE, True) if top is None else (min(top, MAX_PAGE), False)
    if "odata.maxpagesize" in prefer:
        limit, paged = min(max(_int(prefer["odata.maxpagesize"]), 1), MAX_PAGE), True
        applied.append(f"odata.maxpagesize={limit}")
    if wants_annotations(req):
        applied.append('odata.include-annotations="*"')
    return limit, paged, {"Preference-Applied": ", ".join(applied)} if applied else {}


def count_rows(records: Records, entity: EntityDef) -> EmuResponse:
    """``GET <entityset>/$count``: a bare number."""
    total = records.store.scalar(f"SELECT COUNT(*) FROM {table_name(entity)}")
    return EmuResponse(
        200,
        {"Content-Type": "text/plain", "OData-Version": "4.0"},
        str(min(int(total), COUNT_CAP)).encode(),
    )


def expand_row(
    records: Records,
    req: EmuRequest,
    entity: EntityDef,
    row: dict[str, Any],
    body: dict[str, Any],
    *,
    expands: list[ExpandItem],
) -> dict[str, Any]:
    """Add single- and collection-valued ``$expand`` results to one row's JSON."""
    schema = records.schema
    singles = schema.single_navs(entity.logical_name)
    collections = schema.collection_navs(entity.logical_name)
    for item in expands:
        if item.nav in singles:
            nav = singles[item.nav]
            target_name = row.get(f"{nav.attribute}__type")
            related = None
            if row.get(nav.attribute) and target_name in nav.targets:
                target = schema.entity(str(target_name))
                found = records.get(target, str(row[nav.attribute]))
                if found is not None:
                    names = select_names(schema, target, item.options.get("$select"))
                    related = row_to_json(schema, target, found, names)
            body[item.nav] = related
        elif item.nav in collections:
            body[item.nav] = _expand_collection(records, entity, row, item)
        elif item.nav in schema.many.get(entity.logical_name, {}):
            body[item.nav] = _expand_many(records, entity, row, item)
        else:
            raise bad_request(
                f"Could not find a property named '{item.nav}' on type "
                f"'Microsoft.Dynamics.CRM.{entity.logical_name}'."
            )
    return body


def _expand_collection(
    records: Records, entity: EntityDef, row: dict[str, Any], item: ExpandItem
) -> list[dict[str, Any]]:
    schema = records.schema
    nav = schema.collection_navs(entity.logical_name)[item.nav]
    child = schema.entity(nav.entity)
    params: list[Any] = [row[entity.primary_id]]
    where = f"{q(nav.attribute)} = ?"
    if item.options.get("$filter"):
        extra = to_sql(
            parse_filter(item.options["$filter"]), column_resolver(schema, child), params
        )
        where += f" AND {extra}"
    order = _order_sql(schema, child, item.options.get("$orderby"))
    limit = _int(item.options.get("$top", str(MAX_PAGE)))
    rows = records.store.select(
        f"SELECT * FROM {table_name(child)} WHERE {where} ORDER BY {order} LIMIT ?",
        [*params, limit],
    )
    names = select_names(schema, child, item.options.get("$select"))
    return [row_to_json(schema, child, found, names) for found in rows]


def _expand_many(
    records: Records, entity: EntityDef, row: dict[str, Any], item: ExpandItem
) -> list[dict[str, Any]]:
    schema = records.schema
    nav = schema.many[entity.logical_name][item.nav]
    target = schema.entity(nav.target)
    rows = records.store.select(
        f"SELECT * FROM {table_name(target)} WHERE {q(target.primary_id)} IN (SELECT "
        f"{q(nav.target_column)} FROM {table_name(nav.intersect)} WHERE {q(nav.self_column)} = ?)"
        f" ORDER BY {q(target.primary_id)}",
        [row[entity.primary_id]],
    )
    names = select_names(schema, target, item.options.get("$select"))
    return [row_to_json(schema, target, found, names) for found in rows]


def _columns(
    schema: Schema, entity: EntityDef, names: list[str] | None, expands: list[ExpandItem]
) -> str:
    """Only the storage columns a response needs (``*`` without ``$select``)."""
    if names is None:
        return "*"
    navs = schema.single_navs(entity.logical_name)
    wanted = [*names, "versionnumber"]
    wanted += [navs[item.nav].attribute for item in expands if item.nav in navs]
    columns: list[str] = []
    for name in dict.fromkeys(wanted):
        columns.append(q(name))
        if entity.attributes[name].is_lookup:
            columns.append(q(f"{name}__type"))
    return ", ".join(columns)


def _order_sql(schema: Schema, entity: EntityDef, text: str | None) -> str:
    column_of = column_resolver(schema, entity)
    parts = [
        f"{column_of(name)} {'DESC' if desc else 'ASC'}" for name, desc in parse_orderby(text or "")
    ]
    parts.append(f"{q(entity.primary_id)} ASC")
    return ", ".join(parts)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise bad_request(f"'{text}' is not a valid number.") from None


def _int_option(req: EmuRequest, name: str) -> int | None:
    return _int(req.query[name]) if req.query.get(name) else None


def _decode_skiptoken(token: str | None) -> int:
    if not token:
        return 0
    try:
        cookie = token.split('pagingcookie="', 1)[1].split('"', 1)[0]
        return int(json.loads(base64.urlsafe_b64decode(cookie.encode()))["offset"])
    except (IndexError, ValueError, KeyError) as exc:
        raise bad_request("The $skiptoken is not valid.") from exc


def _next_link(req: EmuRequest, entity: EntityDef, offset: int, limit: int) -> str:
    page = offset // max(limit, 1) + 1  # opaque to clients; they must echo it unchanged
    cookie = base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()
    token = f'<cookie pagenumber="{page}" pagingcookie="{cookie}" istracking="False" />'
    query = {k: v for k, v in req.query.items() if k != "$skiptoken"}
    query["$skiptoken"] = token
    return f"{req.api_root}/{entity.entity_set}?{urlencode(query, safe=URL_SAFE, quote_via=quote)}"
