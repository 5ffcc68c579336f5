"""Messages read back from Dataverse for ``connector export messages``.

Implements :class:`~connector.ports.MessageArchive`: one paged query of the message activity
table, oldest first, with formatted values (status and direction labels, the regarding
record's name and table) asked for with ``Prefer: odata.include-annotations``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from connector.crm import tables
from connector.dataverse import odata
from connector.dataverse.client import DataverseClient
from connector.dataverse.paging import follow_pages
from connector.ports import ExportRow

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
LOOKUP_TABLE = "@Microsoft.Dynamics.CRM.lookuplogicalname"
SESSION_VALUE = "_smsc_sessionid_value"
REGARDING_VALUE = "_regardingobjectid_value"
_SELECT = (
    "activityid",
    "createdon",
    "smsc_from",
    "smsc_to",
    "smsc_status",
    "smsc_body",
    "smsc_direction",
    SESSION_VALUE,
    REGARDING_VALUE,
)
_NAMES = {"contact": "fullname", "lead": "fullname", "account": "name", "opportunity": "name"}
_EXPAND = [
    f"regardingobjectid_{table}_{tables.MESSAGE.logical_name}($select={column})"
    for table, column in _NAMES.items()
]
_PREFER = 'odata.include-annotations="*",odata.maxpagesize=1000'


def _text(row: Mapping[str, Any], column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value)


def _expanded_name(row: Mapping[str, Any]) -> str:
    for table, column in _NAMES.items():
        related = row.get(f"regardingobjectid_{table}_{tables.MESSAGE.logical_name}")
        if isinstance(related, Mapping) and related.get(column):
            return str(related[column])
    return ""


def export_row(row: Mapping[str, Any]) -> ExportRow:
    """An :class:`ExportRow` from a message row read with annotations."""
    created = _text(row, "createdon")
    day, _, clock = created.partition("T")
    return ExportRow(
        message_id=_text(row, "activityid"),
        thread_id=_text(row, SESSION_VALUE),
        created=day,
        time=clock.removesuffix("Z"),
        full_name=_text(row, REGARDING_VALUE + FORMATTED) or _expanded_name(row),
        from_number=_text(row, "smsc_from"),
        to_number=_text(row, "smsc_to"),
        status=_text(row, "smsc_status" + FORMATTED) or _text(row, "smsc_status"),
        message=_text(row, "smsc_body"),
        direction=_text(row, "smsc_direction" + FORMATTED) or _text(row, "smsc_direction"),
        regarding_type=_text(row, REGARDING_VALUE + LOOKUP_TABLE),
        regarding_id=_text(row, REGARDING_VALUE),
    )


class DataverseMessageArchive:
    """Reads messages for export through the Web API client."""

    def __init__(self, client: DataverseClient) -> None:
        self._client = client

    def messages(
        self, *, since: datetime | None = None, session_id: str | None = None
    ) -> Iterator[ExportRow]:
        """Messages created at or after ``since`` and/or of one session, oldest first."""
        parts = []
        if since is not None:
            parts.append(odata.ge("createdon", since))
        if session_id is not None:
            parts.append(odata.eq(SESSION_VALUE, uuid.UUID(odata.guid(session_id))))
        options = odata.query_options(
            select=_SELECT,
            filter=odata.and_(*parts) if parts else None,
            orderby=["createdon asc"],
            expand=_EXPAND,
        )
        path = odata.identifier(tables.MESSAGE.entity_set)
        for body in follow_pages(self._client.api, path, odata.query_string(options), _PREFER):
            for row in body.get("value", []):
                yield export_row(row)
