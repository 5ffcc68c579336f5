"""Schema installer benchmark: requests and time of `schema apply` against the emulator.

Run ``python -m benchmarks.schema_bench``. It serves the emulator on loopback, then measures:

1. a first ``apply`` on an empty environment (changing requests vs the declared components:
   the baseline is one request per component plus one publish),
2. a second ``apply`` (must send no changing request; reads per table shown),
3. an ``apply`` stopped half-way and the run that finishes it (total changing requests vs
   the uninterrupted run: resuming must not repeat work).

Not a test: nothing fails on a number.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import requests
from rich.console import Console
from rich.table import Table

from connector.bootstrap.server_thread import running
from connector.dataverse.auth import StaticTokenProvider
from connector.dataverse.client import DataverseClient
from connector.dataverse.transport import WebApi
from connector.emulators.dataverse.app import create_emulator_app
from connector.log_config import configure_logging
from connector.schema.installer import Installer
from connector.schema.spec import Schema, load_schema

CHANGING = ("POST", "PATCH", "PUT", "DELETE")


def _counts(url: str) -> dict[str, int]:
    stats = requests.get(f"{url}/_emulator/stats", timeout=10).json()
    by_method = {k: int(v) for k, v in stats["by_method"].items()}
    return {"changing": sum(by_method.get(m, 0) for m in CHANGING), "GET": by_method.get("GET", 0)}


def _measure(url: str, action: Callable[[], Any]) -> tuple[float, dict[str, int]]:
    before = _counts(url)
    started = time.perf_counter()
    action()
    elapsed = time.perf_counter() - started
    after = _counts(url)
    return elapsed, {k: after[k] - before[k] for k in after}


def components(schema: Schema) -> int:
    """Publisher, solution, tables, columns, lookups and keys declared."""
    per_table = sum(1 + len(t.columns) + len(t.keys) for t in schema.tables)
    return 2 + per_table


def main() -> None:
    """Print the table of figures."""
    configure_logging("WARNING", "console")
    schema = load_schema()
    baseline = components(schema) + 1
    table = Table(title=f"schema apply ({len(schema.tables)} tables, {baseline - 1} components)")
    for column in ("run", "seconds", "changing requests", "GETs", "ratio to baseline"):
        table.add_column(column)
    for label, interrupted in (("fresh", False), ("interrupted + resumed", True)):
        with running(create_emulator_app()) as url:
            client = DataverseClient(WebApi(url, StaticTokenProvider("bench"), requests.Session()))
            installer = Installer(client, schema, poll_interval=0.01)
            if interrupted:
                s1, c1 = _measure(url, partial(installer.apply, max_steps=baseline // 2))
                s2, c2 = _measure(url, installer.apply)
                seconds, counts = s1 + s2, {k: c1[k] + c2[k] for k in c1}
            else:
                seconds, counts = _measure(url, installer.apply)
            ratio = counts["changing"] / baseline
            table.add_row(
                label, f"{seconds:.2f}", str(counts["changing"]), str(counts["GET"]), f"{ratio:.2f}"
            )
            again_s, again = _measure(url, installer.apply)
            per_table = again["GET"] / len(schema.tables)
            table.add_row(
                f"{label}: second apply",
                f"{again_s:.2f}",
                str(again["changing"]),
                str(again["GET"]),
                f"{per_table:.1f} GETs per table",
            )
            client.api.close()
    Console().print(table)


if __name__ == "__main__":
    main()
