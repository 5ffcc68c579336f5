"""State store benchmark: the worker's claims and sweeps beside deep backlogs and long histories.

Run ``python -m benchmarks.state_bench [--backlog N] [--history N] [--samples N]`` (defaults:
100,000 journal rows waiting, as after an outage; a history of 300,000 rows: done journal rows,
as a week's retention keeps at half a message a second, and sent, synced outbox messages,
which the outbox keeps; 30 samples). Each store is a SQLite file made as ``connector serve``
makes it (the rows go in through SQLite directly, so that filling it takes seconds). It prints
the median time of each operation the worker repeats and its ratio to the goal: each holds
(claims, prune) or reads beside (probes) a lock that webhooks and sends wait for, so each must
stay in milliseconds whatever the store holds. Not a test: nothing fails on a number.

1. Journal: ``claim(50)`` (then the done marks, as the worker does) and ``due_depth(50)`` with
   the backlog waiting, the same beside the done history, and the minutely ``prune`` of rows
   done more than a week ago when none is.
2. Outbox: ``claim_sends(50)`` and ``claim_unsynced(50)`` (2,000 messages of one sender
   waiting, 2,000 versions Dataverse lacks) and ``next_sync_due`` beside the history.
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

from connector.domain.outbound import OutboundMessage
from connector.state.db import StateStore
from connector.state.journal import Journal
from connector.state.journal_table import DONE, PENDING
from connector.state.outbox import Outbox

GOAL_MS = 5.0
WEEK = 7 * 24 * 3600.0
WAITING = 2_000
JOURNAL_INSERT = (
    "INSERT INTO ingress_journal (provider, event_id, received_at, payload, status, attempts,"
    " next_attempt_at, done_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def median_ms(action: Callable[[], object], samples: int) -> float:
    times = []
    for _ in range(samples):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def filled_journal(path: Path, waiting: int, done: int) -> Journal:
    """A journal file with ``done`` rows done an hour ago, then ``waiting`` rows due."""
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
        conn.executemany(JOURNAL_INSERT, rows)
    return Journal(StateStore.from_url(f"sqlite:///{path}"))


def journal_steps(journal: Journal, samples: int) -> tuple[float, float]:
    """Median ms of ``claim(50)`` with its done marks, and of ``due_depth(50)``."""

    def claim() -> None:
        journal.mark_done_many(journal.claim(50))

    return median_ms(claim, samples), median_ms(lambda: journal.due_depth(50), samples)


def filled_outbox(path: Path, history: int) -> Outbox:
    """An outbox file: ``history`` sent and synced messages, then ``WAITING`` messages of
    one sender to send and ``WAITING`` changed ones whose latest version Dataverse lacks."""
    first = Outbox(StateStore.from_url(f"sqlite:///{path}"))
    at = time.time() - 3600
    message = OutboundMessage(
        id="template",
        configuration_id="c1",
        to_number="+14155550100",
        from_number="+15005550006",
        body="Hello",
        session_id="s1",
        created_at=at,
        updated_at=at,
    )
    first.add(message, {})
    first.close()
    with sqlite3.connect(path) as conn:
        names = [row[1] for row in conn.execute("PRAGMA table_info(outbox)")]
        varied = ("id", "idempotency_key", "send_state", "version", "synced_version", "updated_at")
        kept = [name for name in names if name not in varied]
        template = conn.execute(f"SELECT {', '.join(kept)} FROM outbox").fetchone()  # noqa: S608
        insert = (
            f"INSERT INTO outbox ({', '.join(varied)}, {', '.join(kept)}) "  # noqa: S608
            f"VALUES ({', '.join('?' * (len(varied) + len(kept)))})"
        )
        conn.execute("DELETE FROM outbox")
        rows = [(f"h{n}", None, "handed", 3, 3, at + n * 1e-3, *template) for n in range(history)]
        rows += [(f"w{n}", None, "waiting", 1, 1, at, *template) for n in range(WAITING)]
        rows += [(f"u{n}", None, "handed", 2, 1, at + n * 1e-3, *template) for n in range(WAITING)]
        conn.executemany(insert, rows)
    return Outbox(StateStore.from_url(f"sqlite:///{path}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=300_000)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    history, samples = args.history, args.samples
    figures: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        backlog = filled_journal(directory / "backlog.db", args.backlog, 0)
        claim, depth = journal_steps(backlog, samples)
        backlog.close()
        figures += [
            (f"journal claim(50) and its done marks, {args.backlog:,} rows waiting", claim),
            (f"journal due_depth(50), {args.backlog:,} rows waiting", depth),
        ]
        kept = filled_journal(directory / "kept.db", 50 * samples, history)
        claim, depth = journal_steps(kept, samples)
        prune = median_ms(lambda: kept.prune(time.time() - WEEK), samples)
        kept.close()
        figures += [
            (f"journal claim(50) and its done marks beside {history:,} done rows", claim),
            (f"journal due_depth(50) beside {history:,} done rows", depth),
            (f"journal prune of week-old rows beside {history:,} newer ones", prune),
        ]
        outbox = filled_outbox(directory / "outbox.db", history)
        now = time.time()
        sends = median_ms(lambda: outbox.claim_sends("c1", 50, lease_seconds=60, now=now), 20)
        syncs = median_ms(lambda: outbox.claim_unsynced(50, now=now), 20)
        due = median_ms(outbox.next_sync_due, samples)
        outbox.close()
        figures += [
            (f"outbox claim_sends(50) beside {history:,} sent messages", sends),
            (f"outbox claim_unsynced(50) beside {history:,} synced messages", syncs),
            (f"outbox next_sync_due beside {history:,} synced messages", due),
        ]
    table = Table(title="State store (SQLite files): the worker's steps, median of each")
    for column in ("operation", "median", "goal", "ratio to goal"):
        table.add_column(column)
    for name, value in figures:
        table.add_row(name, f"{value:.2f} ms", f"< {GOAL_MS:g} ms", f"{value / GOAL_MS:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
