"""Bulk jobs on the queue: ``run_bulk`` hands recipients to the send path, job after job.

``run_bulk`` runs :meth:`BulkService.run_once <connector.services.bulk.BulkService.run_once>`
while a job is due, for at most ``BUDGET_SECONDS`` (then a fresh task carries on), and is
scheduled again for when the next job is due (a job waiting for the outbox to drain comes
back a few seconds later). ``sweep_bulk`` (every minute) runs it too: the net under lost
wake-ups and the way a job whose worker died (its lease ran out) is resumed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from huey import Huey, crontab

from connector.services.bulk import BulkService
from connector.worker.tasks import FollowUp

BUDGET_SECONDS = 30.0
RECHECK_SECONDS = 1.0
RUN_TASK = "run_bulk"
SWEEP_TASK = "sweep_bulk"


@dataclass
class BulkTasks:
    """The bulk task and its periodic sweep."""

    run: Any
    sweep: Any

    def enqueue(self) -> None:
        """Queue one run (cheap; runs that find nothing due end at once)."""
        self.run()


def register_bulk(huey: Huey, service: BulkService) -> BulkTasks:
    """Put ``run_bulk`` and ``sweep_bulk`` on ``huey`` (one running per process)."""
    follow_up = FollowUp()
    running = threading.Lock()

    def run_bulk() -> None:
        follow_up.started()
        if not running.acquire(blocking=False):  # a run is under way in this process:
            again = time.time() + RECHECK_SECONDS  # look again once it may have ended
            if follow_up.want(again):
                run_task.schedule(delay=RECHECK_SECONDS)
            return
        try:
            started = time.monotonic()
            while True:
                due = service.run_once()
                if due is None or due > time.time():
                    break
                if time.monotonic() - started > BUDGET_SECONDS:
                    run_task()  # let other tasks have the thread; carry on in a new one
                    return
        finally:
            running.release()
        if due is not None and follow_up.want(due):
            run_task.schedule(delay=max(0.0, due - time.time()))

    run_task = huey.task(name=RUN_TASK)(run_bulk)
    sweep = huey.periodic_task(crontab(minute="*"), name=SWEEP_TASK)(run_bulk)
    return BulkTasks(run=run_task, sweep=sweep)
