"""The inbox: folders, threads and what an agent does from them (read, unread, archive,
create a record from a conversation).

Reads go to Dataverse, the system of record, through a
:class:`~connector.ports.ConversationReader`: a folder is one request, a thread one more
plus, when it had unread messages, one write marking it read (at most two). The session
itself (number, sender, regarding record, acceptance, match trace) comes from the local
session mirror, which the inbound and outbound paths keep current. Marks are written to
Dataverse first (folder and unread count on the session activity, so Dynamics views show the
same state) and then to the mirror with a compare-and-set, retried when a worker updated the
session meanwhile; a refused write changes nothing. An inbound message brings an archived
conversation back to the inbox, unread (:meth:`SessionState.with_inbound`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from connector.domain.consent import ConsentStatus
from connector.domain.conversation import SessionState
from connector.domain.inbox import (
    ConversationSummary,
    Folder,
    MediaFileContent,
    RecordMatch,
    ThreadMessage,
)
from connector.domain.model import Configuration
from connector.domain.routing import RecordRef
from connector.errors import NotFoundError, StateStoreError, UnprocessableError
from connector.ports import (
    ConfigurationLookup,
    ConsentStore,
    ConversationReader,
    ConversationWriter,
    RecordDirectory,
    SessionStore,
)
from connector.services.conversation_move import ConversationMover, MoveResult

MARKS = ("read", "unread", "archive", "unarchive")
MAX_CONVERSATIONS = 200
_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Thread:
    """One conversation opened: the session as it now stands and its messages."""

    session: SessionState
    messages: list[ThreadMessage]


@dataclass(frozen=True, slots=True)
class CreatedRecord:
    """A record created from a conversation, and the move that linked the conversation."""

    record: RecordMatch
    move: MoveResult


class InboxService:
    """What agents read and mark (see the module docstring)."""

    def __init__(
        self,
        *,
        sessions: SessionStore,
        reader: ConversationReader,
        writer: ConversationWriter,
        records: RecordDirectory,
        mover: ConversationMover,
        configurations: ConfigurationLookup,
        consent: ConsentStore | None = None,
    ) -> None:
        self._sessions = sessions
        self._reader = reader
        self._writer = writer
        self._records = records
        self._mover = mover
        self._configs = configurations
        self._consent = consent

    # -- reading ---------------------------------------------------------------------------
    def conversations(
        self, folder: Folder = Folder.INBOX, query: str | None = None, limit: int = 100
    ) -> list[ConversationSummary]:
        """The folder's conversations, most recent activity first (one Dataverse request)."""
        limit = max(1, min(limit, MAX_CONVERSATIONS))
        return self._reader.conversations(folder, (query or "").strip() or None, limit)

    def session(self, session_id: str) -> SessionState:
        """The session as the mirror holds it (no Dataverse request)."""
        current = self._sessions.get(session_id)
        if current is None:
            raise NotFoundError(f"no session {session_id}", details={"session": session_id})
        return current

    def thread(self, session_id: str, *, mark_read: bool = True) -> Thread:
        """The session's messages (one request); opening it marks it read (one more, only
        when something was unread)."""
        session = self.session(session_id)
        messages = self._reader.thread(session_id)
        if mark_read and session.unread:
            session = self.mark(session_id, "read")
        return Thread(session, messages)

    def media(self, note_id: str) -> MediaFileContent:
        """An MMS attachment of a message (one read); 404 for anything else."""
        found = self._reader.note(note_id)
        if found is None:
            raise NotFoundError(f"no attachment {note_id}", details={"id": note_id[:64]})
        return found

    def configuration(self, session: SessionState) -> Configuration | None:
        """The session's sender configuration (cached)."""
        for config in self._configs.snapshot().values():
            if config.id == session.configuration_id:
                return config
        return None

    def senders(self) -> list[Configuration]:
        """The active sender configurations (a reply may choose among them)."""
        return sorted(self._configs.snapshot().values(), key=lambda c: c.name)

    def consent(self, phone: str, configuration_id: str | None) -> str:
        """The consent badge of (number, sender): ``no`` when opted out of anything,
        ``yes`` when opted in, ``pending`` when a double opt-in waits, else ``unknown``."""
        if self._consent is None or not configuration_id:
            return "unknown"
        held = {c.status for c in self._consent.current(phone, configuration_id).values()}
        for status, badge in (
            (ConsentStatus.OPTED_OUT, "no"),
            (ConsentStatus.OPTED_IN, "yes"),
            (ConsentStatus.PENDING, "pending"),
        ):
            if status in held:
                return badge
        return "unknown"

    # -- marks -----------------------------------------------------------------------------
    def mark(self, session_id: str, mark: str) -> SessionState:
        """``read`` (no unread left), ``unread`` (at least one), ``archive`` or
        ``unarchive``: Dataverse first, then the mirror."""
        changes: Mapping[str, Callable[[SessionState], SessionState]] = {
            "read": lambda s: s.marked(unread=0),
            "unread": lambda s: s.marked(unread=max(s.unread, 1)),
            "archive": lambda s: s.marked(archived=True),
            "unarchive": lambda s: s.marked(archived=False),
        }
        if mark not in changes:
            raise NotFoundError(f"no such mark: {mark}")
        return self._change(session_id, changes[mark])

    def _change(
        self, session_id: str, change: Callable[[SessionState], SessionState]
    ) -> SessionState:
        for _ in range(_ATTEMPTS):
            current = self.session(session_id)
            changed = change(current)
            if changed == current:
                return current
            self._writer.update_session(changed)  # Dataverse first: a refusal changes nothing
            if self._sessions.save(changed, current):
                return changed
        raise StateStoreError("the session kept changing", details={"session": session_id})

    # -- records ---------------------------------------------------------------------------
    def find_records(self, text: str, limit: int = 20) -> list[RecordMatch]:
        """Contacts, leads and accounts whose name or number contains ``text``."""
        if len(text.strip()) < 2:
            return []
        return self._records.search(("contact", "lead", "account"), text, limit)

    def creatable(self, session: SessionState) -> tuple[str, ...]:
        """The tables a record may be created in from this conversation (the sender's
        allow-create-to, among lead and contact)."""
        config = self.configuration(session)
        allowed = config.allow_create_to if config else ("lead",)
        return tuple(t for t in ("lead", "contact") if t in allowed)

    def create_record(
        self, session_id: str, table: str, fields: Mapping[str, str]
    ) -> CreatedRecord:
        """Create a lead or contact with the conversation's number and ``fields``, then move
        the conversation (and later replies) to it."""
        session = self.session(session_id)
        allowed = self.creatable(session)
        if table not in allowed:
            raise UnprocessableError(
                f"this sender may not create a {table} (allowed: {', '.join(allowed) or 'none'})",
                code="create_not_allowed",
                details={"table": table[:64]},
            )
        record = self._records.create(table, fields, session.phone)
        move = self._mover.move(session_id, RecordRef(record.table, record.id))
        return CreatedRecord(record, move)
