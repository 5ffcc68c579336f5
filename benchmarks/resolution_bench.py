"""Record-resolution benchmark: phone index build time and lookup latency, sync request count.

Run ``python -m benchmarks.resolution_bench [--records N] [--lookups N] [--postgres]``
(defaults: 1,000,000 records, 20,000 lookups, SQLite only). It prints a table of figures and
each figure's ratio to its goal (product design section 10: a lookup under 1 ms at 1,000,000
indexed records). Not a test: nothing fails on a number.

1. Build: a fresh SQLite state store file is filled the way a full sync fills it (pages of
   5,000 records through ``PhoneIndex.replace``); 10 % of the records carry a second number.
2. Lookup: random keys, 90 % present and 10 % absent, through ``PhoneIndex.lookup`` (the
   resolver's own call), one at a time; p50 / p99 / max.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from connector.domain.phone_records import IndexEntry
from connector.domain.routing import Candidate, RecordRef
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex
from connector.testing.postgres import start_postgres

PAGE = 5000
LOOKUP_GOAL_MS = 1.0


def key_of(i: int) -> str:
    """A distinct US-style lookup key per record number."""
    return f"1{200 + i // 10_000_000:03d}{i % 10_000_000:07d}"


def build(index: PhoneIndex, records: int) -> float:
    """Seconds to index ``records`` records in full-sync pages."""
    when = datetime(2025, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    for first in range(0, records, PAGE):
        page: dict[RecordRef, list[IndexEntry]] = {}
        for i in range(first, min(first + PAGE, records)):
            ref = RecordRef("contact", f"{i:08d}-0000-0000-0000-000000000000")
            cand = Candidate(ref, f"Contact {i}", "owner", False, True, when, "mobilephone")
            entries = [IndexEntry(key_of(i), cand)]
            if i % 10 == 0:
                entries.append(IndexEntry(key_of(i + records), cand))
            page[ref] = entries
        index.replace(page)
    return time.perf_counter() - started


def lookups(index: PhoneIndex, records: int, count: int) -> list[float]:
    """Milliseconds per lookup for ``count`` random keys (10 % misses)."""
    rng = random.Random(7)
    keys = [key_of(rng.randrange(records * (10 if n % 10 == 0 else 1))) for n in range(count)]
    timings = []
    for key in keys:
        started = time.perf_counter()
        index.lookup(key)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument(
        "--postgres", action="store_true", help="also measure on a throwaway PostgreSQL server"
    )
    args = parser.parse_args(argv)

    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += index_figures("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args)
    if args.postgres:
        server = start_postgres()
        try:
            rows += index_figures("postgresql", server.url, args)
        finally:
            server.stop()
    render(rows)


def index_figures(name: str, url: str, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """Build and lookup figures for one state-store backend."""
    store = StateStore.from_url(url)
    index = PhoneIndex(store)
    seconds = build(index, args.records)
    rows = [
        (f"{name}: index build, {args.records:,} records", f"{seconds:.1f} s", "-"),
        (f"{name}: index rows", f"{index.count():,}", "-"),
        (f"{name}: build rate", f"{args.records / seconds:,.0f} records/s", "-"),
    ]
    timings = lookups(index, args.records, args.lookups)
    for label, value in (
        ("lookup p50", percentile(timings, 0.50)),
        ("lookup p99", percentile(timings, 0.99)),
        ("lookup max", max(timings)),
        ("lookup mean", statistics.fmean(timings)),
    ):
        ratio = f"{value / LOOKUP_GOAL_MS:.2f} x 1 ms goal"
        rows.append((f"{name}: {label}", f"{value:.3f} ms", ratio))
    index.close()
    store.close()
    return rows


def render(rows: list[tuple[str, str, str]]) -> None:
    """Print the figures as a table."""
    table = Table(title="record resolution")
    for column in ("figure", "value", "ratio to goal"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
