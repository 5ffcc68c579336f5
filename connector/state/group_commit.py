"""Durable writes at webhook rates: group commit, and cheaper commits for bookkeeping.

A SQLite commit with ``synchronous=FULL`` waits for the disk (milliseconds). Webhooks must
not queue behind each other's flushes, so :class:`GroupCommitter` runs one writer thread:
callers hand it rows and wait; it writes everything that queued up meanwhile in ONE
transaction (one flush) and answers each caller. Durability is unchanged: nobody is answered
before the flush that holds their row.

Worker bookkeeping (claims, done marks, the session mirror) may lose its last moments in a
power cut without harm: every Dataverse write is an idempotent upsert and a lost claim or
done mark only makes a row be processed again. :func:`bookkeeping_engine` gives those writes
a connection with ``synchronous=NORMAL`` (no flush per commit; WAL keeps them consistent).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from connector.errors import StateStoreError
from connector.state.db import StateStore, make_engine

T = TypeVar("T")
Row = Mapping[str, Any]
_STOP = object()


def _normal_sync(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def bookkeeping_engine(store: StateStore) -> Engine:
    """An engine on the same database whose commits do not wait for the disk (SQLite file).

    In-memory SQLite and PostgreSQL use the store's own engine.
    """
    engine = store.engine
    if store.dialect != "sqlite" or isinstance(engine.pool, StaticPool):
        return engine
    relaxed = make_engine(engine.url.render_as_string(hide_password=False))
    event.listen(relaxed, "connect", _normal_sync)
    return relaxed


class GroupCommitter(Generic[T]):
    """Writes rows submitted by many threads in shared transactions (one flush per batch)."""

    def __init__(
        self,
        engine: Engine,
        write: Callable[[Connection, Sequence[Row]], list[T]],
        *,
        max_batch: int = 256,
    ) -> None:
        self._engine = engine
        self._write = write
        self._max = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, row: Row, timeout: float = 30.0) -> T:
        """Write ``row``; returns once it is committed (raises :class:`StateStoreError`)."""
        self._start()
        done: Future[T] = Future()
        self._queue.put((row, done))
        return done.result(timeout=timeout)

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

    def _commit(self, batch: list[tuple[Row, Future[T]]]) -> None:
        try:
            with self._engine.begin() as conn:
                results = self._write(conn, [row for row, _ in batch])
        except SQLAlchemyError as exc:
            error = StateStoreError(f"cannot append to the journal: {type(exc).__name__}")
            for _, done in batch:
                done.set_exception(error)
            return
        except Exception as exc:  # answer every waiter whatever happened
            for _, done in batch:
                done.set_exception(exc)
            return
        for (_, done), result in zip(batch, results, strict=True):
            done.set_result(result)

    def close(self) -> None:
        """Finish what is queued and stop the thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=10)
            self._thread = None
