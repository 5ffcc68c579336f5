"""An in-memory :class:`~connector.ports.ConversationReader` and
:class:`~connector.ports.RecordDirectory` (shipped fake for tests and demos).

Holds conversation summaries, thread messages per session and CRM records; counts the reads,
so tests assert on how many "Dataverse requests" a use case made.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from connector.domain.inbox import (
    ConversationSummary,
    Folder,
    MediaFileContent,
    RecordMatch,
    ThreadMessage,
)


@dataclass
class FakeInbox:
    """Summaries, threads (session id -> messages) and records, in memory."""

    summaries: list[ConversationSummary] = field(default_factory=list)
    threads: dict[str, list[ThreadMessage]] = field(default_factory=dict)
    records: list[RecordMatch] = field(default_factory=list)
    notes: dict[str, MediaFileContent] = field(default_factory=dict)
    reads: int = 0

    def conversations(
        self, folder: Folder, query: str | None, limit: int
    ) -> list[ConversationSummary]:
        """The folder's summaries containing ``query`` in name or number."""
        self.reads += 1
        text = (query or "").lower()
        found = [
            s
            for s in self.summaries
            if s.folder is folder and (not text or text in f"{s.name} {s.phone}".lower())
        ]
        return sorted(found, key=lambda s: s.last_message_at or "", reverse=True)[:limit]

    def thread(self, session_id: str) -> list[ThreadMessage]:
        """The session's messages."""
        self.reads += 1
        return list(self.threads.get(session_id, []))

    def note(self, note_id: str) -> MediaFileContent | None:
        """A message's attachment by id."""
        self.reads += 1
        return self.notes.get(note_id)

    def search(self, tables: Sequence[str], text: str, limit: int) -> list[RecordMatch]:
        """Records of ``tables`` whose name or phone contains ``text``."""
        wanted = text.lower()
        return [
            r
            for r in self.records
            if r.table in tables and wanted in f"{r.name} {r.phone or ''}".lower()
        ][:limit]

    def create(self, table: str, fields: Mapping[str, str], phone: str) -> RecordMatch:
        """A new record with a fresh id."""
        name = " ".join(p for p in (fields.get("firstname"), fields.get("lastname")) if p)
        record = RecordMatch(table, str(uuid.uuid4()), name or phone, phone)
        self.records.append(record)
        return record
