"""The task queue (huey) and how a process runs it.

By default the queue is huey's SQLite storage in a file next to the SQLite state store
(``connector-state.db`` -> ``connector-state.queue.db``), shared by every process on the
machine. A fleet (several machines) sets a Redis URL instead: huey's Redis storage, whose
consumers wait on a blocking pop, so a task queued by any process reaches an idle
worker anywhere in the fleet at once (no polling interval). :class:`Nudger` lets the
webhook ask for a drain without waiting for the queue's own write (a background thread
enqueues, coalescing bursts).

Every consumer runs huey's scheduler, so every process of a fleet would queue each periodic
job every period. :class:`OncePerPeriodHuey` queues a periodic job only when the process wins
the claim of ``(job name, period start)`` (a row in the shared state store, see
:mod:`connector.state.periodic_runs`): each job runs once per period across the fleet,
whatever the queue backend and however many workers there are. Its tasks also ride out an
unreachable state store (a PostgreSQL restart): the run ends with a warning and is retried a
second later, rather than huey's "unhandled exception" error. :class:`InProcessWorker` runs
huey's consumer threads inside ``connector serve``; ``connector worker`` runs the consumer
in the foreground.
"""

from __future__ import annotations

import calendar
import datetime
import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import Huey
from huey.consumer import Consumer
from huey.exceptions import RetryTask
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from connector.errors import ConnectorError, StateStoreError
from connector.log_config import get_logger

log = get_logger(__name__)


