"""Sending-rate benchmark: is each sender's rate held across processes sharing a state store?

Run ``python -m benchmarks.send_rate_bench [--duration 20] [--only NAME ...]``. It prints one
table row per candidate and sender. Not a test: nothing fails on a number.

Two processes (spawned) of four threads each send for ``--duration`` seconds as fast as the
limiter lets them, on three senders limited to 5, 10 and 20 messages per second (thread i
of each process sends for sender i mod 3, so every sender is contended by both processes).
A thread asks the limiter, waits as told, then "sends" (records the time). Per sender:

* ratio: sends per second achieved over the run (first second left out) / the target;
  the product design asks for 0.95 to 1.05;
* burst: the most sends in any window of 1/rate seconds (1 when evenly spaced; 2 as soon as
  one send is late by a millisecond and the next is on time), and min gap: the shortest time
  between two sends as a fraction of 1/rate;
* 429s: sends the Twilio simulator's sender limit (``sender_rate_limit_mps``: 5 % tolerance,
  two tokens) would refuse, replaying the recorded send times through its token bucket;
* ms/send: time spent in the limiter's database calls per send (sleeping excluded), and
  tries: database calls per send (above 1 means polling).

Candidates:

* ``store-sqlite`` / ``store-postgresql``: :class:`connector.state.send_rate.StateStoreSendRate`
  (one GCRA reservation statement per send) on a SQLite state-store file / a throwaway
  PostgreSQL server (skipped when PostgreSQL is not installed);
* ``pyrate-sqlite``: pyrate-limiter 3.x ``SQLiteBucket`` in the same SQLite file, one table
  per sender, ``Rate(1, 1000/rate ms)``, shared across processes with its ``use_file_lock``
  (the ``filelock`` package), its limiter blocking (``max_delay``,
  ``retry_until_max_delay=True``), as its documentation advises for several processes, and
  ``buffer_ms=1`` (its default of 50 ms halves a 20/s rate; 0 livelocks: the bucket's window
  includes its bound, so the put at the computed time fails and ``waiting()`` answers 0);
* ``pyrate-sqlite-poll``: the same bucket without blocking: the thread polls every 10 ms;
* ``pyrate-postgresql``: pyrate-limiter 3.x ``PostgresBucket`` (needs ``psycopg_pool``),
  blocking limiter as above.

pyrate-limiter, filelock and psycopg_pool are not dependencies of the connector: to measure
them, ``pip install --target DIR 'pyrate-limiter<4' filelock psycopg-pool`` and put DIR on
``PYTHONPATH``; rows whose packages are missing are skipped. ``limits`` is not a candidate: its
storages are memory (one process), Redis, Memcached and MongoDB, none of them the state store.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import multiprocessing
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

from connector.emulators.twilio.throttle import SenderThrottle
from connector.state.db import StateStore
from connector.state.send_rate import StateStoreSendRate
from connector.testing.postgres import find_postgres_bin, start_postgres

TARGETS = {"sender-5": 5.0, "sender-10": 10.0, "sender-20": 20.0}
PROCESSES, THREADS = 2, 4
POLL_S = 0.010
CANDIDATES = (
    "store-sqlite",
    "store-postgresql",
    "pyrate-sqlite",
    "pyrate-sqlite-poll",
    "pyrate-postgresql",
)


@dataclass
class Meter:
    """Time spent in database calls and how many were made (one process)."""

    seconds: float = 0.0
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, call: Callable[..., Any]) -> Callable[..., Any]:
        """``call``, metered."""

        def metered(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                with self.lock:
                    self.seconds += time.perf_counter() - started
                    self.calls += 1

        return metered


Acquire = Callable[[str, float], None]


def store_acquirer(url: str, meter: Meter) -> Acquire:
    """The state-store reservation: reserve a slot, sleep until it."""
    rate = StateStoreSendRate(StateStore.from_url(url))
    reserve = meter.timed(rate.reserve)

    def acquire(key: str, per_second: float) -> None:
        at = reserve(key, per_second, time.time())
        time.sleep(max(0.0, at - time.time()))

    return acquire


def _optional(module: str) -> Any:
    """A package the connector does not depend on (imported only when measured)."""
    return importlib.import_module(module)


def _pyrate_bucket(backend: str, where: str, key: str, per_second: float) -> Any:
    pyrate = _optional("pyrate_limiter")
    rates = [pyrate.Rate(1, round(1000 / per_second))]
    if backend == "sqlite":
        return pyrate.SQLiteBucket.init_from_file(rates, table=key.replace("-", "_"),
                                                  db_path=where, use_file_lock=True)  # fmt: skip
    pool_class = _optional("psycopg_pool").ConnectionPool
    pool = pool_class(where.replace("+psycopg", ""), min_size=2, max_size=THREADS, open=True)
    return pyrate.PostgresBucket(pool, key.replace("-", "_"), rates)


def pyrate_acquirer(backend: str, where: str, meter: Meter, poll: bool) -> Acquire:
    """pyrate-limiter 3.x: one bucket and limiter per sender; blocking, or polling."""
    limiter_class = _optional("pyrate_limiter").Limiter
    limiters = {}
    for key, per_second in TARGETS.items():
        bucket = _pyrate_bucket(backend, where, key, per_second)
        for name in ("put", "peek"):  # the send path (its background leak is left out)
            setattr(bucket, name, meter.timed(getattr(bucket, name)))
        delay = None if poll else 60_000
        limiters[key] = limiter_class(
            bucket, raise_when_fail=False, max_delay=delay, retry_until_max_delay=True, buffer_ms=1
        )

    def acquire(key: str, _per_second: float) -> None:
        while not limiters[key].try_acquire(key):
            time.sleep(POLL_S)

    return acquire


def make_acquirer(candidate: str, where: str, meter: Meter) -> Acquire:
    """The acquire function of ``candidate`` on the database at ``where``."""
    if candidate.startswith("store-"):
        return store_acquirer(where, meter)
    backend = "postgresql" if candidate == "pyrate-postgresql" else "sqlite"
    return pyrate_acquirer(backend, where, meter, poll=candidate.endswith("-poll"))


def worker(candidate: str, where: str, duration: float, start: Any, out: Any) -> None:
    """One process: its threads' send times (or why it failed) put on ``out``."""
    try:
        out.put(send_for(candidate, where, duration, start))
    except Exception as exc:  # reported under the table; the other candidates still run
        start.abort()
        out.put({"error": f"{type(exc).__name__}: {exc}"})


