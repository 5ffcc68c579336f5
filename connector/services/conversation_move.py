"""Move a conversation to another record: the session, its messages, and later replies.

A seller who sees a conversation on the wrong record moves it (``POST
/api/v1/sessions/{id}/move``). The session activity and every message in it are re-linked in
Dataverse in one change set, with a match trace saying it was moved and from where; then the
local session mirror is re-pointed (optimistic, retried when a worker updated the session
meanwhile), so the next message in the still-open session lands on the target; finally the
number's most recent conversation becomes the target, so a message that opens a later
session resolves to it too (the first routing rule).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from connector.domain.routing import MatchTrace, RecordRef, moved
from connector.errors import DataverseNotFoundError, NotFoundError, StateStoreError
from connector.log_config import get_logger
from connector.ports import ConversationRelinker, RecordResolver, SessionStore

log = get_logger(__name__)
_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class MoveResult:
    """What a move did."""

    session_id: str
    previous: RecordRef | None
    target: RecordRef
    messages_moved: int
    trace: MatchTrace


class ConversationMover:
    """Re-links a session (mirror and Dataverse) and tells the resolver."""

    def __init__(
        self, sessions: SessionStore, relinker: ConversationRelinker, resolver: RecordResolver
    ) -> None:
        self._sessions = sessions
        self._relinker = relinker
        self._resolver = resolver

    def move(self, session_id: str, target: RecordRef) -> MoveResult:
        """Move session ``session_id`` (and its messages) to ``target``.

        Dataverse first: if the target does not exist or the write fails, nothing local
        changes and the caller gets the error; the mirror follows only a move that landed.
        """
        current = self._sessions.get(session_id)
        if current is None:
            raise NotFoundError(f"no session {session_id}", details={"session": session_id})
        previous = None
        if current.regarding_table and current.regarding_id:
            previous = RecordRef(current.regarding_table, current.regarding_id)
        trace = moved(current.phone, target, previous)
        try:
            count = self._relinker.relink(session_id, target, trace)
        except DataverseNotFoundError as exc:
            raise NotFoundError(
                f"cannot move session {session_id} to {target}: {exc.message}",
                details={"session": session_id, "target": str(target)},
            ) from exc
        for _ in range(_ATTEMPTS):
            latest = self._sessions.get(session_id) or current
            relinked = replace(
                latest,
                regarding_table=target.table,
                regarding_id=target.id,
                match_trace=trace.to_json(),
            )
            if self._sessions.save(relinked, latest):
                break
        else:
            raise StateStoreError("the session kept changing", details={"session": session_id})
        self._resolver.note_conversation(current.phone, target)
        log.info(
            "conversation.moved",
            session=session_id,
            previous=str(previous),
            target=str(target),
            messages=count,
        )
        return MoveResult(session_id, previous, target, count, trace)
