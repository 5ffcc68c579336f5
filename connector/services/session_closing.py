"""Closing conversations that timed out: the periodic sweep (once per fleet).

A session is open from its first message until its start + the configuration's session timeout;
a message after that already opens a new session (:meth:`SessionState.is_open`). What is left is
to show it in Dynamics: the session activity is completed, its open flag cleared and its end
time set. :meth:`SessionClosing.sweep` reads the sessions whose timeout has passed and that are
not closed yet (an index range in the session mirror), writes them closed in ONE ``$batch``
(a change set each, safe to repeat), and only then records them closed locally, so a failed
write leaves them due for the next sweep. A session changed meanwhile (a worker counted a late
message, an agent acted) is re-read and recorded closed all the same: the Dataverse row is
closed already, and any later write of a closed session closes it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from connector.domain.conversation import SessionState
from connector.log_config import get_logger
from connector.ports import ConversationWriter, ExpiringSessions

log = get_logger(__name__)
_ATTEMPTS = 5
_MAX_PAGES = 20  # per sweep; the next sweep goes on


@dataclass(frozen=True, slots=True)
class ClosingReport:
    """What one sweep did (for logs and tests)."""

    closed: int = 0
    failed: int = 0


class SessionClosing:
    """Closes timed-out sessions in Dataverse and in the session mirror."""

    def __init__(
        self,
        sessions: ExpiringSessions,
        writer: ConversationWriter,
        *,
        clock: Callable[[], float] = time.time,
        page_size: int = 100,
    ) -> None:
        self._sessions = sessions
        self._writer = writer
        self._clock = clock
        self._page_size = page_size

    def sweep(self) -> ClosingReport:
        """Close every session whose timeout has passed, a page at a time."""
        closed = failed = 0
        for _ in range(_MAX_PAGES):
            due = self._sessions.due_for_closing(self._clock(), self._page_size)
            if not due:
                break
            done, refused = self._close_page(due)
            closed, failed = closed + done, failed + refused
            if refused or len(due) < self._page_size:
                break
        if closed or failed:
            log.info("sessions.closed", closed=closed, failed=failed)
        return ClosingReport(closed, failed)

    def _close_page(self, due: list[SessionState]) -> tuple[int, int]:
        ended = [session.closed(session.expires_at) for session in due]
        try:
            errors = self._writer.close_sessions(ended)
        except Exception as exc:  # every session stays due; the next sweep retries
            errors = [exc] * len(ended)
        done = 0
        for session, error in zip(due, errors, strict=True):
            if error is not None:
                log.warning("sessions.close_failed", session=session.id, error=str(error)[:200])
                continue
            self._record(session)
            done += 1
        return done, len(due) - done

    def _record(self, read: SessionState) -> None:
        """Save ``read`` as closed at its timeout (re-read when it changed meanwhile)."""
        current: SessionState | None = read
        for _ in range(_ATTEMPTS):
            if current is None or current.closed_at is not None:
                return
            if self._sessions.save(current.closed(current.expires_at), current):
                return
            current = self._sessions.get(read.id)
        log.warning("sessions.close_record_gave_up", session=read.id)
