"""Dataverse emulator benchmark: bulk load and the queries the connector runs, at 1,000,000 rows.

Run ``python -m benchmarks.emulator_bench [--records N] [--samples N]`` (defaults: 1,000,000
contacts, 300 samples per operation). It prints a table of figures and each figure's ratio
to its goal (issue 4: a million contacts load in minutes, a query by an indexed phone column
stays in milliseconds). Not a test: nothing fails on a number.

1. Load: contacts with two phone columns go straight into a fresh SQLite file through the
   emulator's bulk path (not HTTP).
2. Operations, each in-process (``Emulator.handle``, no socket) and over real HTTP on
   loopback: the resolver's phone query (``statecode eq 0 and (mobilephone eq X or
   telephone1 eq X)``, ``$top=5``), retrieve by id, create, and 5,000-row pages (the first
   page and a page deep into the table through ``@odata.nextLink``).
3. The storage decision: the same rows as typed columns and as JSON documents with
   expression indexes, raw SQLite, same phone query.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests
from rich.console import Console
from rich.table import Table

from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.bulk import bulk_load
from connector.emulators.dataverse.protocol import EmuRequest
from connector.emulators.dataverse.router import Emulator
from connector.emulators.dataverse.store import table_name
from connector.emulators.dataverse.tls import running_tls

GOALS = {"load": 300.0, "phone": 5.0, "retrieve": 5.0, "create": 10.0, "page": 500.0}
COLUMNS = ["firstname", "lastname", "fullname", "mobilephone", "telephone1", "emailaddress1"]


def phone(i: int) -> str:
    """A distinct digits-only phone number per contact."""
    return f"1555{i:07d}"


def rows(count: int) -> Iterator[tuple[str, ...]]:
    """Contact rows: half carry a business phone too."""
    for i in range(count):
        business = phone(i + 5_000_000) if i % 2 else None
        yield (
            f"First{i}",
            f"Last{i}",
            f"First{i} Last{i}",
            phone(i),
            business,  # type: ignore[misc]
            f"c{i}@example.com",
        )


def timed(action: Callable[[int], object], samples: int) -> list[float]:
    """Milliseconds per call of ``action(i)``."""
    result = []
    for i in range(samples):
        started = time.perf_counter()
        action(i)
        result.append((time.perf_counter() - started) * 1000)
    return result


def core_call(
    emulator: Emulator,
    method: str,
    path: str,
    query: str = "",
    *,
    body: bytes = b"",
    prefer: str = "",
) -> object:
    """One request through the emulator core, no socket."""
    headers = {"Prefer": prefer} if prefer else {}
    req = EmuRequest.build(method, path, query, headers, body=body, base_url="http://bench")
    response = emulator.handle(req)
    assert response.status < 400, response.body[:300]
    return response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    records, samples = args.records, args.samples
    console = Console(width=120)
    with tempfile.TemporaryDirectory() as tmp:
        emulator = Emulator(str(Path(tmp) / "bench.db"))
        started = time.perf_counter()
        bulk_load(emulator, "contact", COLUMNS, rows(records))
        load_s = time.perf_counter() - started
        size_mb = (Path(tmp) / "bench.db").stat().st_size / 1e6
        ids = [
            r["contactid"]
            for r in emulator.store.select(
                f"SELECT contactid FROM {table_name('contact')} ORDER BY random() LIMIT ?",  # noqa: S608
                [samples],
            )
        ]
        figures = operations(emulator, records, samples, ids)
        report(console, records, load_s, size_mb, figures)
        layout = Table(title=f"Storage layout, raw SQLite, {records:,} rows, phone OR query")
        for column in ("layout", "load + index", "query p50", "file"):
            layout.add_column(column)
        for row in layout_comparison(records, samples, Path(tmp)):
            layout.add_row(*row)
        console.print(layout)


def operations(
    emulator: Emulator, records: int, samples: int, ids: list[str]
) -> dict[str, list[float]]:
    """Latency samples per operation and transport."""
    step = max(records // samples, 1)

    def phone_query(i: int) -> str:
        number = phone((i * step) % records)
        return (
            f"$select=fullname,mobilephone&$top=5&$filter=statecode eq 0 and "
            f"(mobilephone eq '{number}' or telephone1 eq '{number}')"
        )

    figures: dict[str, list[float]] = {}
    figures["phone (core)"] = timed(
        lambda i: core_call(emulator, "GET", "contacts", phone_query(i)), samples
    )
    figures["retrieve (core)"] = timed(
        lambda i: core_call(emulator, "GET", f"contacts({ids[i % len(ids)]})", "$select=fullname"),
        samples,
    )
    figures["create (core)"] = timed(
        lambda i: core_call(
            emulator,
            "POST",
            "contacts",
            "",
            body=f'{{"lastname":"New{i}","mobilephone":"1999{i:07d}"}}'.encode(),
        ),
        samples,
    )
    pages = max(samples // 30, 3)
    figures["page 5000 first (core)"] = timed(
        lambda i: core_call(
            emulator, "GET", "contacts", "$select=fullname", prefer="odata.maxpagesize=5000"
        ),
        pages,
    )
    with (
        running_tls(create_emulator_app(emulator=emulator), None, None) as url,
        requests.Session() as http,
    ):
        http.headers["Authorization"] = "Bearer bench"
        root = url + "/api/data/v9.2/"
        figures["phone (HTTP)"] = timed(
            lambda i: http.get(root + "contacts?" + phone_query(i)).raise_for_status(), samples
        )
        figures["retrieve (HTTP)"] = timed(
            lambda i: http.get(root + f"contacts({ids[i % len(ids)]})").raise_for_status(), samples
        )
        figures["create (HTTP)"] = timed(
            lambda i: http.post(root + "contacts", json={"lastname": f"H{i}"}).raise_for_status(),
            samples,
        )
        deep = deep_link(http, root, records)
        figures["page 5000 deep (HTTP)"] = timed(
            lambda i: http.get(
                deep, headers={"Prefer": "odata.maxpagesize=5000"}
            ).raise_for_status(),
            pages,
        )
    return figures


def deep_link(http: requests.Session, root: str, records: int) -> str:
    """A nextLink about half-way through the table (follow links from the first page)."""
    link = root + "contacts?$select=fullname"
    prefer = {"Prefer": "odata.maxpagesize=5000"}
    for _ in range(max(records // 2 // 5000, 1)):
        body = http.get(link, headers=prefer).json()
        if "@odata.nextLink" not in body:
            break
        link = body["@odata.nextLink"]
    return link


def _query_times(conn: sqlite3.Connection, query: str, records: int, samples: int) -> list[float]:
    step = max(records // samples, 1)
    return timed(
        lambda i: conn.execute(query, [phone((i * step) % records)] * 2).fetchall(), samples
    )


def layout_comparison(records: int, samples: int, directory: Path) -> list[tuple[str, ...]]:
    """The storage decision measured: typed columns vs one JSON document per row.

    Same rows, same two indexed phone fields, same OR query in raw SQLite (no emulator code).
    """
    results = []
    layouts = {
        "columns": (
            "CREATE TABLE t (id TEXT PRIMARY KEY, fullname TEXT, mobilephone TEXT COLLATE NOCASE,"
            " telephone1 TEXT COLLATE NOCASE)",
            ["CREATE INDEX a ON t (mobilephone)", "CREATE INDEX b ON t (telephone1)"],
            "INSERT INTO t VALUES (?, ?, ?, ?)",
            "SELECT id, fullname FROM t WHERE mobilephone = ? OR telephone1 = ? LIMIT 5",
        ),
        "json": (
            "CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT)",
            [
                "CREATE INDEX a ON t (json_extract(body, '$.mobilephone'))",
                "CREATE INDEX b ON t (json_extract(body, '$.telephone1'))",
            ],
            "INSERT INTO t VALUES (?, json_object('fullname', ?, 'mobilephone', ?, "
            "'telephone1', ?))",
            "SELECT id, json_extract(body, '$.fullname') FROM t WHERE json_extract(body, "
            "'$.mobilephone') = ? OR json_extract(body, '$.telephone1') = ? LIMIT 5",
        ),
    }
    for name, (create, indexes, insert, query) in layouts.items():
        path = directory / f"layout-{name}.db"
        conn = sqlite3.connect(str(path))
        conn.execute(create)
        started = time.perf_counter()
        conn.executemany(
            insert,
            ((f"id{i}", f"N {i}", phone(i), phone(i + 5_000_000)) for i in range(records)),
        )
        for index in indexes:
            conn.execute(index)
        conn.commit()
        load = time.perf_counter() - started
        times = _query_times(conn, query, records, samples)
        size = path.stat().st_size / 1e6
        median = statistics.median(times)
        results.append((name, f"{load:,.1f} s", f"{median:.3f} ms", f"{size:,.0f} MB"))
        conn.close()
    return results


def report(
    console: Console, records: int, load_s: float, size_mb: float, figures: dict[str, list[float]]
) -> None:
    """Print the figures with their ratio to the goals."""
    table = Table(title=f"Dataverse emulator, {records:,} contacts (SQLite file {size_mb:,.0f} MB)")
    for column in ("operation", "p50", "p99", "max", "goal", "p50 / goal"):
        table.add_column(column, justify="right" if column != "operation" else "left")
    table.add_row(
        "bulk load",
        f"{load_s:,.1f} s",
        "",
        "",
        f"{GOALS['load']:.0f} s",
        f"{load_s / GOALS['load']:.2f}",
    )
    table.add_row("load rate", f"{records / load_s:,.0f} rows/s", "", "", "", "")
    for name, samples in figures.items():
        goal = GOALS[name.split(" ")[0]]
        ordered = sorted(samples)
        p50 = statistics.median(ordered)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        table.add_row(
            name,
            f"{p50:.2f} ms",
            f"{p99:.2f} ms",
            f"{ordered[-1]:.2f} ms",
            f"{goal:.0f} ms",
            f"{p50 / goal:.2f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
