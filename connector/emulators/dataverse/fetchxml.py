"""``GET <entityset>?fetchXml=...``: the basic FetchXML subset, translated to SQL.

Covers ``<attribute>``/``<all-attributes>``, nested ``<filter type="and|or">`` with
``<condition>`` (eq ne gt ge lt le like not-like begins-with ends-with null not-null in
not-in, eq-userid for the emulator's one caller, last-x-days), ``<order>``, ``top``, and
``page``/``count`` paging answered with the ``fetchxmlpagingcookie`` and ``morerecords``
annotations (both absent on the last page).
Null values are omitted from rows, as FetchXML results do. ``link-entity`` is not supported
(501).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.metadata import EntityDef
from connector.emulators.dataverse.protocol import EmuRequest, EmuResponse, bad_request
from connector.emulators.dataverse.records import Records
from connector.emulators.dataverse.seed import SEED_USER_ID
from connector.emulators.dataverse.store import q, table_name
from connector.emulators.dataverse.values import row_to_json

_COMPARE = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_LIKE = {"like": "{}", "not-like": "{}", "begins-with": "{}%", "ends-with": "%{}"}
COOKIE = "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"
MORE = "@Microsoft.Dynamics.CRM.morerecords"


def run_fetch(records: Records, req: EmuRequest, entity: EntityDef) -> EmuResponse:
    """Answer one FetchXML page."""
    try:
        fetch = ET.fromstring(req.query["fetchXml"])  # noqa: S314 - loopback test server, no DTDs
    except ET.ParseError as exc:
        raise bad_request(f"Invalid FetchXML: {exc}.", "0x80041102") from exc
    node = fetch.find("entity")
    if fetch.tag != "fetch" or node is None or node.get("name") != entity.logical_name:
        raise bad_request("The FetchXML entity must match the entity set.", "0x80041102")
    if node.find("link-entity") is not None:
        raise EmulatorRequestError(
            501, "0x8006088b", "link-entity is not supported by the emulator."
        )
    names = _attributes(records, entity, node)
    params: list[Any] = []
    where = " AND ".join(_filter(entity, f, params) for f in node.findall("filter")) or "1=1"
    order = [
        f"{q(_column(entity, o.get('attribute', '')))} "
        f"{'DESC' if o.get('descending') == 'true' else 'ASC'}"
        for o in node.findall("order")
    ] + [f"{q(entity.primary_id)} ASC"]
    count = int(fetch.get("count") or fetch.get("top") or 5000)
    page = int(fetch.get("page") or 1)
    rows = records.store.select(
        f"SELECT * FROM {table_name(entity)} WHERE {where} ORDER BY {', '.join(order)} "
        "LIMIT ? OFFSET ?",
        [*params, count + 1, (page - 1) * count],
    )
    more = len(rows) > count and not fetch.get("top")
    value = []
    for row in rows[:count]:
        shaped = row_to_json(records.schema, entity, row, names)
        value.append({k: v for k, v in shaped.items() if v is not None})
    body: dict[str, Any] = {"@odata.context": f"{req.api_root}/$metadata#{entity.entity_set}"}
    if more:
        last = rows[count - 1][entity.primary_id]
        inner = f'<cookie page="{page}"><{entity.primary_id} last="{last}" /></cookie>'
        cookie = quote(quote(inner, safe=""), safe="")
        body[COOKIE] = (
            f'<cookie pagenumber="{page + 1}" pagingcookie="{cookie}" istracking="False" />'
        )
        body[MORE] = True
    body["value"] = value
    return EmuResponse.of_json(200, body)


def _attributes(records: Records, entity: EntityDef, node: ET.Element) -> list[str] | None:
    if node.find("all-attributes") is not None:
        return None
    names = [_column(entity, a.get("name", "")) for a in node.findall("attribute")]
    if entity.primary_id not in names:
        names.append(entity.primary_id)
    return names


def _column(entity: EntityDef, name: str) -> str:
    if name not in entity.attributes:
        raise bad_request(
            f"'{entity.logical_name}' entity doesn't contain attribute with Name = '{name}'.",
            "0x80041103",
        )
    return name


def _filter(entity: EntityDef, node: ET.Element, params: list[Any]) -> str:
    joiner = " OR " if node.get("type") == "or" else " AND "
    parts = [_condition(entity, c, params) for c in node.findall("condition")]
    parts += [_filter(entity, f, params) for f in node.findall("filter")]
    return "(" + joiner.join(parts or ["1=1"]) + ")"


def _condition(entity: EntityDef, node: ET.Element, params: list[Any]) -> str:
    column = q(_column(entity, node.get("attribute", "")))
    operator = node.get("operator", "")
    value = node.get("value")
    if operator == "eq-userid":  # the caller: the emulator's one application user
        params.append(SEED_USER_ID)
        return f"({column} = ?)"
    if operator in ("null", "not-null"):
        return f"({column} IS {'NOT ' if operator == 'not-null' else ''}NULL)"
    if operator in ("in", "not-in"):
        values = [v.text or "" for v in node.findall("value")]
        params.extend(_typed(entity, node, v) for v in values)
        marks = ", ".join("?" for _ in values) or "NULL"
        return f"({column} {'NOT ' if operator == 'not-in' else ''}IN ({marks}))"
    if value is None:
        raise bad_request(f"The condition on {column} needs a value.", "0x80041102")
    if operator == "last-x-days":
        since = datetime.now(tz=UTC) - timedelta(days=int(value))
        params.append(since.strftime("%Y-%m-%dT%H:%M:%SZ"))
        return f"({column} >= ?)"
    if operator in _LIKE:
        params.append(_LIKE[operator].format(value))
        return f"({column} {'NOT ' if operator == 'not-like' else ''}LIKE ?)"
    if operator not in _COMPARE:
        raise EmulatorRequestError(501, "0x8006088b", f"Operator '{operator}' is not supported.")
    params.append(_typed(entity, node, value))
    return f"({column} {_COMPARE[operator]} ?)"


def _typed(entity: EntityDef, node: ET.Element, value: str) -> Any:
    kind = entity.attributes[node.get("attribute", "")].attribute_type
    if kind in ("Integer", "BigInt", "Picklist", "State", "Status"):
        return int(value)
    if kind in ("Decimal", "Double", "Money"):
        return float(value)
    if kind == "Boolean":
        return 1 if value.lower() in ("1", "true") else 0
    return value.lower() if kind in ("Lookup", "Customer", "Owner", "Uniqueidentifier") else value
