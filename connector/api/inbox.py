"""Conversation reads and marks: ``GET /api/v1/sessions?folder=&q=``,
``GET /api/v1/sessions/{id}/messages``, ``POST /api/v1/sessions/{id}/read|unread|archive|
unarchive|create-record``.

API key required; the messages page uses the same service. A folder costs one Dataverse
request and a thread one (reading it through the API does not mark it read: ``POST .../read``
does). Marks update the session activity's folder and unread count in Dataverse, so Dynamics
views show the same state. ``create-record`` creates a lead or contact (only the tables the
sender's allow-create-to permits) with the conversation's number and re-links the
conversation to it. Errors are problem+json: unknown session 404 ``not_found``, a table the
sender may not create 422 ``create_not_allowed``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from connector.api.deps import InboxDep, require_connector_key
from connector.domain.conversation import SessionState
from connector.domain.inbox import ConversationSummary, Folder, ThreadMessage
from connector.services.inbox import InboxService


class ConversationView(BaseModel):
    """One conversation in a folder."""

    session_id: str
    configuration_id: str | None
    phone: str
    name: str = Field(description="The regarding record's name, else the number")
    regarding: str | None = Field(description="table:id of the regarding record")
    last_message_at: str | None
    unread: int
    acceptance: str
    folder: Literal["inbox", "archived"]
    consent: Literal["yes", "no", "pending", "unknown"]

    @classmethod
    def of(cls, row: ConversationSummary, consent: str) -> ConversationView:
        """The view of ``row``."""
        regarding = None
        if row.regarding_table and row.regarding_id:
            regarding = f"{row.regarding_table}:{row.regarding_id}"
        return cls.model_validate(
            {
                "session_id": row.session_id,
                "configuration_id": row.configuration_id,
                "phone": row.phone,
                "name": row.display_name,
                "regarding": regarding,
                "last_message_at": row.last_message_at,
                "unread": row.unread,
                "acceptance": row.acceptance,
                "folder": row.folder.value,
                "consent": consent,
            }
        )


class ConversationList(BaseModel):
    """A folder's conversations, most recent activity first."""

    folder: Literal["inbox", "archived"]
    query: str | None
    sessions: list[ConversationView]


class MediaView(BaseModel):
    """An MMS attachment of a message (its bytes: the messages page's media route)."""

    id: str
    filename: str
    mimetype: str


class MessageRow(BaseModel):
    """One message of a thread."""

    id: str
    direction: Literal["inbound", "outbound"]
    body: str
    from_: str = Field(alias="from")
    to: str
    status: str
    at: str | None
    failure_category: str | None
    failure_code: str | None
    failure_reason: str | None
    segments: int | None
    media: list[MediaView] = Field(default_factory=list)

    @classmethod
    def of(cls, message: ThreadMessage) -> MessageRow:
        """The view of ``message``."""
        return cls.model_validate(
            {
                "id": message.id,
                "direction": message.direction,
                "body": message.body,
                "from": message.from_number,
                "to": message.to_number,
                "status": message.status,
                "at": message.at,
                "failure_category": message.failure_category,
                "failure_code": message.failure_code,
                "failure_reason": message.failure_reason,
                "segments": message.segments,
                "media": [
                    {"id": m.id, "filename": m.filename, "mimetype": m.mimetype}
                    for m in message.media
                ],
            }
        )


class SessionMarks(BaseModel):
    """A session's folder, unread count and record after a mark."""

    session_id: str
    phone: str
    folder: Literal["inbox", "archived"]
    unread: int
    acceptance: str
    regarding: str | None

    @classmethod
    def of(cls, session: SessionState) -> SessionMarks:
        """The view of ``session``."""
        regarding = None
        if session.regarding_table and session.regarding_id:
            regarding = f"{session.regarding_table}:{session.regarding_id}"
        return cls(
            session_id=session.id,
            phone=session.phone,
            folder="archived" if session.archived else "inbox",
            unread=session.unread,
            acceptance=session.acceptance.value,
            regarding=regarding,
        )


