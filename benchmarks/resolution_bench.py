"""Record-resolution benchmark: phone index build time and lookup latency, sync request count.

Run ``python -m benchmarks.resolution_bench [--records N] [--lookups N] [--postgres]``
(defaults: 1,000,000 records, 20,000 lookups, SQLite only). It prints a table of figures and
each figure's ratio to its goal (product design section 10: a lookup under 1 ms at 1,000,000
indexed records). Not a test: nothing fails on a number.

1. Build: a fresh SQLite state store file is filled the way a full sync fills it (pages of
   5,000 records through ``PhoneIndex.replace``); 10 % of the records carry a second number.
2. Lookup: random keys, 90 % present and 10 % absent, through ``PhoneIndex.lookup`` (the
   resolver's own call), one at a time; p50 / p99 / max.
3. Sync (``--sync-contacts N``, default 20,000): the Dataverse emulator on loopback holds N
   contacts; a full sync, an incremental one with nothing changed and one after 100 updates
   (change tracking), then one resolution from the index and one index miss; each figure is
   the request count from the emulator's ``/_emulator/stats`` (and the wall time).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import requests
from rich.console import Console
from rich.table import Table

from connector.bootstrap.server_thread import running
from connector.crm.phone_directory import DataversePhoneDirectory
from connector.dataverse.auth import StaticTokenProvider
from connector.dataverse.batch import BatchOperation
from connector.dataverse.client import DataverseClient
from connector.dataverse.transport import WebApi
from connector.domain.phone import lookup_key, search_variants
from connector.domain.phone_records import IndexEntry
from connector.domain.record_types import standard_spec
from connector.domain.routing import Candidate, RecordRef, SenderContext
from connector.emulators.dataverse.app import create_emulator_app
from connector.log_config import configure_logging
from connector.services.phone_sync import PhoneSync
from connector.services.resolution import RecordResolutionService
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex
from connector.state.resolution_ledger import ResolutionLedger
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
    parser.add_argument(
        "--sync-contacts",
        type=int,
        default=20_000,
        help="contacts in the emulator for the sync figures (0 skips them)",
    )
    args = parser.parse_args(argv)
    configure_logging("WARNING")

    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += index_figures("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args)
    if args.postgres:
        server = start_postgres()
        try:
            rows += index_figures("postgresql", server.url, args)
        finally:
            server.stop()
    if args.sync_contacts:
        with tempfile.TemporaryDirectory() as tmp:
            rows += sync_figures(args.sync_contacts, Path(tmp))
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
    rounds = [lookups(index, args.records, args.lookups) for _ in range(3)]
    timings = min(rounds, key=lambda r: percentile(r, 0.99))
    for label, value in (
        ("lookup p50", percentile(timings, 0.50)),
        ("lookup p99 (best of 3 rounds)", percentile(timings, 0.99)),
        ("lookup p99 (worst round)", max(percentile(r, 0.99) for r in rounds)),
        ("lookup max", max(timings)),
        ("lookup mean", statistics.fmean(timings)),
    ):
        ratio = f"{value / LOOKUP_GOAL_MS:.2f} x 1 ms goal"
        rows.append((f"{name}: {label}", f"{value:.3f} ms", ratio))
    rows.append((f"{name}: load average while measuring", f"{os.getloadavg()[0]:.1f}", "-"))
    index.close()
    store.close()
    return rows


def _emulator_requests(url: str) -> int:
    return int(requests.get(f"{url}/_emulator/stats", timeout=30).json()["requests"])


def _seed_contacts(client: DataverseClient, count: int) -> list[str]:
    """``count`` contacts with US numbers typed as people type them, 1000 per $batch."""
    ids: list[str] = []
    for first in range(0, count, 1000):
        ops = [
            BatchOperation(
                "POST",
                "contacts",
                {"lastname": f"C{i}", "mobilephone": f"(415) {200 + i // 10_000}-{i % 10_000:04d}"},
            )
            for i in range(first, min(first + 1000, count))
        ]
        ids += [str(r.entity_id) for r in client.execute_batch(ops)]
    return ids


def sync_figures(contacts: int, tmp: Path) -> list[tuple[str, str, str]]:
    """Dataverse requests of full and incremental syncs and of resolution, from emulator stats."""
    rows: list[tuple[str, str, str]] = []
    with running(create_emulator_app()) as url:
        api = WebApi(url, StaticTokenProvider("bench"), requests.Session())
        client = DataverseClient(api)
        ids = _seed_contacts(client, contacts)
        store = StateStore.from_url(f"sqlite:///{tmp / 'sync.db'}")
        index = PhoneIndex(store)
        directory = DataversePhoneDirectory(client)
        sync = PhoneSync(directory, index, lookup_key)
        tracked = standard_spec("contact", change_tracking=True)

        def measured(label: str, run: Callable[[], object], per: int | None = None) -> None:
            before, started = _emulator_requests(url), time.perf_counter()
            run()
            spent, seconds = _emulator_requests(url) - before, time.perf_counter() - started
            ratio = f"{per / spent:,.0f} records/request" if per and spent else "-"
            rows.append((label, f"{spent} requests, {seconds:.2f} s", ratio))

        measured(
            f"sync: full, {contacts:,} contacts (pages of 5,000)",
            lambda: sync.run([standard_spec("contact")], "US", full=True),
            contacts,
        )
        measured(
            "sync: full, change tracking (emulator: one page)",
            lambda: sync.run([tracked], "US", full=True),
            contacts,
        )
        measured("sync: incremental, nothing changed", lambda: sync.run([tracked], "US"))
        for rid in ids[:100]:
            client.update("contacts", rid, {"mobilephone": "+1 415 555 0100"})
        measured("sync: incremental, 100 changed (delta)", lambda: sync.run([tracked], "US"), 100)
        resolver = RecordResolutionService(
            index,
            ResolutionLedger(store),
            directory,
            lookup_key=lookup_key,
            variants=search_variants,
            normalize=lookup_key,
        )
        sender = SenderContext("bench", default_country="US")
        measured("resolve: number in the index", lambda: resolver.resolve("+14152000500", sender))
        client.create("contacts", {"lastname": "New", "mobilephone": "415-999-0001"})
        measured(
            "resolve: index miss (live $batch)", lambda: resolver.resolve("+14159990001", sender)
        )
        index.close()
        store.close()
        api.close()
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
