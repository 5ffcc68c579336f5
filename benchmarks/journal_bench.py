"""Journal benchmark: claim, depth probe and prune beside a deep backlog or a week of done rows.

Run ``python -m benchmarks.journal_bench [--backlog N] [--done N] [--samples N]`` (defaults:
100,000 rows waiting, as after an outage; 300,000 done rows, as a week's retention keeps at
half a message a second; 30 samples). The journal is a SQLite file made as ``connector
serve`` makes it (the rows go in through SQLite directly, so that filling it takes seconds).
It prints the median time of each operation the worker repeats, and its ratio to the goal:
every one of them holds (claim, prune) or reads beside (depth) the lock that each webhook's
append waits for, so each must stay in milliseconds whatever the journal holds. Not a test:
nothing fails on a number.

1. ``claim(50)`` and ``due_depth(50)`` with the backlog waiting (each claimed batch is
   marked done, as the worker does).
2. The same with a few rows waiting beside the done rows (the steady state).
3. ``prune`` of rows done more than a week ago when none is (what the minutely sweep does).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from connector.state.db import StateStore
from connector.state.journal import DONE, PENDING, Journal

GOAL_MS = 5.0
WEEK = 7 * 24 * 3600.0
INSERT = (
    "INSERT INTO ingress_journal (provider, event_id, received_at, payload, status, attempts,"
    " next_attempt_at, done_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def filled(directory: Path, name: str, waiting: int, done: int) -> Journal:
    """A journal file with ``done`` rows done an hour ago, then ``waiting`` rows due."""
    path = directory / f"{name}.db"
    Journal(StateStore.from_url(f"sqlite:///{path}")).close()  # the table and its indexes
    now = time.time()
    rows: list[tuple[object, ...]] = [
        ("twilio", f"SM{n:032d}", now - 3600, "{}", DONE, 1, now - 3600, now - 3600 + n * 1e-3)
        for n in range(done)
    ]
    rows += [
        ("twilio", f"SM{n:032d}", now - 60, "{}", PENDING, 0, now - 60, None)
        for n in range(done, done + waiting)
    ]
    with sqlite3.connect(path) as conn:
        conn.executemany(INSERT, rows)
    return Journal(StateStore.from_url(f"sqlite:///{path}"))


def median_ms(action: Callable[[], object], samples: int) -> float:
    times = []
    for _ in range(samples):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def worker_steps(journal: Journal, samples: int) -> tuple[float, float]:
    """Median ms of ``claim(50)`` (each batch then marked done) and of ``due_depth(50)``."""

    def claim() -> None:
        journal.mark_done_many(journal.claim(50))

    return median_ms(claim, samples), median_ms(lambda: journal.due_depth(50), samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--done", type=int, default=300_000)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    figures: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        backlog = filled(directory, "backlog", args.backlog, 0)
        claim, depth = worker_steps(backlog, args.samples)
        figures += [
            (f"claim(50) and its done marks, {args.backlog:,} rows waiting", claim),
            (f"due_depth(50), {args.backlog:,} rows waiting", depth),
        ]
        backlog.close()
        kept = filled(directory, "kept", 50 * args.samples, args.done)
        claim, depth = worker_steps(kept, args.samples)
        prune = median_ms(lambda: kept.prune(time.time() - WEEK), args.samples)
        figures += [
            (f"claim(50) and its done marks beside {args.done:,} done rows", claim),
            (f"due_depth(50) beside {args.done:,} done rows", depth),
            (f"prune of week-old rows beside {args.done:,} newer ones", prune),
        ]
        kept.close()
    table = Table(title="Ingress journal (SQLite file): the worker's steps, median of each")
    for column in ("operation", "median", "goal", "ratio to goal"):
        table.add_column(column)
    for name, value in figures:
        table.add_row(name, f"{value:.2f} ms", f"< {GOAL_MS:g} ms", f"{value / GOAL_MS:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
