"""The phone index kept fresh on a schedule: incremental every few minutes, full nightly.

Registered on the process's huey queue by the inbound assembly. Each period's run is queued
by one process of the fleet (:class:`~connector.worker.queue.OncePerPeriodHuey`); a run also
takes a queue-wide lock (``huey.lock_task``), so a sync still going when the next period's
starts makes that one skip its turn instead of running the same sync twice.
The nightly full sync also drops records deleted from tables without change tracking, which
an incremental ``modifiedon`` sync cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from huey import Huey, crontab
from huey.exceptions import TaskLockedException

from connector.log_config import get_logger
from connector.services.phone_sync import PhoneSyncJob, SyncReport

log = get_logger(__name__)

INCREMENTAL_TASK = "phone_sync_incremental"
FULL_TASK = "phone_sync_full"
LOCK = "phone-sync"


@dataclass(frozen=True)
class PhoneSyncTasks:
    """The registered periodic tasks (callable directly, e.g. from tests)."""

    incremental: Any
    full: Any


def run_locked(huey: Huey, job: PhoneSyncJob, *, full: bool) -> SyncReport | None:
    """Run one sync unless another process holds the lock (then None)."""
    try:
        with huey.lock_task(LOCK):
            report = job.run(full=full)
    except TaskLockedException:
        log.info("phone_sync.skipped_locked", full=full)
        return None
    log.info(
        "phone_sync.done",
        full=full,
        tables=len(report.tables),
        rows=sum(t.rows for t in report.tables),
        skipped=report.skipped,
    )
    return report


def register_phone_sync(
    huey: Huey, job: PhoneSyncJob, *, every_minutes: int = 5, full_at_hour: int = 3
) -> PhoneSyncTasks:
    """Schedule the incremental and nightly full syncs of ``job`` on ``huey``."""

    def incremental() -> SyncReport | None:
        return run_locked(huey, job, full=False)

    def full() -> SyncReport | None:
        return run_locked(huey, job, full=True)

    return PhoneSyncTasks(
        incremental=huey.periodic_task(crontab(minute=f"*/{every_minutes}"), name=INCREMENTAL_TASK)(
            incremental
        ),
        full=huey.periodic_task(crontab(minute="0", hour=str(full_at_hour)), name=FULL_TASK)(full),
    )
