"""Event deliveries on the queue: ``deliver_events`` and its once-a-minute sweep.

``deliver_events`` runs :meth:`EventService.deliver_once
<connector.services.events.EventService.deliver_once>` while deliveries are due (at most
``BUDGET_SECONDS``, then a fresh task carries on) and is scheduled again for when the next
retry is due. A new event asks for it through a nudge; ``sweep_events`` is the net under
lost wake-ups and picks up deliveries a dead worker held.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from huey import Huey, crontab

from connector.services.events import EventService
from connector.worker.tasks import FollowUp

BUDGET_SECONDS = 30.0
RECHECK_SECONDS = 1.0
DELIVER_TASK = "deliver_events"
SWEEP_TASK = "sweep_events"


@dataclass
class EventTasks:
    """The delivery task and its sweep."""

    deliver: Any
    sweep: Any

    def enqueue(self) -> None:
        """Queue one delivery run."""
        self.deliver()


def register_events(huey: Huey, service: EventService) -> EventTasks:
    """Put ``deliver_events`` and ``sweep_events`` on ``huey`` (one running per process)."""
    follow_up = FollowUp()
    running = threading.Lock()

    def deliver_events() -> None:
        follow_up.started()
        if not running.acquire(blocking=False):  # a run is under way in this process:
            again = time.time() + RECHECK_SECONDS  # look again once it may have ended
            if follow_up.want(again):
                deliver_task.schedule(delay=RECHECK_SECONDS)
            return
        try:
            started = time.monotonic()
            while True:
                due = service.deliver_once()
                if due is None or due > time.time():
                    break
                if time.monotonic() - started > BUDGET_SECONDS:
                    deliver_task()
                    return
        finally:
            running.release()
        if due is not None and follow_up.want(due):
            deliver_task.schedule(delay=max(0.0, due - time.time()))

    deliver_task = huey.task(name=DELIVER_TASK)(deliver_events)
    sweep = huey.periodic_task(crontab(minute="*"), name=SWEEP_TASK)(deliver_events)
    return EventTasks(deliver=deliver_task, sweep=sweep)