class ThreadView(BaseModel):
    """A conversation and its messages, oldest first."""

    session: SessionMarks
    consent: Literal["yes", "no", "pending", "unknown"]
    match_trace: str
    messages: list[MessageRow]


class CreateRecordBody(BaseModel):
    """The record to create from a conversation."""

    table: Literal["lead", "contact"] = "lead"
    firstname: str = Field(default="", max_length=100)
    lastname: str = Field(default="", max_length=100)
    email: str = Field(default="", max_length=100)


class CreatedRecordView(BaseModel):
    """The record created and the conversation now linked to it."""

    table: str
    id: str
    name: str
    session_id: str
    messages_moved: int


router = APIRouter(
    prefix="/api/v1/sessions", tags=["sessions"], dependencies=[Depends(require_connector_key)]
)


def consent_of(inbox: InboxService, phone: str, configuration_id: str | None) -> str:
    """The consent badge (the local ledger: no Dataverse request)."""
    return inbox.consent(phone, configuration_id)


@router.get("", response_model=ConversationList, operation_id="listSessions")
def list_sessions(
    inbox: InboxDep,
    folder: Literal["inbox", "archived"] = "inbox",
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> ConversationList:
    """A folder's conversations, most recent activity first; ``q`` searches name or number."""
    rows = inbox.conversations(Folder(folder), q, limit)
    return ConversationList(
        folder=folder,
        query=q,
        sessions=[
            ConversationView.of(r, consent_of(inbox, r.phone, r.configuration_id)) for r in rows
        ],
    )


@router.get("/{session_id}/messages", response_model=ThreadView, operation_id="listSessionMessages")
def session_messages(session_id: uuid.UUID, inbox: InboxDep) -> ThreadView:
    """The conversation's messages in order, with delivery status and failure reasons."""
    thread = inbox.thread(str(session_id), mark_read=False)
    session = thread.session
    return ThreadView(
        session=SessionMarks.of(session),
        consent=consent_of(inbox, session.phone, session.configuration_id),
        match_trace=session.match_trace,
        messages=[MessageRow.of(m) for m in thread.messages],
    )


def _mark(session_id: uuid.UUID, inbox: InboxService, mark: str) -> SessionMarks:
    return SessionMarks.of(inbox.mark(str(session_id), mark))


@router.post("/{session_id}/read", response_model=SessionMarks, operation_id="markSessionRead")
def mark_read(session_id: uuid.UUID, inbox: InboxDep) -> SessionMarks:
    """No unread messages left."""
    return _mark(session_id, inbox, "read")


@router.post("/{session_id}/unread", response_model=SessionMarks, operation_id="markSessionUnread")
def mark_unread(session_id: uuid.UUID, inbox: InboxDep) -> SessionMarks:
    """Come back to it later: at least one unread message."""
    return _mark(session_id, inbox, "unread")


@router.post("/{session_id}/archive", response_model=SessionMarks, operation_id="archiveSession")
def archive(session_id: uuid.UUID, inbox: InboxDep) -> SessionMarks:
    """Into the Archived folder (a customer's reply brings it back, unread)."""
    return _mark(session_id, inbox, "archive")


@router.post(
    "/{session_id}/unarchive", response_model=SessionMarks, operation_id="unarchiveSession"
)
def unarchive(session_id: uuid.UUID, inbox: InboxDep) -> SessionMarks:
    """Back to the inbox."""
    return _mark(session_id, inbox, "unarchive")


@router.post(
    "/{session_id}/create-record",
    response_model=CreatedRecordView,
    status_code=201,
    operation_id="createSessionRecord",
)
def create_record(
    session_id: uuid.UUID, body: CreateRecordBody, inbox: InboxDep
) -> CreatedRecordView:
    """Create a lead or contact with the conversation's number and link the conversation."""
    fields = {"firstname": body.firstname, "lastname": body.lastname, "email": body.email}
    created = inbox.create_record(str(session_id), body.table, fields)
    return CreatedRecordView(
        table=created.record.table,
        id=created.record.id,
        name=created.record.name,
        session_id=str(session_id),
        messages_moved=created.move.messages_moved,
    )
