"""The idle-timeout escalation sweep on a schedule: every minute, inside the worker.

Registered on the process's huey queue by the inbound assembly. Each minute's run is queued
by one process of the fleet (:class:`~connector.worker.queue.OncePerPeriodHuey`), and a run
takes a queue-wide lock (``huey.lock_task``), so a sweep still going makes the next skip.
The lock only saves work: the sweep's optimistic claims already keep two sweeps from
alerting a team twice.
"""

from __future__ import annotations

from typing import Any

from huey import Huey, crontab
from huey.exceptions import TaskLockedException

from connector.log_config import get_logger
from connector.services.escalation import EscalationReport, EscalationService

log = get_logger(__name__)

ESCALATION_TASK = "escalate_idle_sessions"
LOCK = "session-escalation"


def run_locked(huey: Huey, service: EscalationService) -> EscalationReport | None:
    """Run one sweep unless another process holds the lock (then None)."""
    try:
        with huey.lock_task(LOCK):
            return service.sweep()
    except TaskLockedException:
        log.info("escalation.skipped_locked")
        return None


def register_escalation(huey: Huey, service: EscalationService) -> Any:
    """Schedule the sweep of ``service`` on ``huey`` every minute; the task (callable)."""

    def escalate_idle_sessions() -> EscalationReport | None:
        return run_locked(huey, service)

    return huey.periodic_task(crontab(minute="*"), name=ESCALATION_TASK)(escalate_idle_sessions)
