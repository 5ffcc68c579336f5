"""The task queue (huey) and how a process runs it.

By default the queue is a :class:`huey.SqliteHuey` file next to the SQLite state store
(``connector-state.db`` -> ``connector-state.queue.db``), shared by every process on the
machine. :class:`Nudger` lets the webhook ask for a drain without waiting for the queue's
own write (a background thread enqueues, coalescing bursts). :class:`InProcessWorker` runs
huey's consumer threads inside ``connector serve``; ``connector worker`` runs the consumer
in the foreground.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from huey import Huey, MemoryHuey, SqliteHuey
from huey.consumer import Consumer
from sqlalchemy.engine import make_url

from connector.log_config import get_logger

log = get_logger(__name__)


def queue_file(state_url: str) -> Path:
    """Where the queue lives: beside a SQLite state file, else ``connector-queue.db`` here."""
    parsed = make_url(state_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        state = Path(str(parsed.database))
        return state.with_name(state.stem + ".queue.db")
    return Path("connector-queue.db")


def make_huey(state_url: str, *, memory: bool = False) -> Huey:
    """The queue for a state store (``memory``: an in-process queue, for tests)."""
    if memory:
        return MemoryHuey("connector", results=False, utc=True)
    path = queue_file(state_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    # fsync off: a queued task is only a wake-up call (the journal is the durable record and
    # the periodic sweep finds whatever a lost task would have), so the queue never competes
    # with journal appends for the disk.
    return SqliteHuey("connector", filename=str(path), results=False, utc=True, fsync=False)


class Nudger:
    """Calls ``enqueue`` from a background thread after ``nudge()``, coalescing bursts."""

    def __init__(self, enqueue: Callable[[], None], min_interval: float = 0.05) -> None:
        self._enqueue = enqueue
        self._interval = min_interval
        self._event = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="journal-nudger", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Ask for a drain soon (never blocks; a no-op while one is already asked for)."""
        if not self._event.is_set():
            self._event.set()

    def _run(self) -> None:
        while not self._stopping:
            self._event.wait()
            if self._stopping:
                return
            self._event.clear()
            try:
                self._enqueue()
            except Exception as exc:
                log.warning("worker.nudge_failed", error=type(exc).__name__)
            self._event.wait(self._interval)  # let a burst coalesce into one drain

    def close(self) -> None:
        """Stop the thread."""
        self._stopping = True
        self._event.set()
        self._thread.join(timeout=5)


POLL_MAX_DELAY = 0.5
"""The longest an idle consumer thread waits before looking at the queue again (huey's default
is 10 s: a send queued by another process would wait that long)."""


class InProcessWorker:
    """huey's consumer (scheduler + worker threads) running beside the web server."""

    def __init__(self, huey: Huey, workers: int = 2, *, periodic: bool = True) -> None:
        logging.getLogger("huey").setLevel(logging.WARNING)  # one line per task is noise
        self.consumer = Consumer(
            huey,
            workers=workers,
            worker_type="thread",
            periodic=periodic,
            check_worker_health=False,
            max_delay=POLL_MAX_DELAY,
        )
        self._started = False

    def start(self) -> None:
        """Start the consumer's threads."""
        self.consumer.start()
        self._started = True

    def stop(self) -> None:
        """Stop after the running tasks finish."""
        if self._started:
            self.consumer.stop(graceful=True)
            self._started = False
