"""Durable writes at webhook rates: group commit, and cheaper commits for bookkeeping.

A SQLite commit with ``synchronous=FULL`` waits for the disk (milliseconds). Webhooks must
not queue behind each other's flushes, so :class:`GroupCommitter` runs one writer thread:
callers hand it rows and wait; it writes everything that queued up meanwhile in ONE
transaction (one flush) and answers each caller. Durability is unchanged: nobody is answered
before the flush that holds their row. What the writer does per batch is kept small: on a
SQLite file it keeps its connection, and a write may run statements compiled once for the
driver (:class:`~connector.state.driver_statement.DriverStatement`); waiters on an event loop are
answered with one wake-up of their loop per batch.

WAL checkpoints are taken off every write path: appends and bookkeeping connections never
checkpoint inside a commit; :class:`Checkpointer` runs a PASSIVE checkpoint every second.

Worker bookkeeping (claims, done marks, the session mirror) may lose its last moments in a
power cut without harm: every Dataverse write is an idempotent upsert and a lost claim or
done mark only makes a row be processed again. :func:`bookkeeping_engine` gives those writes
a connection with ``synchronous=NORMAL`` (no flush per commit; WAL keeps them consistent).

SQLite has one writer at a time, so how long the worker holds the write lock is how long a
webhook may wait. Bookkeeping connections therefore run in SQLite's autocommit mode: each
statement is its own transaction, taken and released inside one ``sqlite3_step`` with the
GIL released, never held while Python runs (another worker thread holding the GIL, or the
worker's lower CPU priority, would otherwise stretch a 0.1 ms write to tens of ms: measured
in the inbound benchmark). Bookkeeping is written as single statements; the rare write that
needs several goes through :func:`atomic` (``BEGIN IMMEDIATE`` ... ``COMMIT``).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from connector.errors import StateStoreError
from connector.state.db import StateStore, make_engine

T = TypeVar("T")
R = TypeVar("R")
_STOP = object()
_LOCK_WAIT_SECONDS = 10.0


def _pragmas(*pragmas: str) -> Callable[[Any, Any], None]:
    def apply(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    return apply


def _file_sqlite(store: StateStore) -> bool:
    return store.dialect == "sqlite" and not isinstance(store.engine.pool, StaticPool)


def _engine_with(store: StateStore, *pragmas: str) -> Engine:
    engine = make_engine(store.engine.url.render_as_string(hide_password=False))
    event.listen(engine, "connect", _pragmas(*pragmas))
    return engine


_AUTOCOMMIT = "connector_autocommit"


def _autocommit_engine(store: StateStore, *pragmas: str) -> Engine:
    """An engine whose SQLite connections autocommit from the moment they are opened (the
    driver's ``isolation_level = None``). Not SQLAlchemy's ``isolation_level="AUTOCOMMIT"``
    option: that one sets the level on every checkout and resets it on every return, which
    cost about 65 us of CPU per use (half of a consent read on the send path)."""
    engine = _engine_with(store, *pragmas)

    def autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    event.listen(engine, "connect", autocommit)
    return engine.execution_options(**{_AUTOCOMMIT: True})


def bookkeeping_engine(store: StateStore) -> Engine:
    """An engine on the same database whose commits do not wait for the disk (SQLite file).

    Its connections autocommit each statement (see the module note; use :func:`atomic` for
    a write of several statements) and never checkpoint the WAL themselves (a
    :class:`Checkpointer` does, off the write path). In-memory SQLite and PostgreSQL use
    the store's own engine.
    """
    if not _file_sqlite(store):
        return store.engine
    return _autocommit_engine(store, "PRAGMA synchronous=NORMAL", "PRAGMA wal_autocheckpoint=0")


def durable_engine(store: StateStore) -> Engine:
    """An engine for single-statement writes that must be on disk when they return (full
    sync) but, like bookkeeping, autocommit on a SQLite file: the write lock is taken and
    released (commit and flush included) inside one ``sqlite3_step`` with the GIL released,
    so a thread waiting for the GIL never holds the lock that the group commit waits for."""
    if not _file_sqlite(store):
        return store.engine
    return _autocommit_engine(store, "PRAGMA wal_autocheckpoint=0")


@contextmanager
def atomic(engine: Engine) -> Iterator[Connection]:
    """One transaction on ``engine``, also when its connections autocommit.

    On an autocommitting SQLite engine this is ``BEGIN IMMEDIATE`` (the write lock taken at
    once, so the transaction cannot fail half-way for want of it) ... ``COMMIT``, or
    ``ROLLBACK`` when the block raises; elsewhere it is ``engine.begin()``.
    """
    autocommit = bool(engine.get_execution_options().get(_AUTOCOMMIT))
    if engine.dialect.name != "sqlite" or not autocommit:
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.exec_driver_sql("COMMIT")
        except BaseException:
            if conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
                conn.exec_driver_sql("ROLLBACK")
            raise


def append_engine(store: StateStore) -> Engine:
    """The engine for durable appends: full sync, no WAL checkpoint inside a commit, and no
    busy timeout: SQLite's busy handler sleeps in growing steps (1, 2, 5, 10, 15, 20 ms...)
    after the lock is free again, so :class:`GroupCommitter` retries a locked write itself,
    at once and finely."""
    if not _file_sqlite(store):
        return store.engine
    return _engine_with(store, "PRAGMA wal_autocheckpoint=0", "PRAGMA busy_timeout=0")


class Checkpointer:
    """Copies the WAL into the database every ``interval`` seconds (PASSIVE: never blocks
    a writer), so commits on the webhook path never pay for a checkpoint."""

    def __init__(self, store: StateStore, interval: float = 0.25) -> None:
        self._engine = store.engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if _file_sqlite(store):
            self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with self._engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except SQLAlchemyError:
                continue  # busy or closing: the next round tries again

    def close(self) -> None:
        """Stop checkpointing (a last PASSIVE checkpoint is left to SQLite on close)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _LoopWaiter(NamedTuple):
    """A caller waiting on an event loop: the writer thread answers it on that loop."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


def _settle(answers: list[tuple[asyncio.Future[Any], Any]]) -> None:
    """On the waiters' loop: give each its result or exception (unless it stopped waiting)."""
    for future, answer in answers:
        if future.done():
            continue
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)


