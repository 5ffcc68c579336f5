"""Idle-timeout escalation: waiting conversations reach the whole team, once per wait.

An inbound message notifies the session's owner. If nobody acts on the session (accept,
dismiss, block, assign) within the configuration's idle timeout, every member of the
configuration's owning team is notified and may take it. :meth:`EscalationService.sweep`
(run every minute by the worker) finds those sessions through the session mirror's index
and alerts each team ONCE per wait:

1. *claim*: the session is saved with ``escalated_at`` and a claim token, optimistically
   (version check), so of two racing sweeps, or a sweep and the next inbound message (which
   escalates a wait itself when it comes first), exactly one wins;
2. *write*: the notifications of every claimed session go to Dataverse in one ``$batch``,
   a change set per session, with ids derived from the session and the start of its wait
   (a retry after a lost answer rewrites the same rows);
3. *settle*: a written alert is confirmed (the claim token cleared, the session leaves the
   index); a failed one is released (``escalated_at`` cleared) so the next sweep retries.
   A claim that is never settled (the process died) is retaken after ``claim_lease``.

Blocked numbers and configurations without an owning team get no notification; a blocked
number's wait is settled without one, so the sweep does not read it again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from connector.domain.conversation import EscalationWrite, SessionState
from connector.domain.model import Configuration
from connector.log_config import get_logger
from connector.ports import ConfigurationLookup, ConversationWriter, SessionStore

log = get_logger(__name__)
_ATTEMPTS = 5
_MAX_PAGES = 20  # per configuration and sweep; the next sweep goes on


@dataclass(frozen=True, slots=True)
class EscalationReport:
    """What one sweep did (for logs and tests)."""

    escalated: int = 0
    failed: int = 0
    settled_silently: int = 0

    def __add__(self, other: EscalationReport) -> EscalationReport:
        return EscalationReport(
            self.escalated + other.escalated,
            self.failed + other.failed,
            self.settled_silently + other.settled_silently,
        )


class EscalationService:
    """Alerts configuration teams about sessions nobody took in time (module docstring)."""

    def __init__(
        self,
        configurations: ConfigurationLookup,
        sessions: SessionStore,
        writer: ConversationWriter,
        team_members: Callable[[str], frozenset[str]],
        *,
        clock: Callable[[], float] = time.time,
        claim_lease: float = 300.0,
        page_size: int = 100,
        tokens: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._configs = configurations
        self._sessions = sessions
        self._writer = writer
        self._team_members = team_members
        self._clock = clock
        self._lease = claim_lease
        self._page_size = page_size
        self._tokens = tokens

    def sweep(self) -> EscalationReport:
        """Escalate every due session of every configuration with an owning team."""
        report = EscalationReport()
        for config in self._configs.snapshot().values():
            if config.owning_team_id and config.id is not None:
                report += self.sweep_configuration(config)
        if report.escalated or report.failed:
            log.info(
                "escalation.swept",
                escalated=report.escalated,
                failed=report.failed,
                settled_silently=report.settled_silently,
            )
        return report

    def sweep_configuration(self, config: Configuration) -> EscalationReport:
        """Escalate the due sessions of one configuration, a page at a time."""
        report = EscalationReport()
        for _ in range(_MAX_PAGES):
            page = self.candidates(config)
            done = self.escalate(config, page)
            report += done
            if len(page) < self._page_size or not (done.escalated or done.settled_silently):
                break
        return report

    def candidates(self, config: Configuration) -> list[SessionState]:
        """Sessions of ``config`` whose wait has lasted the idle timeout and is not settled."""
        assert config.id is not None
        cutoff = self._clock() - config.idle_timeout_minutes * 60
        return self._sessions.awaiting_escalation(config.id, cutoff, self._page_size)

    def escalate(self, config: Configuration, sessions: Sequence[SessionState]) -> EscalationReport:
        """Claim, alert and settle ``sessions`` (as read; each is checked again on claim)."""
        team = config.owning_team_id
        if not team or not sessions:
            return EscalationReport()
        members = tuple(sorted(self._team_members(team)))  # before claiming: may fail
        claimed: list[SessionState] = []
        silent = 0
        for session in sessions:
            outcome = self._claim(session, config)
            if isinstance(outcome, SessionState):
                claimed.append(outcome)
            silent += outcome is True
        if not claimed:
            return EscalationReport(settled_silently=silent)
        errors = self._write([EscalationWrite(session, members) for session in claimed])
        for session, error in zip(claimed, errors, strict=True):
            self._settle(session, written=error is None)
            if error is not None:
                log.warning("escalation.write_failed", session=session.id, error=str(error)[:200])
        failed = sum(error is not None for error in errors)
        return EscalationReport(len(claimed) - failed, failed, silent)

    def _write(self, writes: Sequence[EscalationWrite]) -> Sequence[Exception | None]:
        """The error of each write (a team without members has nothing to write)."""
        if not writes[0].notify:
            return [None] * len(writes)
        try:
            return self._writer.write_escalations(writes)
        except Exception as exc:  # every claim is released; the next sweep retries
            return [exc] * len(writes)

    def _claim(self, session: SessionState, config: Configuration) -> SessionState | bool:
        """The session as claimed by this sweep; True when it was settled without an alert
        (blocked number); False when it is not due (any more) or others keep changing it."""
        assert config.id is not None
        current: SessionState | None = session
        blocked = self._configs.is_blocked(config.id, session.phone)
        for _ in range(_ATTEMPTS):
            now = self._clock()
            if current is None or not current.escalation_due(
                now, config.idle_timeout_minutes, self._lease
            ):
                return False
            if blocked:
                if self._sessions.save(current.escalated(now), current):
                    return True
            else:
                claim = current.escalated(now, claim=self._tokens())
                if self._sessions.save(claim, current):
                    return replace(claim, version=current.version + 1)
            current = self._sessions.get(session.id)
        return False

    def _settle(self, claim: SessionState, *, written: bool) -> None:
        """Confirm a written alert, or release a failed one for the next sweep (unless the
        session moved on: someone acted, or another sweep retook a stale claim)."""
        current: SessionState | None = claim
        for _ in range(_ATTEMPTS):
            if current is None or current.escalation_claim != claim.escalation_claim:
                return
            if written:
                settled = current.escalated(current.escalated_at)
            else:
                settled = current.escalated(None)
            if self._sessions.save(settled, current):
                return
            current = self._sessions.get(claim.id)
        log.warning("escalation.settle_gave_up", session=claim.id, written=written)
