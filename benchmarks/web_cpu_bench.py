"""Web process CPU per webhook: ``connector serve --no-worker`` alone, signed webhooks in.

Run ``python -m benchmarks.web_cpu_bench [--rate 200] [--seconds 30] [--profile FILE]``.
It starts the Dataverse emulator (its database on disk) and ``connector serve --no-worker``
(SQLite state, the journal in its own file) as subprocesses, seeds the demo configuration,
and sends ``rate x seconds`` signed inbound webhooks open loop on keep-alive connections,
each from one of 1,000 distinct numbers (the inbound benchmark's own helpers: ``signed``,
``_raw``, ``_steady``, ``cli``). No worker runs, so nothing competes with the web process
for the CPU but the load generator. Before and after the phase it reads the web process's
CPU time from ``/proc/PID/stat`` and each thread's from ``/proc/PID/task/TID/stat`` (named
as ``py-spy dump`` names them: ``MainThread`` is the event loop), and prints CPU ms per
webhook with the answer latencies.

``--profile FILE`` records the phase with ``py-spy record --gil`` (flame graph SVG, or
``--format`` speedscope/raw; ``--spy=OPTION`` passes other py-spy options, e.g.
``--spy=--native --spy=--idle``); the profiler's sampling costs the target some CPU.

Prints the figures and the ratio to the goal of 1 ms CPU per webhook (issue 19). Not a
test: nothing fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import requests
from rich.console import Console
from rich.table import Table

from benchmarks.inbound_bench import (
    PATH,
    Service,
    _raw,
    _steady,
    cli,
    number,
    quantile,
    seeded_world,
    signed,
)
from connector.log_config import configure_logging
from connector.state.journal import Journal
from connector.state.journal_file import open_journal_store
from connector.worker.queue import queue_file

NUMBERS = 1000
THREAD_LINE = re.compile(r'^Thread (\d+) \(\w+\): "([^"]*)"', re.MULTILINE)
GOAL_MS = 1.0


def thread_cpu_ms(pid: int, tid: int) -> tuple[float, float]:
    """CPU time (user, system) of one thread of ``pid`` so far, in ms (0 without /proc)."""
    try:
        stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    except OSError:
        return 0.0, 0.0
    fields = stat.rsplit(")", 1)[1].split()
    tick = 1000 / os.sysconf("SC_CLK_TCK")
    return int(fields[11]) * tick, int(fields[12]) * tick


def thread_names(pid: int) -> dict[int, str]:
    """The Python name of each thread of ``pid`` by native id (``py-spy dump``)."""
    spy = Path(sys.executable).with_name("py-spy")
    dump = subprocess.run(  # noqa: S603 - our own venv's tool
        [str(spy), "dump", "-p", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    return {int(tid): name for tid, name in THREAD_LINE.findall(dump)}


def threads_cpu_ms(pid: int, names: dict[int, str]) -> dict[str, float]:
    """CPU ms so far per thread name and kind (``NAME user``, ``NAME system``; threads of
    one name summed, unnamed ones as "other")."""
    found: dict[str, float] = {}
    for entry in Path(f"/proc/{pid}/task").iterdir():
        name = names.get(int(entry.name), "other")
        user, system = thread_cpu_ms(pid, int(entry.name))
        found[f"{name} user"] = found.get(f"{name} user", 0.0) + user
        found[f"{name} system"] = found.get(f"{name} system", 0.0) + system
    return found


def prepared(host: str, rate: float, seconds: float) -> list[bytes]:
    """The phase's raw requests: signed webhooks from numbers drawn at random (fixed seed)."""
    draw = random.Random(f"web-cpu-{rate}-{seconds}")
    senders = [number(n) for n in range(NUMBERS)]
    return [
        _raw(signed(n, f"cpu-{rate}", draw.choice(senders)), host)
        for n in range(int(rate * seconds))
    ]


