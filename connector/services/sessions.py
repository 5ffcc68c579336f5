"""Session actions for agents: accept, dismiss, block, assign, close.

Each action writes to Dataverse first and changes the local session mirror only once
Dataverse accepted the write (compare-and-set, retried when a worker updated the session
meanwhile): a refused action leaves the conversation as it was. A user, team or row that
Dataverse does not know is the caller's mistake, :class:`UnknownReferenceError` (422).

*Accept* makes the acting user the owner and resets the unread count (taking it is reading
it); *close* ends the conversation (its activity completed; the next message opens a new one);
*dismiss* hides the conversation for that user;
*block* adds the number to the configuration's blocked list for everyone (later messages are
still stored, flagged, without notifications); *assign* moves the session to a user or a
team. Every action counts as someone having acted: the wait ends, so the idle-timeout
escalation stops (and the next wait may be escalated again).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from connector.domain.conversation import Acceptance, SessionState
from connector.errors import (
    DataverseNotFoundError,
    InvalidInputError,
    NotFoundError,
    StateStoreError,
    UnknownReferenceError,
)
from connector.ports import ConfigurationLookup, ConversationWriter, SessionStore

ACTIONS = ("accept", "dismiss", "block", "assign", "close")
_ATTEMPTS = 5


class SessionActions:
    """What an agent can do to a conversation."""

    def __init__(
        self,
        sessions: SessionStore,
        writer: ConversationWriter,
        configurations: ConfigurationLookup,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._writer = writer
        self._configs = configurations
        self._clock = clock

    def accept(self, session_id: str, user_id: str) -> SessionState:
        """``user_id`` takes the conversation (becomes its owner)."""
        return self._change(
            session_id,
            lambda s: replace(
                s,
                owner_id=user_id,
                owner_is_team=False,
                acceptance=Acceptance.ACCEPTED,
                unread=0,
            ),
        )

    def close(self, session_id: str, user_id: str | None = None) -> SessionState:
        """End the conversation now (a session closed already keeps its end time)."""
        return self._change(session_id, lambda s: s.closed(self._clock()))

    def dismiss(self, session_id: str, user_id: str) -> SessionState:
        """Hide the conversation for ``user_id``."""
        return self._change(
            session_id,
            lambda s: replace(
                s, acceptance=Acceptance.DISMISSED, dismissed_by=s.dismissed_by | {user_id}
            ),
        )

    def block(self, session_id: str, user_id: str | None) -> SessionState:
        """Block the session's number for its configuration (for everyone)."""
        current = self._current(session_id)
        with _references_checked(session_id):
            self._writer.block_number(current.configuration_id, current.phone, user_id)
        session = self._change(session_id, lambda s: replace(s, acceptance=Acceptance.BLOCKED))
        self._configs.note_blocked(session.configuration_id, session.phone)
        return session

    def assign(self, session_id: str, owner_id: str, *, team: bool = False) -> SessionState:
        """Move the conversation to a user (or a team with ``team=True``)."""
        if not owner_id:
            raise InvalidInputError("assign needs an owner id")
        return self._change(
            session_id,
            lambda s: replace(
                s, owner_id=owner_id, owner_is_team=team, acceptance=Acceptance.ACCEPTED
            ),
        )

    def _current(self, session_id: str) -> SessionState:
        current = self._sessions.get(session_id)
        if current is None:
            raise NotFoundError(f"no session {session_id}", details={"session": session_id})
        return current

    def _change(
        self, session_id: str, change: Callable[[SessionState], SessionState]
    ) -> SessionState:
        for _ in range(_ATTEMPTS):
            current = self._current(session_id)
            acted = change(current).acted(self._clock())
            with _references_checked(session_id):
                self._writer.update_session(acted)  # Dataverse first: a refusal changes nothing
            if self._sessions.save(acted, current):
                return acted
        raise StateStoreError("the session kept changing", details={"session": session_id})


@contextmanager
def _references_checked(session_id: str) -> Iterator[None]:
    """Dataverse's 404 for an action's write as the caller's mistake (422), not a 502."""
    try:
        yield
    except DataverseNotFoundError as exc:
        raise UnknownReferenceError(
            "Dataverse has no user, team or row named by this action",
            details={"session": session_id, "dataverse": exc.message[:200]},
        ) from exc
