"""Worker tasks: drain the ingress journal into Dataverse, and sweep it periodically.

:class:`JournalDrain` claims due journal rows (leased, so a killed worker's rows come back),
parses and prepares each raw event with the inbound use case, writes the batch in ONE
``$batch`` request (a change set per message, continuing past a failed one), and marks each
row done only after its change set was confirmed. A transient failure backs the row off
(honouring Retry-After); a permanent one parks it in ``error`` (replayable). :func:`register`
puts ``drain_journal`` and the once-a-minute ``sweep_journal`` on a huey instance; the
drain reschedules itself for when the next backed-off row is due, so nothing is stranded.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from huey import Huey, crontab

from connector.domain.provider_messages import InboundMessage
from connector.errors import ConnectorError, is_transient
from connector.log_config import get_logger
from connector.ports import ErrorLog
from connector.providers.twilio.forms import parse_inbound
from connector.services.inbound import InboundService, PreparedInbound
from connector.state.journal import ERROR, Journal, JournalEntry

log = get_logger(__name__)

DRAIN_TASK = "drain_journal"
SWEEP_TASK = "sweep_journal"


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What one drain did, and when the next backed-off row is due (epoch seconds)."""

    done: int = 0
    failed: int = 0
    next_due: float | None = None


class JournalDrain:
    """Processes due journal rows with the inbound service."""

    def __init__(
        self,
        journal: Journal,
        service: InboundService,
        *,
        batch_size: int = 50,
        lease_seconds: float = 60.0,
        time_budget: float = 20.0,
        on_done: Callable[[JournalEntry], None] = lambda _entry: None,
        error_log: ErrorLog | None = None,
    ) -> None:
        self.journal = journal
        self.service = service
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.time_budget = time_budget
        self.on_done = on_done
        self.error_log = error_log

    def drain(self) -> DrainResult:
        """Claim and process batches until nothing is due or the time budget is spent."""
        done = failed = 0
        started = time.monotonic()
        while time.monotonic() - started < self.time_budget:
            batch = self.journal.claim(self.batch_size, lease_seconds=self.lease_seconds)
            if not batch:
                break
            ok, bad = self._batch(batch)
            done, failed = done + ok, failed + bad
            if bad:
                break  # something is failing: let the backoff decide when to try again
        return DrainResult(done, failed, self.journal.next_due())

    def _batch(self, batch: list[JournalEntry]) -> tuple[int, int]:
        """Prepare every row, write them in ONE request, settle each row; (done, failed)."""
        ready: list[tuple[JournalEntry, PreparedInbound]] = []
        parsed: list[tuple[JournalEntry, InboundMessage]] = []
        failed = 0
        for entry in batch:
            try:
                parsed.append((entry, parse_inbound(list(entry.payload.items()))))
            except Exception as exc:  # every failure is recorded on its row
                self._failed(entry, exc)
                failed += 1
        items = [(message, entry.received_at) for entry, message in parsed]
        for (entry, _), prepared in zip(parsed, self.service.prepare_many(items), strict=True):
            if isinstance(prepared, Exception):
                self._failed(entry, prepared)
                failed += 1
            else:
                ready.append((entry, prepared))
        if not ready:
            return 0, failed
        errors = self.service.write_many([prepared.write for _, prepared in ready])
        written = [entry for (entry, _), error in zip(ready, errors, strict=True) if not error]
        self.journal.mark_done_many(written)
        for entry in written:
            self.on_done(entry)
        for (entry, _), error in zip(ready, errors, strict=True):
            if error is not None:
                self._failed(entry, error)
                failed += 1
        return len(written), failed

    def _failed(self, entry: JournalEntry, exc: BaseException) -> None:
        transient = is_transient(exc)
        details: dict[str, Any] = (
            exc.to_dict()
            if isinstance(exc, ConnectorError)
            else {"code": "unexpected", "message": f"{type(exc).__name__}: {exc}"}
        )
        retry_after = getattr(exc, "retry_after", None)
        status = self.journal.mark_failed(
            entry, details, transient=transient, retry_after=retry_after
        )
        if status == ERROR and self.error_log is not None:
            self.error_log.record(
                f"journal:{entry.id}",
                str(details.get("code", "error")),
                f"Inbound message {entry.event_id} could not be stored: "
                f"{details.get('message', '')}"[:400],
                {
                    "journal_id": entry.id,
                    "provider_message_id": entry.event_id,
                    "from": entry.payload.get("From"),
                    "to": entry.payload.get("To"),
                    "error": details,
                    "replay": f"connector journal replay {entry.id}",
                },
            )
        level = log.error if status == ERROR else log.warning
        level(
            "journal.failed",
            journal_id=entry.id,
            event_id=entry.event_id,
            attempt=entry.attempts + 1,
            status=status,
            code=details.get("code"),
        )


@dataclass
class WorkerTasks:
    """The huey tasks bound to one drain; ``enqueue()`` asks for a drain soon."""

    huey: Huey
    drain: Any
    sweep: Any

    def enqueue(self) -> None:
        """Queue one drain (cheap; many queued drains are harmless)."""
        self.drain()


class _FollowUp:
    """At most one scheduled follow-up drain per process, at the earliest time asked for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at: float | None = None

    def want(self, at: float) -> bool:
        """Whether a drain must be scheduled for ``at`` (none is due by then already)."""
        with self._lock:
            if self._at is not None and self._at <= at:
                return False
            self._at = at
            return True

    def started(self) -> None:
        with self._lock:
            if self._at is not None and self._at <= time.time() + 0.05:
                self._at = None


WORKER_NICENESS = 10
JOURNAL_RETENTION_SECONDS = 7 * 24 * 3600  # done rows (and their dedupe keys) kept a week


def lower_thread_priority() -> None:
    """Make the calling thread yield the CPU to webhook answers (Linux; elsewhere a no-op).

    Draining is elastic (a backlog only waits a little longer); a late webhook answer is
    what the provider sees, so worker threads run at a lower scheduling priority.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
    except (AttributeError, OSError):
        return


def register(huey: Huey, drain: JournalDrain) -> WorkerTasks:
    """Put the drain and the periodic sweep on ``huey`` (worker threads at low priority)."""
    follow_up = _FollowUp()
    huey.on_startup(name="lower_priority")(lower_thread_priority)

    def run_drain() -> None:
        follow_up.started()
        result = drain.drain()
        if result.next_due is None:
            return
        at = max(result.next_due, time.time() + (0.5 if result.failed else 0.0))
        if follow_up.want(at):
            task.schedule(delay=max(0.0, at - time.time()))

    def run_sweep() -> None:
        run_drain()
        drain.journal.prune(older_than=time.time() - JOURNAL_RETENTION_SECONDS)

    task = huey.task(name=DRAIN_TASK)(run_drain)
    sweep = huey.periodic_task(crontab(minute="*"), name=SWEEP_TASK)(run_sweep)
    return WorkerTasks(huey=huey, drain=task, sweep=sweep)
