"""An in-memory :class:`~connector.ports.SessionLinks` (shipped fake for tests and demos).

Holds sessions (number, regarding record, match trace) and the messages of each, so tests
assert on what a move changed: the session's regarding, every message's regarding, the trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.domain.routing import MatchTrace, RecordRef, SessionLink
from connector.errors import NotFoundError


@dataclass
class FakeSessionLinks:
    """Sessions by id; ``messages`` maps message id -> (session id, regarding)."""

    sessions: dict[str, SessionLink] = field(default_factory=dict)
    messages: dict[str, tuple[str, RecordRef | None]] = field(default_factory=dict)
    traces: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, link: SessionLink, message_ids: list[str]) -> None:
        """A session with these messages, all regarding the session's record."""
        self.sessions[link.session_id] = link
        for mid in message_ids:
            self.messages[mid] = (link.session_id, link.regarding)

    def session_link(self, session_id: str) -> SessionLink:
        """The session, or ``NotFoundError``."""
        try:
            return self.sessions[session_id]
        except KeyError:
            raise NotFoundError(f"no conversation session {session_id}") from None

    def relink(self, session_id: str, target: RecordRef, trace: MatchTrace) -> int:
        """Point the session and its messages at ``target``."""
        link = self.session_link(session_id)
        self.sessions[session_id] = SessionLink(
            session_id, link.phone, target, link.configuration_id
        )
        self.traces[session_id] = trace.to_dict()
        mine = [mid for mid, (sid, _) in self.messages.items() if sid == session_id]
        for mid in mine:
            self.messages[mid] = (session_id, target)
        return len(mine)
