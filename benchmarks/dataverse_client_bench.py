"""Dataverse client benchmark against the emulator over real HTTP on 127.0.0.1.

Run ``python -m benchmarks.dataverse_client_bench [--rows N]`` (default 400). Prints a table:

1. Client overhead: N sequential creates through :class:`DataverseClient` against the same N
   through a bare ``requests.Session`` (the baseline); the ratio is what auth, retries,
   the concurrency cap, error mapping and logging cost per request.
2. Concurrency: N creates from 8 threads (client cap 8).
3. ``$batch``: N creates in batches of 100 operations (rows per HTTP request).
4. Throttled: N creates from 8 threads against an emulator limited to ``--limit`` requests per
   second; the achieved request rate against the limit, the 429s received, and whether every
   row arrived exactly once.

Not a test: nothing fails on a number.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests
from rich.console import Console
from rich.table import Table

from connector.bootstrap.server_thread import running
from connector.dataverse.auth import StaticTokenProvider
from connector.dataverse.batch import BatchOperation
from connector.dataverse.client import DataverseClient
from connector.dataverse.odata import eq
from connector.dataverse.retry import RetryPolicy
from connector.dataverse.transport import BASE_HEADERS, WebApi
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.limits import Limits
from connector.log_config import configure_logging


def _client(url: str, concurrency: int = 8) -> DataverseClient:
    api = WebApi(
        url,
        StaticTokenProvider("bench"),
        requests.Session(),
        max_concurrency=concurrency,
        retry=RetryPolicy(max_attempts=50, backoff_base=0.05, backoff_max=1.0),
    )
    return DataverseClient(api)


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
    args = parser.parse_args()
    configure_logging("ERROR")
    rows = args.rows
    table = Table(title=f"Dataverse client against the emulator ({rows} rows per run)")
    for column in ("run", "seconds", "rows/s", "HTTP requests", "note"):
        table.add_column(column, justify="right" if column != "run" else "left")

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
        par = client_creates(client, rows, 8, "par")
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

    limits = Limits(requests_per_window=args.limit, window_seconds=1.0)
    with running(create_emulator_app(limits=limits)) as url:
        client = _client(url)
        marker = f"thr-{uuid.uuid4().hex[:6]}"
        seconds = client_creates(client, rows, 8, marker)
        stats = _stats(url)
        arrived = list(
            client.query("contacts", select=["lastname"], filter=eq("firstname", marker))
        )
        distinct = len({r["lastname"] for r in arrived})
        rate = rows / seconds
        table.add_row(
            f"throttled at {args.limit}/s, 8 threads",
            f"{seconds:.2f}",
            f"{rate:.0f}",
            str(stats.get("requests", 0)),
            f"{rate / args.limit:.0%} of limit, {stats.get('throttled', 0)} x 429, "
            f"{len(arrived)} rows ({distinct} distinct)",
        )
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
