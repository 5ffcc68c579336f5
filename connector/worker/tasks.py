"""Worker tasks: when the ingress journal is drained, and its once-a-minute sweep.

:func:`register` puts ``drain_journal`` (one :meth:`JournalDrain.drain
<connector.services.inbound_batch.JournalDrain.drain>`) and the periodic ``sweep_journal``
(a drain, then pruning rows done a week ago) on a huey instance; the drain reschedules
itself for when the next backed-off row is due, so nothing is stranded. Worker threads run
at a lower CPU priority than the web server's.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from huey import Huey, crontab

from connector.services.inbound_batch import JournalDrain

DRAIN_TASK = "drain_journal"
SWEEP_TASK = "sweep_journal"


@dataclass
class WorkerTasks:
    """The huey tasks bound to one drain; ``enqueue()`` asks for a drain soon."""

    huey: Huey
    drain: Any
    sweep: Any

    def enqueue(self) -> None:
        """Queue one drain (cheap; many queued drains are harmless)."""
        self.drain()


class FollowUp:
    """At most one scheduled follow-up run of a task per process, at the earliest time asked
    for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at: float | None = None

    def want(self, at: float) -> bool:
        """Whether a run must be scheduled for ``at`` (none is due by then already)."""
        with self._lock:
            if self._at is not None and self._at <= at:
                return False
            self._at = at
            return True

    def started(self) -> None:
        """A run started: a follow-up due about now is used up."""
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


def register(huey: Huey, drain: JournalDrain, prune: Callable[[float], int]) -> WorkerTasks:
    """Put the drain and the periodic sweep on ``huey`` (worker threads at low priority).

    ``prune(older_than)`` deletes journal rows done before that time (epoch seconds).
    """
    follow_up = FollowUp()
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
        prune(time.time() - JOURNAL_RETENTION_SECONDS)

    task = huey.task(name=DRAIN_TASK)(run_drain)
    sweep = huey.periodic_task(crontab(minute="*"), name=SWEEP_TASK)(run_sweep)
    return WorkerTasks(huey=huey, drain=task, sweep=sweep)
