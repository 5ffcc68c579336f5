"""Entity-set and single-row endpoints: create, retrieve, update/upsert, delete, properties.

Status codes and headers as documented: create 204 + ``OData-EntityId`` (or 201 + body and
``Preference-Applied`` without ``OData-EntityId`` for ``return=representation``); PATCH with
``If-Match: *`` updates or 404s, without it upserts (204, or 201/200 with a body);
``If-None-Match: *`` gives 412 when the row exists; a stale ``If-Match`` ETag gives 412;
``If-None-Match: W/"n"`` on GET gives 304.
"""

from __future__ import annotations

from typing import Any

from connector.emulators.dataverse.addressing import Address, key_text, parse_key
from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.metadata import EntityDef
from connector.emulators.dataverse.protocol import EmuRequest, EmuResponse, bad_request, not_found
from connector.emulators.dataverse.query import parse_expand
from connector.emulators.dataverse.reads import expand_row, wants_annotations
from connector.emulators.dataverse.records import Records
from connector.emulators.dataverse.values import etag_matches, row_to_json, select_names

VERSION_MISMATCH = (
    "The version of the existing record doesn't match the RowVersion property provided."
)


def entity_url(req: EmuRequest, entity: EntityDef, record_id: str) -> str:
    """Absolute URL of a row."""
    return f"{req.api_root}/{entity.entity_set}({record_id})"


def represent(
    records: Records, req: EmuRequest, entity: EntityDef, row: dict[str, Any], status: int
) -> EmuResponse:
    """A row as a response body with ``@odata.context`` and the ``ETag`` header."""
    schema = records.schema
    names = select_names(schema, entity, req.query.get("$select"))
    body = row_to_json(
        schema, entity, row, names, wants_annotations(req), display=records.display_name
    )
    selected = f"({','.join(names)})" if req.query.get("$select") and names else ""
    context = f"{req.api_root}/$metadata#{entity.entity_set}{selected}/$entity"
    body = {"@odata.context": context, **body}
    headers = {"ETag": body["@odata.etag"]}
    applied = [] if req.method == "GET" else ["return=representation"]
    if wants_annotations(req):
        applied.append('odata.include-annotations="*"')
    if applied:
        headers["Preference-Applied"] = ", ".join(applied)
    return EmuResponse.of_json(status, body, headers)


def wants_body(req: EmuRequest) -> bool:
    """``Prefer: return=representation``."""
    return req.prefer().get("return") == "representation"


def create(records: Records, req: EmuRequest, entity: EntityDef) -> EmuResponse:
    """``POST <entityset>``."""
    row = records.create(entity, req.json(), content_ids=req.content_ids)
    if wants_body(req):
        return represent(records, req, entity, row, 201)
    url = entity_url(req, entity, str(row[entity.primary_id]))
    return EmuResponse.empty(204, {"OData-EntityId": url})


def retrieve(records: Records, req: EmuRequest, entity: EntityDef, key: str) -> EmuResponse:
    """``GET <entityset>(<key>)``."""
    address = parse_key(entity, key)
    row = records.find(entity, address)
    if row is None:
        raise _missing(entity, address)
    expand = req.query.get("$expand")
    tag = req.header("if-none-match")
    conditional = tag and tag != "null" and not expand and not wants_annotations(req)
    if conditional and etag_matches(str(tag), row["versionnumber"]):
        return EmuResponse.empty(304, {"ETag": f'W/"{row["versionnumber"]}"'})
    response = represent(records, req, entity, row, 200)
    if expand:
        body = response.json()
        response = EmuResponse.of_json(
            200,
            expand_row(records, req, entity, row, body, expands=parse_expand(expand)),
            response.headers,
        )
    return response