def profiler(
    pid: int, out: str, fmt: str, seconds: float, extra: list[str]
) -> subprocess.Popen[bytes]:
    """``py-spy record EXTRA`` attached to ``pid`` for ``seconds``."""
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", *extra, "-p", str(pid), "-o", out, "-f", fmt]
    command += ["-d", str(int(seconds) + 1), "-r", "200"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 - our own venv's tool


def measure(args: argparse.Namespace) -> dict[str, float]:
    """Run the phase; its figures."""
    with tempfile.TemporaryDirectory() as tmp, seeded_world(Path(tmp), numbers=False) as world:
        work, env = Path(tmp), world.env
        serve = ["serve", "--port", "0", "--no-worker"]
        with cli(serve, env, work, "listening on") as web:
            return _phase(args, web, env)


def _phase(args: argparse.Namespace, web: Service, env: dict[str, str]) -> dict[str, float]:
    host = web.url.removeprefix("http://")
    for n in range(20):  # warm-up: first-request imports, caches, the signing tokens
        warm = signed(n, "warm-up")
        requests.post(web.url + PATH, data=warm.body, headers=warm.headers, timeout=30)
    raws = prepared(host, args.rate, args.seconds)
    time.sleep(1.0)
    spy = None
    if args.profile:
        spy = profiler(web.pid, args.profile, args.format, args.seconds, args.spy)
        time.sleep(1.0)  # py-spy attaches
    names = thread_names(web.pid)
    total, threads = web.cpu_ms(), threads_cpu_ms(web.pid, names)
    began = time.perf_counter()
    latencies = asyncio.run(_steady(web.url, args.rate, raws))
    elapsed = time.perf_counter() - began
    total = web.cpu_ms() - total
    threads = {
        name: ms - threads.get(name, 0.0) for name, ms in threads_cpu_ms(web.pid, names).items()
    }
    if spy is not None:
        spy.wait(timeout=args.seconds + 60)
    journal = Journal(open_journal_store(env["CONNECTOR_STATE__URL"]))
    try:
        stored = journal.counts().pending
    finally:
        journal.close()
        journal.store.close()
    queue = queue_file(env["CONNECTOR_STATE__URL"])
    with closing(sqlite3.connect(queue)) as db:  # no worker: every nudge is still queued
        (nudges,) = db.execute("SELECT count(*) FROM task").fetchone()
    count = len(latencies)
    return {
        "webhooks": count,
        "journaled": stored,
        "drains queued": nudges,
        "seconds": elapsed,
        "cpu": total / count,
        **{f"thread {name}": ms / count for name, ms in sorted(threads.items())},
        "p50": quantile(latencies, 0.5),
        "p99": quantile(latencies, 0.99),
        "max": max(latencies),
    }


def report(args: argparse.Namespace, figures: dict[str, float]) -> None:
    """Print the figures and their ratio to the goal."""
    title = (
        f"Web process alone (serve --no-worker): {figures['webhooks']:.0f} webhooks at "
        f"{args.rate:g}/s from {NUMBERS:,} numbers ({figures['journaled']:.0f} journaled)"
    )
    table = Table(title=title)
    for column in ("figure", "value", "goal", "ratio to goal"):
        table.add_column(column)
    cpu = figures["cpu"]
    table.add_row("CPU per webhook, web process", f"{cpu:.3f} ms", "~1 ms", f"{cpu / GOAL_MS:.2f}")
    for key, ms in figures.items():
        if key.startswith("thread ") and ms >= 0.001:
            table.add_row(f"CPU per webhook, {key}", f"{ms:.3f} ms", "-", "-")
    for name in ("p50", "p99", "max"):
        table.add_row(f"webhook answer {name}", f"{figures[name]:.2f} ms", "-", "-")
    table.add_row("drains queued (nudges)", f"{figures['drains queued']:.0f}", "-", "-")
    if args.profile:
        table.add_row("profile (py-spy --gil)", args.profile, "-", "-")
    Console(width=120).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="Webhooks per second.")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--profile", default="", help="Record a py-spy profile to this file.")
    parser.add_argument("--format", default="flamegraph", help="py-spy output format.")
    parser.add_argument(
        "--spy",
        action="append",
        default=[],
        help="A py-spy record option (repeatable; default --gil), e.g. --spy=--native.",
    )
    args = parser.parse_args()
    args.spy = args.spy or ["--gil"]
    configure_logging("WARNING")
    report(args, measure(args))


if __name__ == "__main__":
    main()
