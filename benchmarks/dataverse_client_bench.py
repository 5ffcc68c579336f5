"""Dataverse client benchmark against the emulator over real HTTP on 127.0.0.1.

Run ``python -m benchmarks.dataverse_client_bench [--rows N] [--processes P]``. Prints a table:

1. Client overhead: N sequential creates through :class:`DataverseClient` against the same N
   through a bare ``requests.Session`` (the baseline); the ratio is what auth, retries,
   the concurrency cap, error mapping and logging cost per request.
2. Concurrency: N creates from 8 threads (client cap 8).
3. ``$batch``: N creates in batches of 100 operations (rows per HTTP request).
4. Throttled: creates from 8 threads against an emulator limited to ``--limit`` requests per
   second, counted over a ``--window`` of seconds as Dataverse counts (its window is 300 s),
   for about ``--seconds``; the client shares its pause, pace and concurrency cap through a
   SQLite state store as ``connector serve`` does: once cold (nothing learned yet), once warm
   (the same store and emulator afterwards, as a fleet that keeps running or restarts). The
   achieved request rate against the limit, the 429s received, and whether every row arrived
   exactly once.
5. Fleet (``--processes P`` > 1): the same rows split over P OS processes of 8 threads each,
   sharing one state store (``--state-url``, else a fresh SQLite file) against one limited
   emulator; the fleet's achieved rate.

The 429s are counted by the emulator (every refused request, retries included) and given as
a share of the requests it received.

Not a test: nothing fails on a number.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from rich.console import Console
from rich.table import Table

from connector.bootstrap.server_thread import running
from connector.dataverse.auth import StaticTokenProvider
from connector.dataverse.batch import BatchOperation
from connector.dataverse.client import DataverseClient
from connector.dataverse.odata import eq
from connector.dataverse.pacing import PacingLaw
from connector.dataverse.protection import ServiceProtection
from connector.dataverse.retry import RetryPolicy
from connector.dataverse.transport import BASE_HEADERS, WebApi
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.limits import Limits
from connector.log_config import configure_logging
from connector.state.dataverse_pacing import StateStorePacing
from connector.state.db import StateStore

THREADS = 8


def _client(
    url: str, concurrency: int = THREADS, protection: ServiceProtection | None = None
) -> DataverseClient:
    api = WebApi(
        url,
        StaticTokenProvider("bench"),
        requests.Session(),
        max_concurrency=concurrency,
        retry=RetryPolicy(max_attempts=50, backoff_base=0.05, backoff_max=1.0),
        protection=protection,
    )
    return DataverseClient(api)


@dataclass(frozen=True)
class Fleet:
    """One throttled run: the emulator, the shared state store, the pacing law's window."""

    url: str
    state_url: str
    window: float
    marker: str


def _shared_client(fleet: Fleet) -> DataverseClient:
    """A client whose service protection lives in the fleet's state store (as ``serve``)."""
    store = StateStorePacing(StateStore.from_url(fleet.state_url))
    law = PacingLaw(initial_rate=25.0, window_seconds=fleet.window)
    protection = ServiceProtection(f"{fleet.url} bench", store, law, fleet_cap=32)
    return _client(fleet.url, protection=protection)


def _fleet_member(fleet: Fleet, rows: range, start: Any, results: Any) -> None:
    """One process of the fleet: wait for the start signal, create ``rows``, report times."""
    configure_logging("ERROR")
    client = _shared_client(fleet)
    start.wait()
    began = time.time()
    with ThreadPoolExecutor(THREADS) as pool:
        list(
            pool.map(
                lambda i: client.create(
                    "contacts", {"firstname": fleet.marker, "lastname": str(i)}
                ),
                rows,
            )
        )
    results.put((began, time.time()))


def fleet_creates(fleet: Fleet, rows: int, processes: int) -> float:
    """Seconds for ``rows`` creates split over ``processes`` OS processes (first start to
    last end)."""
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Event(), spawn.Queue()
    members = [
        spawn.Process(target=_fleet_member, args=(fleet, range(n, rows, processes), start, results))
        for n in range(processes)
    ]
    for member in members:
        member.start()
    time.sleep(2.0)  # let every process import and open the store before the clock starts
    start.set()
    spans = [results.get(timeout=600) for _ in members]
    for member in members:
        member.join()
        if member.exitcode:
            raise RuntimeError(f"a fleet process failed with exit code {member.exitcode}")
    return max(end for _, end in spans) - min(began for began, _ in spans)


def throttled_rows(args: argparse.Namespace, processes: int) -> list[tuple[str, ...]]:
    """A cold run (nothing learned) then a warm one (the same state store and emulator, as a
    fleet that restarts or keeps running) with ``processes`` (1: in this process)."""
    rows = int(args.limit * args.seconds)
    limits = Limits(requests_per_window=int(args.limit * args.window), window_seconds=args.window)
    table_rows = []
    with (
        tempfile.TemporaryDirectory() as folder,
        running(create_emulator_app(limits=limits)) as url,
    ):
        state_url = args.state_url or f"sqlite:///{Path(folder) / 'state.db'}"
        StateStore.from_url(state_url).close()  # tables made once, not raced by the fleet
        counter = _shared_client(Fleet(url, state_url, args.window, ""))  # counts rows after
        for phase in ("cold", "warm"):
            fleet = Fleet(url, state_url, args.window, f"thr-{uuid.uuid4().hex[:6]}")
            before = _stats(url)
            if processes == 1:
                seconds = client_creates(_shared_client(fleet), rows, THREADS, fleet.marker)
            else:
                seconds = fleet_creates(fleet, rows, processes)
            stats = _stats(url)
            arrived = list(
                counter.query("contacts", select=["lastname"], filter=eq("firstname", fleet.marker))
            )
            refused = stats["throttled"] - before["throttled"]
            sent = stats["requests"] - before["requests"]
            table_rows.append(
                _throttled_row(
                    args,
                    processes,
                    phase,
                    seconds=seconds,
                    sent=sent,
                    refused=refused,
                    arrived=arrived,
                )
            )
    return table_rows


