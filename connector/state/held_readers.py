"""Per-thread autocommit read connections for hot lookup paths (the phone index).

Checking a pooled connection out costs a pre-ping round trip and a rollback on return; on
PostgreSQL that doubles a one-row indexed lookup. :class:`HeldReaders` keeps one autocommit
connection per thread instead, for at most ``limit`` threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

_T = TypeVar("_T")


class HeldReaders:
    """Per-thread autocommit read connections for the hot lookup path.

    Checking a pooled connection out costs a pre-ping round trip and a rollback on return;
    a held autocommit connection costs neither, which halves lookup latency on PostgreSQL.
    At most ``limit`` threads hold one (the pool must stay free for writers); other threads,
    and in-memory SQLite (one shared connection), check out per call. A held connection that
    fails is dropped and the query retried once on a fresh one. :meth:`close_all` (through
    ``PhoneIndex.close``, registered with the container's closers) closes them at shutdown.
    """

    def __init__(self, engine: Engine, limit: int) -> None:
        self._engine = engine
        self._local = threading.local()
        in_memory = isinstance(engine.pool, StaticPool)
        self._slots = threading.BoundedSemaphore(0 if in_memory else max(limit, 0) or 1)
        self._enabled = not in_memory and limit > 0
        self._lock = threading.Lock()
        self._all: list[Connection] = []

    def run(self, work: Callable[[Connection], _T]) -> _T:
        conn = self._held()
        if conn is None:
            with self._engine.connect() as fresh:
                return work(fresh)
        try:
            return work(conn)
        except DBAPIError:
            self.release()
            with self._engine.connect() as fresh:
                return work(fresh)

    def _held(self) -> Connection | None:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None or not self._enabled:
            return conn
        if not self._slots.acquire(blocking=False):
            return None
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn

    def release(self) -> None:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            self._close(conn)

    def close_all(self) -> None:
        with self._lock:
            held, self._all = self._all, []
        for conn in held:
            self._close(conn, forget=False)
        self._local = threading.local()

    def _close(self, conn: Connection, *, forget: bool = True) -> None:
        if forget:
            with self._lock:
                if conn not in self._all:
                    return
                self._all.remove(conn)
        self._slots.release()
        try:
            conn.close()
        except SQLAlchemyError:
            conn.invalidate()
