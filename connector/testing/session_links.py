"""An in-memory :class:`~connector.ports.ConversationRelinker` (shipped fake for tests and demos).

Holds each message's session and regarding record, and the match trace stored per session,
so tests assert on what a move changed in "Dataverse".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.domain.routing import MatchTrace, RecordRef
from connector.errors import DataverseNotFoundError


@dataclass
class FakeConversationRelinker:
    """``messages`` maps message id -> (session id, regarding); ``traces`` session -> trace."""

    messages: dict[str, tuple[str, RecordRef | None]] = field(default_factory=dict)
    traces: dict[str, dict[str, Any]] = field(default_factory=dict)
    session_regarding: dict[str, RecordRef] = field(default_factory=dict)
    missing: set[RecordRef] = field(default_factory=set)

    def add_messages(self, session_id: str, regarding: RecordRef | None, ids: list[str]) -> None:
        """Messages of a session, regarding the session's record."""
        for mid in ids:
            self.messages[mid] = (session_id, regarding)

    def relink(self, session_id: str, target: RecordRef, trace: MatchTrace) -> int:
        """Point the session and its messages at ``target`` (a ``missing`` one: 404)."""
        if target in self.missing:
            raise DataverseNotFoundError(f"{target} does not exist", status=404)
        self.session_regarding[session_id] = target
        self.traces[session_id] = trace.to_dict()
        mine = [mid for mid, (sid, _) in self.messages.items() if sid == session_id]
        for mid in mine:
            self.messages[mid] = (session_id, target)
        return len(mine)