class GroupCommitter(Generic[R, T]):
    """Writes rows submitted by many threads in shared transactions (one flush per batch).

    ``write`` answers each row with its result, or with an exception for a row it refused
    (e.g. a conflict): that caller gets the exception, the batch's other rows are committed.

    On a SQLite file the writer thread keeps one connection for its life (a file connection
    never goes stale), so a batch pays for no pool checkout and return (a rollback) around
    its transaction; elsewhere (PostgreSQL: the pool's pre-ping notices a restarted server)
    each batch checks a connection out. Callers on an event loop await :meth:`submit_async`:
    the writer answers every waiter of a batch on one loop with one
    ``call_soon_threadsafe`` (one wake-up of the loop per batch, not one per row).
    """

    def __init__(
        self,
        engine: Engine,
        write: Callable[[Connection, Sequence[R]], Sequence[T | Exception]],
        *,
        max_batch: int = 256,
    ) -> None:
        self._engine = engine
        self._write = write
        self._max = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._hold = engine.dialect.name == "sqlite" and not isinstance(engine.pool, StaticPool)
        self._conn: Connection | None = None  # the writer thread's own, when held

    def submit(self, row: R, timeout: float = 30.0) -> T:
        """Write ``row``; returns once it is committed (raises :class:`StateStoreError`)."""
        try:
            return self.submit_nowait(row).result(timeout=timeout)
        except TimeoutError as exc:
            raise StateStoreError(f"no commit within {timeout:g} s") from exc

    def submit_nowait(self, row: R) -> Future[T]:
        """Queue ``row``; the future completes once it is committed (or with the error)."""
        self._start()
        done: Future[T] = Future()
        self._queue.put((row, done))
        return done

    async def submit_async(self, row: R, timeout: float = 30.0) -> T:
        """:meth:`submit` for a caller on an event loop: waits on the loop (no thread of its
        own per waiting request); raises :class:`StateStoreError` after ``timeout``."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        self._start()
        self._queue.put((row, _LoopWaiter(loop, waiter)))
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except TimeoutError as exc:
            raise StateStoreError(f"no commit within {timeout:g} s") from exc

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="journal-group-commit", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                while len(batch) < self._max:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        self._queue.put(_STOP)
                        break
                    batch.append(item)
                self._commit(batch)
        finally:
            self._release()

    def _commit(self, batch: list[tuple[R, Any]]) -> None:
        try:
            results: Sequence[Any] = self._write_retrying([row for row, _ in batch])
        except SQLAlchemyError as exc:
            error = StateStoreError(f"cannot append to the journal: {type(exc).__name__}")
            results = [error] * len(batch)
        except Exception as exc:  # answer every waiter whatever happened
            results = [exc] * len(batch)
        _answer([done for _, done in batch], results)

    def _write_retrying(self, rows: list[R]) -> Sequence[T | Exception]:
        """One transaction; a locked database is retried every 0.2 ms for up to 10 s."""
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        while True:
            try:
                return self._write_once(rows)
            except OperationalError as exc:
                locked = "locked" in str(exc.orig) or "busy" in str(exc.orig)
                if not locked or time.monotonic() > deadline:
                    raise
                time.sleep(0.0002)

    def _write_once(self, rows: list[R]) -> Sequence[T | Exception]:
        if not self._hold:
            with self._engine.begin() as conn:
                return self._write(conn, rows)
        if self._conn is None:
            self._conn = self._engine.connect()
        try:
            with self._conn.begin():
                return self._write(self._conn, rows)
        except OperationalError as exc:
            if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
                self._release()  # the next batch starts on a fresh connection
            raise
        except SQLAlchemyError:
            self._release()
            raise

    def _release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except SQLAlchemyError:
                return  # a broken connection: the pool drops it

    def close(self) -> None:
        """Finish what is queued and stop the thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=10)
            self._thread = None


def _answer(waiters: Sequence[Any], results: Sequence[Any]) -> None:
    """Give each waiter its result (an exception is raised to that waiter alone); waiters on
    an event loop are answered on their loop, all of one loop in one call."""
    on_loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
    for done, result in zip(waiters, results, strict=True):
        if isinstance(done, _LoopWaiter):
            on_loops.setdefault(done.loop, []).append((done.future, result))
        elif isinstance(result, Exception):
            done.set_exception(result)
        else:
            done.set_result(result)
    for loop, answers in on_loops.items():
        try:
            loop.call_soon_threadsafe(_settle, answers)
        except RuntimeError:  # the loop is closed: nobody waits there any more
            continue