def queue_file(state_url: str) -> Path:
    """Where the queue lives: beside a SQLite state file, else ``connector-queue.db`` here."""
    parsed = make_url(state_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        state = Path(str(parsed.database))
        return state.with_name(state.stem + ".queue.db")
    return Path("connector-queue.db")


ClaimPeriod = Callable[[str, int], bool]
"""``claim(job name, period start in epoch seconds)``: True for one caller per pair."""


def period_start(timestamp: datetime.datetime) -> int:
    """The minute ``timestamp`` falls in, as epoch seconds (a naive time is UTC, as huey's
    scheduler gives it with ``utc=True``): the period a periodic job is queued for."""
    minute = timestamp.replace(second=0, microsecond=0)
    if minute.tzinfo is not None:
        return int(minute.timestamp())
    return calendar.timegm(minute.timetuple())


STORE_RETRY_SECONDS = 1.0
"""How soon a task cut short by an unreachable state store runs again."""


def outage_tolerant(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` as a task that, when the state store cannot be reached, logs a warning and
    asks huey to run it again shortly (the work it would have done stays due in the store)."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (StateStoreError, SQLAlchemyError) as exc:
            error = exc.message if isinstance(exc, StateStoreError) else type(exc).__name__
            log.warning("worker.state_store_unavailable", task=function.__name__, error=error)
            raise RetryTask(delay=STORE_RETRY_SECONDS) from exc

    return run


class OncePerPeriodHuey(Huey):  # type: ignore[misc]  # huey ships no type hints
    """A huey whose scheduler queues a due periodic job only when ``claim_period`` grants
    this process the job's current period (None: every due job, as plain huey does).

    A claim that cannot be made (the state store is away) skips the period: the next period
    runs the job, and the sweeps it would have done are nets under wake-ups anyway.
    """

    def __init__(self, name: str, *, claim_period: ClaimPeriod | None, **kwargs: Any) -> None:
        self.claim_period = claim_period
        super().__init__(name, **kwargs)

    def task(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        """huey's ``task`` decorator, the function made :func:`outage_tolerant`."""
        decorate = super().task(*args, **kwargs)
        return lambda function: decorate(outage_tolerant(function))

    def periodic_task(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        """huey's ``periodic_task`` decorator, the function made :func:`outage_tolerant`."""
        decorate = super().periodic_task(*args, **kwargs)
        return lambda function: decorate(outage_tolerant(function))

    def read_periodic(self, timestamp: datetime.datetime | None = None) -> list[Any]:
        """The periodic tasks to queue now: those due whose period this process claimed."""
        if timestamp is None:
            timestamp = self._get_timestamp()
        due: list[Any] = super().read_periodic(timestamp)
        if self.claim_period is None or not due:
            return due
        start = period_start(timestamp)
        return [task for task in due if self._claimed(str(task.name), start)]

    def _claimed(self, name: str, start: int) -> bool:
        assert self.claim_period is not None
        try:
            return self.claim_period(name, start)
        except ConnectorError as exc:
            log.warning("worker.periodic_claim_failed", task=name, error=exc.message[:200])
            return False


REDIS_READ_TIMEOUT = 1
"""Seconds a blocking pop waits before the consumer looks at its schedule again (a task
arriving meanwhile ends the wait at once)."""


def make_huey(
    state_url: str,
    *,
    queue_url: str | None = None,
    claim_period: ClaimPeriod | None = None,
    memory: bool = False,
) -> Huey:
    """The queue: Redis at ``queue_url`` when given, else a SQLite file for the state store
    (``memory``: an in-process queue, for tests). Periodic jobs are queued only for periods
    ``claim_period`` grants (None: every consumer queues them). Nothing connects until the
    first use."""
    common: dict[str, Any] = {"claim_period": claim_period, "results": False, "utc": True}
    if memory:
        return OncePerPeriodHuey("connector", storage_class=MemoryStorage, **common)
    if queue_url:
        return OncePerPeriodHuey(
            "connector",
            storage_class=RedisStorage,
            url=queue_url,
            blocking=True,
            read_timeout=REDIS_READ_TIMEOUT,
            **common,
        )
    path = queue_file(state_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    # fsync off: a queued task is only a wake-up call (the journal is the durable record and
    # the periodic sweep finds whatever a lost task would have), so the queue never competes
    # with journal appends for the disk.
    return OncePerPeriodHuey(
        "connector", storage_class=ShortWalStorage, filename=str(path), fsync=False, **common
    )


QUEUE_WAL_PAGES = 16
"""Pages the queue's WAL may hold before it is copied back into the database (SQLite's
default: 1,000)."""


class ShortWalStorage(SqliteStorage):  # type: ignore[misc]  # huey ships no type hints
    """huey's SQLite storage with a short WAL (:data:`QUEUE_WAL_PAGES`).

    With fsync off, nothing the queue writes is flushed by the queue: the kernel writes its
    dirty pages back on its own schedule. With SQLite's default WAL of 1,000 pages, a steady
    200 webhooks/s cycled the queue's WAL through 4 MB, and the kernel's writeback sent 4-7 MB
    to the disk within 100 ms; the journal's next flush had to persist all of it (a virtual
    disk with no FUA persists everything written before a flush). Checkpointed every 16
    pages, the queue rewrites the same 64 KB of WAL and its small database, and the
    writeback has little to send.
    """

    def _create_connection(self) -> Any:
        conn = super()._create_connection()
        conn.execute(f"PRAGMA wal_autocheckpoint={QUEUE_WAL_PAGES}")
        return conn


class Nudger:
    """Calls ``enqueue`` from a background thread after ``nudge()``, coalescing bursts: at
    most one call per ``min_interval`` seconds, however many nudges came meanwhile.

    The first nudge after a quiet spell is passed on at once; nudges that come while a call
    runs or within ``min_interval`` after it become one more call when the interval is over.
    (The pause once waited on the nudge event itself, which the next nudge set at once: under
    a steady 200 webhooks/s the web process queued 3,727 drains for 4,000 webhooks, each one
    an insert in the queue and a drain run in the worker.)
    """

    def __init__(self, enqueue: Callable[[], None], min_interval: float = 0.05) -> None:
        self._enqueue = enqueue
        self._interval = min_interval
        self._event = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="journal-nudger", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Ask for a drain soon (never blocks; a no-op while one is already asked for)."""
        if not self._event.is_set():
            self._event.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._event.wait()
            if self._stopping.is_set():
                return
            self._event.clear()
            try:
                self._enqueue()
            except Exception as exc:
                log.warning("worker.nudge_failed", error=type(exc).__name__)
            self._stopping.wait(self._interval)  # let a burst coalesce into one drain

    def close(self) -> None:
        """Stop the thread."""
        self._stopping.set()
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
