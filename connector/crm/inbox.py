"""Conversations read back from Dataverse for agents: folders, threads, records to pick.

Implements :class:`~connector.ports.ConversationReader` and
:class:`~connector.ports.RecordDirectory`. A folder is ONE query of the session activity
table (newest activity first, ``$top``), with the regarding record's name as a formatted
value (``Prefer: odata.include-annotations``); a search narrows it in the same query (the
number's digits, or the name of the regarding contact, lead, account or opportunity through
its single-valued navigation property). A thread is ONE query of the message table by its
session lookup, oldest first. Pure builders make the query strings; the class only sends.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from connector.crm import tables
from connector.crm.conversations import ACCEPTANCE_OPTIONS, DIRECTION_OUTBOUND
from connector.dataverse import odata
from connector.dataverse.client import DataverseClient
from connector.domain.inbox import (
    ConversationSummary,
    Folder,
    MediaFileContent,
    MediaRef,
    RecordMatch,
    ThreadMessage,
)
from connector.domain.record_types import DEFAULT_PHONE_COLUMNS, STANDARD_TABLES
from connector.errors import DataverseNotFoundError, InvalidInputError

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
LOOKUP_TABLE = "@Microsoft.Dynamics.CRM.lookuplogicalname"
REGARDING = "_regardingobjectid_value"
ANNOTATIONS = 'odata.include-annotations="*"'
NAMED_TABLES = ("contact", "lead", "account", "opportunity")
CREATABLE = ("lead", "contact")
_ACCEPTANCE_BY_OPTION = {v: k.value for k, v in ACCEPTANCE_OPTIONS.items()}
_ARCHIVED_BY_OPTION = {v: k for k, v in tables.SESSION_FOLDER_OPTIONS.items()}
_SESSION_SELECT = (
    "activityid",
    tables.SESSION_PHONE,
    tables.SESSION_LAST_MESSAGE,
    tables.SESSION_UNREAD,
    tables.SESSION_ACCEPTANCE,
    tables.SESSION_FOLDER,
    REGARDING,
    tables.SESSION.value(tables.CONFIGURATION_LOOKUP),
)
_NOTE_SELECT = ("annotationid", "filename", "mimetype", "isdocument", "createdon")
_MESSAGE_SELECT = (
    "activityid",
    "createdon",
    tables.MESSAGE_DIRECTION,
    tables.MESSAGE_BODY,
    tables.MESSAGE_FROM,
    tables.MESSAGE_TO,
    tables.MESSAGE_STATUS,
    tables.MESSAGE_FAILURE_CATEGORY,
    tables.MESSAGE_ERROR_CODE,
    tables.MESSAGE_ERROR_TEXT,
    tables.MESSAGE_SEGMENTS,
    tables.MESSAGE_SENT_ON,
    tables.MESSAGE_RECEIVED_ON,
    REGARDING,
)
_NOT_DIGITS = re.compile(r"\D")


def search_filter(query: str) -> odata.Filter:
    """A folder search: the number's digits, or the regarding record's name."""
    text = query.strip()[:100]
    parts = [
        odata.contains(
            f"regardingobjectid_{table}_{tables.SESSION.logical_name}/"
            f"{STANDARD_TABLES[table].name_column}",
            text,
        )
        for table in NAMED_TABLES
    ]
    digits = _NOT_DIGITS.sub("", text)
    if len(digits) >= 3:
        parts.insert(0, odata.contains(tables.SESSION_PHONE, digits))
    return odata.or_(*parts)


def folder_query(folder: Folder, query: str | None, limit: int) -> str:
    """The query string of one folder (newest activity first)."""
    where = odata.eq(
        tables.SESSION_FOLDER, tables.SESSION_FOLDER_OPTIONS[folder is Folder.ARCHIVED]
    )
    if query and query.strip():
        where = odata.and_(where, search_filter(query))
    options = odata.query_options(
        select=_SESSION_SELECT,
        filter=where,
        orderby=[f"{tables.SESSION_LAST_MESSAGE} desc"],
        top=limit,
    )
    return odata.query_string(options)


def thread_query(session_id: str) -> str:
    """The query string of one session's messages (oldest first)."""
    session = uuid.UUID(odata.guid(session_id))
    options = odata.query_options(
        select=_MESSAGE_SELECT,
        filter=odata.eq(tables.MESSAGE.value(tables.SESSION_LOOKUP), session),
        orderby=["createdon asc"],
        expand=[f"{tables.MESSAGE_NOTES}($select={','.join(_NOTE_SELECT)})"],
    )
    return odata.query_string(options)


def _text(row: Mapping[str, Any], column: str) -> str | None:
    value = row.get(column)
    return None if value is None or value == "" else str(value)


def summary_from_row(row: Mapping[str, Any]) -> ConversationSummary:
    """An inbox row from a session row read with annotations."""
    acceptance = row.get(tables.SESSION_ACCEPTANCE)
    folder_option = row.get(tables.SESSION_FOLDER)
    archived = _ARCHIVED_BY_OPTION.get(int(folder_option), False) if folder_option else False
    return ConversationSummary(
        session_id=str(row["activityid"]),
        configuration_id=_text(row, tables.SESSION.value(tables.CONFIGURATION_LOOKUP)),
        phone=_text(row, tables.SESSION_PHONE) or "",
        name=_text(row, REGARDING + FORMATTED),
        regarding_table=_text(row, REGARDING + LOOKUP_TABLE),
        regarding_id=_text(row, REGARDING),
        last_message_at=_text(row, tables.SESSION_LAST_MESSAGE),
        unread=int(row.get(tables.SESSION_UNREAD) or 0),
        acceptance=_ACCEPTANCE_BY_OPTION.get(int(acceptance or 0), "pending"),
        folder=Folder.ARCHIVED if archived else Folder.INBOX,
    )


