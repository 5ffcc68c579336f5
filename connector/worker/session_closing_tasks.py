"""The session timeout sweep on a schedule: every minute, inside the worker.

Like the escalation sweep (:mod:`connector.worker.escalation_tasks`): one process of the
fleet queues each minute's run (:class:`~connector.worker.queue.OncePerPeriodHuey`) and a run
takes a queue-wide lock (``huey.lock_task``), so one process sweeps at a time.
Closing twice would be harmless (the writes are idempotent); the lock only saves the work.
"""

from __future__ import annotations

from typing import Any

from huey import Huey, crontab
from huey.exceptions import TaskLockedException

from connector.log_config import get_logger
from connector.services.session_closing import ClosingReport, SessionClosing

log = get_logger(__name__)

CLOSING_TASK = "close_timed_out_sessions"
LOCK = "session-closing"


def run_locked(huey: Huey, service: SessionClosing) -> ClosingReport | None:
    """Run one sweep unless another process holds the lock (then None)."""
    try:
        with huey.lock_task(LOCK):
            return service.sweep()
    except TaskLockedException:
        log.info("sessions.close_skipped_locked")
        return None


def register_session_closing(huey: Huey, service: SessionClosing) -> Any:
    """Schedule the sweep of ``service`` on ``huey`` every minute; the task (callable)."""

    def close_timed_out_sessions() -> ClosingReport | None:
        return run_locked(huey, service)

    return huey.periodic_task(crontab(minute="*"), name=CLOSING_TASK)(close_timed_out_sessions)