def patch(records: Records, req: EmuRequest, entity: EntityDef, key: str) -> EmuResponse:
    """``PATCH <entityset>(<key>)``: update, or upsert without ``If-Match``."""
    address = parse_key(entity, key)
    body = req.json()
    with records.store.transaction():
        row = records.find(entity, address)
        if_match = req.header("if-match")
        if_none = req.header("if-none-match")
        if row is not None and if_none and etag_matches(if_none, row["versionnumber"]):
            raise EmulatorRequestError(
                412, "0x80040237", "A record with matching key values already exists."
            )
        if row is None and if_match:
            raise _missing(entity, address)
        if row is not None and if_match and not etag_matches(if_match, row["versionnumber"]):
            raise EmulatorRequestError(412, "0x80060882", VERSION_MISMATCH)
        if row is not None:
            for name in address.alternate or {}:
                body.pop(name, None)
            row = records.update(entity, row, body, req.content_ids)
            status = 200
        else:
            defaults = dict(address.alternate or {})
            if address.record_id:
                defaults[entity.primary_id] = address.record_id
            row = records.create(entity, body, defaults, req.content_ids)
            status = 201
    if wants_body(req):
        return represent(records, req, entity, row, status)
    if address.alternate:
        url = f"{req.api_root}/{entity.entity_set}({key_text(address.alternate)})"
    else:
        url = entity_url(req, entity, str(row[entity.primary_id]))
    return EmuResponse.empty(204, {"OData-EntityId": url})


def delete(records: Records, req: EmuRequest, entity: EntityDef, key: str) -> EmuResponse:
    """``DELETE <entityset>(<key>)``."""
    address = parse_key(entity, key)
    with records.store.transaction():
        row = records.find(entity, address)
        if row is None:
            raise _missing(entity, address)
        if_match = req.header("if-match")
        if if_match and not etag_matches(if_match, row["versionnumber"]):
            raise EmulatorRequestError(412, "0x80060882", VERSION_MISMATCH)
        records.delete(entity, row)
    return EmuResponse.empty(204)


def property_op(
    records: Records, req: EmuRequest, entity: EntityDef, key: str, prop: str
) -> EmuResponse:
    """``GET/PUT/DELETE <entityset>(<key>)/<property>`` for one column."""
    address = parse_key(entity, key)
    row = records.find(entity, address)
    if row is None:
        raise _missing(entity, address)
    attr = records.schema.attribute(entity, prop)
    if req.method == "GET":
        value = row_to_json(records.schema, entity, row, [attr.logical_name])
        name = f"_{attr.logical_name}_value" if attr.is_lookup else attr.logical_name
        context = f"{req.api_root}/$metadata#{entity.entity_set}({row[entity.primary_id]})/{prop}"
        return EmuResponse.of_json(200, {"@odata.context": context, "value": value[name]})
    if req.method == "PUT":
        records.update(entity, row, {attr.logical_name: req.json().get("value")})
    elif req.method == "DELETE":
        records.update(entity, row, {attr.logical_name: None})
    else:
        raise EmulatorRequestError(
            405, "0x80060888", f"The HTTP method '{req.method}' is not allowed."
        )
    return EmuResponse.empty(204)


def reference_op(
    records: Records, req: EmuRequest, entity: EntityDef, key: str, nav: str
) -> EmuResponse:
    """``PUT/DELETE <entityset>(<key>)/<single nav>/$ref``."""
    address = parse_key(entity, key)
    row = records.find(entity, address)
    if row is None:
        raise _missing(entity, address)
    navs = records.schema.single_navs(entity.logical_name)
    if nav not in navs:
        raise bad_request(f"Could not find a navigation property named '{nav}'.")
    if req.method == "PUT":
        target = req.json().get("@odata.id")
        records.update(entity, row, {f"{nav}@odata.bind": target}, req.content_ids)
    elif req.method == "DELETE":
        records.update(entity, row, {f"{nav}@odata.bind": None})
    else:
        raise EmulatorRequestError(
            405, "0x80060888", f"The HTTP method '{req.method}' is not allowed."
        )
    return EmuResponse.empty(204)


def _missing(entity: EntityDef, address: Address) -> EmulatorRequestError:
    if address.record_id is not None:
        return not_found(entity.logical_name, address.record_id)
    return EmulatorRequestError(
        404,
        "0x80040217",
        f"A record with the specified key values does not exist in {entity.logical_name} entity",
    )
