"""Move a conversation to another record: the session, its messages, and later replies.

A seller who sees a conversation on the wrong record moves it (``POST
/api/v1/sessions/{id}/move``). The session and every message in it are re-linked to the
target record (any record type), the session's match trace says it was moved and from where,
and the number's most recent conversation becomes the target, so the next inbound message
from the number lands there too (the first routing rule).
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.domain.routing import MatchTrace, RecordRef, moved
from connector.log_config import get_logger
from connector.ports import RecordResolver, SessionLinks

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class MoveResult:
    """What a move did."""

    session_id: str
    previous: RecordRef | None
    target: RecordRef
    messages_moved: int
    trace: MatchTrace


class ConversationMover:
    """Re-links sessions through :class:`SessionLinks` and tells the resolver."""

    def __init__(self, sessions: SessionLinks, resolver: RecordResolver) -> None:
        self._sessions = sessions
        self._resolver = resolver

    def move(self, session_id: str, target: RecordRef) -> MoveResult:
        """Move session ``session_id`` (and its messages) to ``target``."""
        link = self._sessions.session_link(session_id)
        trace = moved(link.phone, target, link.regarding)
        count = self._sessions.relink(session_id, target, trace)
        self._resolver.note_conversation(link.phone, target)
        log.info(
            "conversation.moved",
            session=session_id,
            previous=str(link.regarding),
            target=str(target),
            messages=count,
        )
        return MoveResult(session_id, link.regarding, target, count, trace)
