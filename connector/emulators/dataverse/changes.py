"""Change tracking: ``Prefer: odata.track-changes``, delta links, ``$deletedEntity`` tombstones.

The first request returns every row and an ``@odata.deltaLink`` whose ``$deltatoken`` is the
store's row version (plus a timestamp, like Dataverse's ``919042!08/22/2017 08:10:44``).
Following it returns rows written since, ordered by version, then tombstones of deleted rows.
Pages follow ``odata.maxpagesize`` (``@odata.nextLink``); only the last page carries the
tombstones and the new delta link. ``$filter``, ``$orderby``, ``$expand`` and ``$top`` are
refused as Dataverse refuses them; a token older than the 7-day retention is refused (the
client must resynchronise fully).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from connector.emulators.dataverse.metadata import EntityDef
from connector.emulators.dataverse.protocol import EmuRequest, EmuResponse, bad_request
from connector.emulators.dataverse.records import Records
from connector.emulators.dataverse.store import table_name
from connector.emulators.dataverse.values import row_to_json, select_names

REFUSED = ("$filter", "$orderby", "$expand", "$top")
MAX_PAGE = 5000
URL_SAFE = "$,()'="
STAMP = "%m/%d/%Y %H:%M:%S"
RETENTION_DAYS = 7  # organization.ExpireChangeTrackingInDays default


def changes(records: Records, req: EmuRequest, entity: EntityDef) -> EmuResponse:
    """Answer a change-tracking request (initial, delta, or a following page)."""
    for option in REFUSED:
        if option in req.query:
            raise bad_request(
                f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.'
            )
    if not entity.change_tracking:
        raise bad_request(
            f"Entity: {entity.logical_name} is not enabled for change tracking.", "0x80048532"
        )
    token = req.query.get("$deltatoken")
    since, upto, offset = _position(records, req, token)
    size = _page_size(req)
    rows = records.store.select(
        f"SELECT * FROM {table_name(entity)} WHERE versionnumber > ? AND versionnumber <= ? "
        "ORDER BY versionnumber LIMIT ? OFFSET ?",
        [since, upto, size + 1, offset],
    )
    names = select_names(records.schema, entity, req.query.get("$select"))
    value: list[dict[str, Any]] = [
        row_to_json(records.schema, entity, row, names) for row in rows[:size]
    ]
    context_root = f"{req.api_root}/$metadata#{entity.entity_set}"
    body: dict[str, Any] = {"@odata.context": context_root + ("/$delta" if token else "")}
    headers = {"Preference-Applied": "odata.track-changes"}
    if "odata.maxpagesize" in req.prefer():
        headers["Preference-Applied"] += f", odata.maxpagesize={size}"
    if len(rows) > size:
        cursor = {"since": since, "upto": upto, "offset": offset + size}
        skiptoken = base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode()
        body["value"] = value
        body["@odata.nextLink"] = _link(req, entity, "$skiptoken", skiptoken)
        return EmuResponse.of_json(200, body, headers)
    if token:
        for record_id in records.store.tombstones(entity, since, upto):
            value.append(
                {
                    "@odata.context": f"{context_root}/$deletedEntity",
                    "id": record_id,
                    "reason": "deleted",
                }
            )
    body["value"] = value
    stamp = datetime.now(UTC).strftime(STAMP)
    body["@odata.deltaLink"] = _link(req, entity, "$deltatoken", f"{upto}!{stamp}")
    return EmuResponse.of_json(200, body, headers)


def _position(records: Records, req: EmuRequest, token: str | None) -> tuple[int, int, int]:
    skiptoken = req.query.get("$skiptoken")
    if skiptoken:
        try:
            cursor = json.loads(base64.urlsafe_b64decode(skiptoken.encode()))
            return int(cursor["since"]), int(cursor["upto"]), int(cursor["offset"])
        except (ValueError, KeyError) as exc:
            raise bad_request("The $skiptoken is not valid.") from exc
    if not token:
        return 0, records.store.current_version(), 0
    version, _, stamp = token.partition("!")
    try:
        since = int(version)
        issued = datetime.strptime(stamp, STAMP).replace(tzinfo=UTC) if stamp else None
    except ValueError:
        raise bad_request("The $deltatoken is not valid.") from None
    if issued is not None and datetime.now(UTC) - issued > timedelta(days=RETENTION_DAYS):
        raise bad_request(
            f"The delta token has expired: changes are kept for {RETENTION_DAYS} days. "
            "Run a full synchronization."
        )
    return since, records.store.current_version(), 0


def _page_size(req: EmuRequest) -> int:
    try:
        return min(max(int(req.prefer().get("odata.maxpagesize", MAX_PAGE)), 1), MAX_PAGE)
    except ValueError:
        raise bad_request("odata.maxpagesize must be a number.") from None


def _link(req: EmuRequest, entity: EntityDef, name: str, value: str) -> str:
    query = {k: v for k, v in req.query.items() if k not in ("$deltatoken", "$skiptoken")}
    if name == "$skiptoken" and "$deltatoken" in req.query:
        query["$deltatoken"] = req.query["$deltatoken"]
    query[name] = value
    return f"{req.api_root}/{entity.entity_set}?{urlencode(query, safe=URL_SAFE, quote_via=quote)}"