def send_for(candidate: str, where: str, duration: float, start: Any) -> dict[str, Any]:
    """THREADS threads sending until the run ends."""
    meter = Meter()
    acquire = make_acquirer(candidate, where, meter)
    sends: dict[str, list[float]] = {key: [] for key in TARGETS}
    keys = list(TARGETS)
    start.wait(timeout=120)
    until = time.time() + duration

    def send_loop(key: str) -> None:
        while time.time() < until:
            acquire(key, TARGETS[key])
            sends[key].append(time.time())

    threads = [threading.Thread(target=send_loop, args=(keys[i % len(keys)],))
               for i in range(THREADS)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"sends": sends, "seconds": meter.seconds, "calls": meter.calls}


def run(candidate: str, where: str, duration: float) -> dict[str, Any]:
    """Both processes of one candidate; their send times merged per sender."""
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(PROCESSES), context.Queue()
    processes = [context.Process(target=worker, args=(candidate, where, duration, start, out))
                 for _ in range(PROCESSES)]  # fmt: skip
    for process in processes:
        process.start()
    results = [out.get(timeout=duration + 300) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    errors = sorted({r["error"] for r in results if "error" in r})
    if errors:
        raise RuntimeError("; ".join(errors))
    sends = {key: sorted(t for r in results for t in r["sends"][key]) for key in TARGETS}
    calls = sum(r["calls"] for r in results)
    return {"sends": sends, "seconds": sum(r["seconds"] for r in results), "calls": calls}


def max_burst(times: list[float], window: float) -> int:
    """The most sends in any half-open window of ``window`` seconds."""
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def min_gap(times: list[float], per_second: float) -> float:
    """The shortest time between two sends, as a fraction of 1/rate (1.0 when even)."""
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return min(gaps) * per_second if gaps else float("nan")


def refused_by_simulator(times: list[float], per_second: float) -> int:
    """How many of ``times`` the simulator's sender limit would answer with 429."""
    now = [0.0]
    throttle = SenderThrottle(clock=lambda: now[0])
    for at in times:
        now[0] = at
        throttle.admit("sender", per_second)
    return throttle.counts().get("sender", 0)


def rows(candidate: str, result: dict[str, Any], duration: float) -> list[list[str]]:
    """Table rows of one candidate, one per sender."""
    all_times = [t for times in result["sends"].values() for t in times]
    sent = len(all_times)
    began = min(all_times) if all_times else 0.0
    cost_ms = result["seconds"] * 1000 / max(sent, 1)
    tries = result["calls"] / max(sent, 1)
    out = []
    for key, per_second in TARGETS.items():
        times = result["sends"][key]
        steady = [t for t in times if began + 1.0 <= t < began + duration]
        ratio = len(steady) / (duration - 1.0) / per_second
        burst = max_burst(times, 1.0 / per_second)
        refused = refused_by_simulator(times, per_second)
        gap = min_gap(times, per_second)
        out.append([candidate, f"{per_second:g}", f"{ratio:.3f}", str(burst), f"{gap:.2f}",
                    str(refused),
                    f"{cost_ms:.2f}", f"{tries:.2f}"])  # fmt: skip
    return out


def available(candidate: str, postgres_url: str | None) -> str | None:
    """Why ``candidate`` cannot run here, or None."""
    if candidate.endswith("postgresql") and postgres_url is None:
        return "PostgreSQL is not installed"
    needs = {"pyrate": "pyrate_limiter", "pyrate-sqlite": "filelock",
             "pyrate-postgresql": "psycopg_pool"}  # fmt: skip
    for prefix, module in needs.items():
        if candidate.startswith(prefix):
            try:
                _optional(module)
            except ImportError:
                return f"{module} is not installed"
    return None


def database(candidate: str, folder: Path, postgres_url: str | None) -> str:
    """A fresh database for ``candidate``: a SQLite state-store file, or a PostgreSQL one."""
    if not candidate.endswith("postgresql"):
        path = folder / f"{candidate}.sqlite"  # pyrate's SQLiteBucket insists on .sqlite
        return str(path) if candidate.startswith("pyrate") else f"sqlite:///{path}"
    assert postgres_url is not None
    name = candidate.replace("-", "_")
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    if candidate.startswith("pyrate"):  # its CREATE TABLE IF NOT EXISTS races between processes
        pyrate_acquirer("postgresql", url, Meter(), poll=False)
    return url


def main() -> None:
    """Run every candidate that can run here and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per candidate")
    parser.add_argument("--only", nargs="*", choices=CANDIDATES, default=list(CANDIDATES))
    args = parser.parse_args()
    wants_pg = any(c.endswith("postgresql") for c in args.only) and find_postgres_bin()
    server = start_postgres() if wants_pg else None
    table = Table(title=f"Sending rate: {PROCESSES} processes x {THREADS} threads, "
                        f"{args.duration:g} s per candidate")  # fmt: skip
    columns = ("candidate", "target/s", "ratio", "burst", "min gap", "429s", "ms/send", "tries")
    for column in columns:
        table.add_column(column)
    skipped = []
    try:
        with tempfile.TemporaryDirectory(prefix="send-rate-") as folder:
            for candidate in args.only:
                reason = available(candidate, server.url if server else None)
                if reason:
                    skipped.append(f"{candidate}: {reason}")
                    continue
                where = database(candidate, Path(folder), server.url if server else None)
                try:
                    result = run(candidate, where, args.duration)
                except RuntimeError as exc:
                    skipped.append(f"{candidate}: failed: {exc}")
                    continue
                for row in rows(candidate, result, args.duration):
                    table.add_row(*row)
    finally:
        if server:
            server.stop()
    Console(width=120).print(table)
    for line in skipped:
        Console().print(f"skipped {line}", highlight=False)


if __name__ == "__main__":
    main()
