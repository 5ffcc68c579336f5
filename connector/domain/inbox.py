"""Conversations as agents browse them: the inbox row, the thread's messages (pure).

The messages page and the read API (``GET /api/v1/sessions``, ``.../messages``) show the same
things: a conversation summary per session (who, when, how many unread, in which folder,
accepted or not) and the messages of one session in order, each with its delivery status and,
for a failed one, the reason. They are read from Dataverse (the system of record); these are
the shapes the adapters return and the services and routes pass on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Folder(enum.StrEnum):
    """Where a conversation is filed."""

    INBOX = "inbox"
    ARCHIVED = "archived"


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """One conversation in a folder (an inbox row)."""

    session_id: str
    configuration_id: str | None
    phone: str
    name: str | None
    regarding_table: str | None
    regarding_id: str | None
    last_message_at: str | None
    unread: int
    acceptance: str
    folder: Folder

    @property
    def display_name(self) -> str:
        """The regarding record's name, or the number when nobody named it (a new lead is
        created with the number as its last name)."""
        name = (self.name or "").strip()
        return name if name and name != self.phone else self.phone


@dataclass(frozen=True, slots=True)
class MediaRef:
    """An MMS attachment of a message (a note under it): what a thumbnail or link shows."""

    id: str
    filename: str
    mimetype: str

    @property
    def image(self) -> bool:
        """Shown as a thumbnail (other types as a download link)."""
        return self.mimetype.startswith("image/")


@dataclass(frozen=True, slots=True)
class MediaFileContent:
    """An attachment's bytes, as served to a signed-in agent."""

    filename: str
    mimetype: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """One message of a conversation as the thread pane shows it."""

    id: str
    direction: str  # "inbound" or "outbound"
    body: str
    from_number: str
    to_number: str
    status: str  # the status label: Received, Queued, Sent, Delivered, Failed, ...
    at: str | None  # ISO 8601 UTC: received, else sent, else created
    failure_category: str | None = None
    failure_code: str | None = None
    failure_reason: str | None = None
    segments: int | None = None
    regarding_name: str | None = None  # the record the message is about, by name
    media: tuple[MediaRef, ...] = ()  # MMS attachments, in the order they came

    @property
    def outbound(self) -> bool:
        """Sent by us (its delivery status is shown under it)."""
        return self.direction == "outbound"


@dataclass(frozen=True, slots=True)
class RecordMatch:
    """A CRM record an agent may move a conversation to or has just created."""

    table: str
    id: str
    name: str
    phone: str | None = None