def _throttled_row(
    args: argparse.Namespace,
    processes: int,
    phase: str,
    *,
    seconds: float,
    sent: int,
    refused: int,
    arrived: list[dict[str, Any]],
) -> tuple[str, ...]:
    rate = int(args.limit * args.seconds) / seconds
    distinct = len({r["lastname"] for r in arrived})
    who = "1 process" if processes == 1 else f"{processes} processes"
    return (
        f"throttled {args.limit}/s over {args.window:g} s, {who} x {THREADS} threads, {phase}",
        f"{seconds:.2f}",
        f"{rate:.0f}",
        str(sent),
        f"{rate / args.limit:.1%} of limit, {refused} x 429 ({refused / max(sent, 1):.2%}), "
        f"{len(arrived)} rows ({distinct} distinct)",
    )


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _stats(url: str) -> dict[str, int]:
    return dict(requests.get(url + "/_emulator/stats", timeout=10).json())


def bare_creates(url: str, rows: int) -> float:
    """Seconds for ``rows`` POSTs through a plain session (the baseline)."""
    session = requests.Session()
    session.headers.update({**BASE_HEADERS, "Authorization": "Bearer bench"})
    root = url + "/api/data/v9.2/contacts"

    def work() -> None:
        for i in range(rows):
            response = session.post(root, json={"firstname": "bare", "lastname": str(i)})
            response.raise_for_status()

    return _timed(work)


def client_creates(client: DataverseClient, rows: int, threads: int, marker: str) -> float:
    """Seconds for ``rows`` creates through the client from ``threads`` threads."""

    def one(i: int) -> str:
        return client.create("contacts", {"firstname": marker, "lastname": str(i)})

    def work() -> None:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(rows)))

    return _timed(work)


def batch_creates(client: DataverseClient, rows: int, marker: str) -> tuple[float, int]:
    """Seconds and failed operations for ``rows`` creates sent 100 per ``$batch``."""
    ops = [
        BatchOperation("POST", "contacts", {"firstname": marker, "lastname": str(i)})
        for i in range(rows)
    ]
    failed = [0]

    def work() -> None:
        for start in range(0, rows, 100):
            results = client.execute_batch(ops[start : start + 100], continue_on_error=True)
            failed[0] += sum(not r.ok for r in results)

    return _timed(work), failed[0]


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--limit", type=int, default=100, help="requests per second (throttled)")
    parser.add_argument("--window", type=float, default=10.0, help="the limit's window, seconds")
    parser.add_argument("--seconds", type=float, default=30.0, help="throttled run length")
    parser.add_argument("--processes", type=int, default=1, help="fleet run: OS processes")
    parser.add_argument("--state-url", default=None, help="the fleet's state store")
    parser.add_argument("--throttled-only", action="store_true", help="skip runs 1-3")
    args = parser.parse_args()
    configure_logging("ERROR")
    rows = args.rows
    table = Table(title=f"Dataverse client against the emulator ({rows} rows per run)")
    for column in ("run", "seconds", "rows/s", "HTTP requests", "note"):
        table.add_column(column, justify="right" if column != "run" else "left")

    if not args.throttled_only:
        unthrottled_rows(table, rows)
    for row in throttled_rows(args, 1):
        table.add_row(*row)
    if args.processes > 1:
        for row in throttled_rows(args, args.processes):
            table.add_row(*row)
    Console(width=150).print(table)


def unthrottled_rows(table: Table, rows: int) -> None:
    """Runs 1-3: overhead, concurrency and ``$batch`` against an unlimited emulator."""
    with running(create_emulator_app()) as url:
        bare = bare_creates(url, rows)
        client = _client(url)
        seq = client_creates(client, rows, 1, "seq")
        table.add_row(
            "bare session, 1 thread", f"{bare:.2f}", f"{rows / bare:.0f}", str(rows), "baseline"
        )
        table.add_row(
            "client, 1 thread",
            f"{seq:.2f}",
            f"{rows / seq:.0f}",
            str(rows),
            f"x{seq / bare:.2f} of baseline time",
        )
        par = client_creates(client, rows, THREADS, "par")
        table.add_row("client, 8 threads", f"{par:.2f}", f"{rows / par:.0f}", str(rows), "cap 8")
        before = _stats(url).get("requests", 0)
        seconds, failed = batch_creates(client, rows, "batch")
        used = _stats(url).get("requests", 0) - before
        table.add_row(
            "client, $batch of 100",
            f"{seconds:.2f}",
            f"{rows / seconds:.0f}",
            str(used),
            f"{failed} failed operations",
        )


if __name__ == "__main__":
    main()