def message_from_row(row: Mapping[str, Any]) -> ThreadMessage:
    """A thread message from a message row read with annotations."""
    outbound = row.get(tables.MESSAGE_DIRECTION) == DIRECTION_OUTBOUND
    segments = row.get(tables.MESSAGE_SEGMENTS)
    return ThreadMessage(
        id=str(row["activityid"]),
        direction="outbound" if outbound else "inbound",
        body=_text(row, tables.MESSAGE_BODY) or "",
        from_number=_text(row, tables.MESSAGE_FROM) or "",
        to_number=_text(row, tables.MESSAGE_TO) or "",
        status=_text(row, tables.MESSAGE_STATUS + FORMATTED)
        or _text(row, tables.MESSAGE_STATUS)
        or "",
        at=_text(row, tables.MESSAGE_RECEIVED_ON)
        or _text(row, tables.MESSAGE_SENT_ON)
        or _text(row, "createdon"),
        failure_category=_text(row, tables.MESSAGE_FAILURE_CATEGORY + FORMATTED),
        failure_code=_text(row, tables.MESSAGE_ERROR_CODE),
        failure_reason=_text(row, tables.MESSAGE_ERROR_TEXT),
        segments=int(segments) if segments is not None else None,
        regarding_name=_text(row, REGARDING + FORMATTED),
        media=tuple(
            MediaRef(str(note["annotationid"]), str(note.get("filename") or "attachment"),
                     str(note.get("mimetype") or "application/octet-stream"))
            for note in sorted(row.get(tables.MESSAGE_NOTES) or [], key=_note_order)
            if note.get("annotationid") and note.get("isdocument") is not False
        ),
    )  # fmt: skip


def _note_order(note: Mapping[str, Any]) -> tuple[str, str]:
    return (str(note.get("createdon") or ""), str(note.get("filename") or ""))


def record_body(table: str, fields: Mapping[str, str], phone: str) -> dict[str, Any]:
    """The create body of a lead or contact made from a conversation."""
    if table not in CREATABLE:
        raise InvalidInputError(f"cannot create a {table} from a conversation")
    last = (fields.get("lastname") or "").strip() or phone
    body: dict[str, Any] = {"lastname": last[:100], "mobilephone": phone}
    if (first := (fields.get("firstname") or "").strip()) != "":
        body["firstname"] = first[:100]
    if (email := (fields.get("email") or "").strip()) != "":
        body["emailaddress1"] = email[:100]
    if table == "lead":
        body["subject"] = f"Text conversation with {phone}"
    return body


class DataverseInbox:
    """Folders, threads and record look-ups through the Web API client."""

    def __init__(self, client: DataverseClient) -> None:
        self._client = client

    def _get(self, entity_set: str, query: str) -> list[dict[str, Any]]:
        answer = self._client.api.send(
            "GET", odata.identifier(entity_set), query=query, headers={"Prefer": ANNOTATIONS}
        )
        return list((answer.json() or {}).get("value", []))

    def conversations(
        self, folder: Folder, query: str | None, limit: int
    ) -> list[ConversationSummary]:
        """ONE query: the folder's sessions, newest activity first."""
        rows = self._get(tables.SESSION.entity_set, folder_query(folder, query, limit))
        return [summary_from_row(row) for row in rows]

    def note(self, note_id: str) -> MediaFileContent | None:
        """ONE read: an attachment of a message (None: no such note, or a note of anything
        but a message: the page serves message media only)."""
        try:
            row = self._client.retrieve(
                "annotations",
                uuid.UUID(odata.guid(note_id)),
                select=["filename", "mimetype", "documentbody", "objecttypecode"],
            )
        except DataverseNotFoundError:
            return None
        if row.get("objecttypecode") != tables.MESSAGE.logical_name:
            return None
        body = base64.b64decode(str(row.get("documentbody") or ""), validate=False)
        return MediaFileContent(
            str(row.get("filename") or "attachment"),
            str(row.get("mimetype") or "application/octet-stream"),
            body,
        )

    def thread(self, session_id: str) -> list[ThreadMessage]:
        """ONE query: the session's messages, oldest first (a long thread: its first 5000)."""
        rows = self._get(tables.MESSAGE.entity_set, thread_query(session_id))
        return [message_from_row(row) for row in rows]

    def search(self, tables_: Sequence[str], text: str, limit: int) -> list[RecordMatch]:
        """Records whose name or phone contains ``text`` (one query per table)."""
        found: list[RecordMatch] = []
        digits = _NOT_DIGITS.sub("", text)
        for table in tables_:
            shape = STANDARD_TABLES.get(table)
            if shape is None:
                continue
            phones = DEFAULT_PHONE_COLUMNS.get(table, ())
            parts = [odata.contains(shape.name_column, text.strip()[:100])]
            if len(digits) >= 3:
                parts += [odata.contains(column, digits) for column in phones]
            rows = self._client.query(
                shape.entity_set,
                select=[shape.id_column, shape.name_column, *phones],
                filter=odata.or_(*parts),
                top=limit,
            )
            for row in rows:
                phone = next((str(row[c]) for c in phones if row.get(c)), None)
                name = str(row.get(shape.name_column) or "")
                found.append(RecordMatch(table, str(row[shape.id_column]), name, phone))
        return found[:limit]

    def create(self, table: str, fields: Mapping[str, str], phone: str) -> RecordMatch:
        """Create the lead or contact; the new record."""
        body = record_body(table, fields, phone)
        record_id = self._client.create(STANDARD_TABLES[table].entity_set, body)
        name = " ".join(p for p in (body.get("firstname"), body["lastname"]) if p)
        return RecordMatch(table, record_id, name, phone)
