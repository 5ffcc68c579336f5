"""Inbound benchmark: webhook answer latency at a steady rate, end-to-end throughput to the
Dataverse emulator, and Dataverse requests per message.

Run ``python -m benchmarks.inbound_bench [--rate 200] [--seconds 10]``. It starts the
emulator (``connector emulator``), the connector's web process (``connector serve
--no-worker``) and later ``connector worker`` as subprocesses (SQLite state and queue),
seeds the schema and demo data, then:

1. Web only: signed webhooks at ``--rate`` per second for ``--seconds``, open loop on
   keep-alive connections from an asyncio client (each request goes at its scheduled time;
   latency runs from that time to the complete TwiML answer, so queueing counts);
   p50 / p99 / max. The messages stay journaled.
2. Throughput: ``connector worker`` starts on that backlog; time until the journal has them
   all done (written and confirmed by the emulator); messages per second end to end.
3. Requests per message: the emulator's request count during step 2 over the messages
   written (configuration cached, session open, phone index warm). Progress is read from
   the journal file, never from the emulator, so the count is the connector's alone.
4. Steady load again with the worker busy alongside (web and worker on the same cores),
   with the CPU time each process spent per message in that phase.

The emulator stands in for a remote Dataverse, whose work never runs on the connector's
machine: by default its database lives in RAM (/dev/shm) and, on Linux, it runs in the
SCHED_IDLE class (CPU time nothing else wants). ``--emulator-competes`` and
``--emulator-on-our-disk`` put it on equal terms with the connector instead.

Prints a table with each figure's ratio to its goal (product design section 10: p99 under
10 ms at 200/s; at most 1 Dataverse request per message). Not a test: nothing fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from rich.console import Console
from rich.table import Table

from connector.bootstrap.local_mode import DEMO_CUSTOMER, DEMO_SENDER, seed_demo
from connector.dataverse.auth import StaticTokenProvider
from connector.dataverse.client import DataverseClient
from connector.dataverse.transport import WebApi
from connector.log_config import configure_logging
from connector.state.db import StateStore
from connector.state.journal import Journal
from connector.testing.signing import SignedRequest, inbound_fields, signed_form

PUBLIC = "https://sms.example.com"
PATH = "/webhooks/twilio/messages"
TOKEN = "0123456789abcdef0123456789abcdef"  # noqa: S105 - a benchmark-only fake
URL = re.compile(r"(http://127\.0\.0\.1:\d+)")


@dataclass(frozen=True)
class Service:
    """A started ``connector`` subprocess: the URL it printed and its process id."""

    url: str
    pid: int

    def cpu_ms(self) -> float:
        """CPU time (user + system, all threads) used so far, in ms; 0 where /proc is absent."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


@contextmanager
def cli(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    marker: str,
    nice: int = 0,
    *,
    idle: bool = False,
) -> Iterator[Service]:
    """Run ``connector ARGS``; yield the first URL printed on a line containing ``marker``.

    ``idle``: the process only gets CPU time nothing else wants (Linux SCHED_IDLE).
    """
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        ["nice", "-n", str(nice), sys.executable, "-m", "connector", *args],  # noqa: S607 - POSIX nice
        preexec_fn=_idle_class if idle else None,  # noqa: PLW1509 - no threads in the bench yet
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if marker in line:
                break
        else:
            raise RuntimeError(f"connector {args[0]} did not start")
        threading.Thread(target=lambda: [None for _ in process.stdout or []], daemon=True).start()
        found = URL.search(line)
        yield Service(found.group(1) if found else line.strip(), process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)


def _idle_class() -> None:
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def signed(n: int, prefix: str) -> SignedRequest:
    fields = inbound_fields(DEMO_CUSTOMER, DEMO_SENDER, f"{prefix} message {n}")
    return signed_form(PUBLIC + PATH, fields, TOKEN)


def _raw(req: SignedRequest, host: str) -> bytes:
    head = [f"POST {PATH} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(req.body)}"]
    head += [f"{name}: {value}" for name, value in req.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + req.body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    """Send one raw HTTP/1.1 request on a keep-alive connection; (status, body)."""
    writer.write(raw)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:  # the server closed the idle keep-alive connection
        raise ConnectionResetError("connection closed before an answer")
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return int(status_line.split()[1]), await reader.readexactly(length)


async def _steady(base: str, rate: float, prepared: list[bytes]) -> list[float]:
    """Open loop on keep-alive connections; latency from each request's scheduled time."""
    host, port = base.removeprefix("http://").split(":")
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    latencies = [0.0] * len(prepared)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2

    async def one(index: int) -> None:
        await asyncio.sleep(max(0.0, start + index / rate - loop.time()))
        scheduled = start + index / rate
        conn = idle.pop() if idle else await asyncio.open_connection(host, int(port))
        try:
            status, _ = await exchange(*conn, prepared[index])
        except (IndexError, ConnectionError, asyncio.IncompleteReadError):
            conn[1].close()  # the server closed an idle keep-alive connection: reconnect
            conn = await asyncio.open_connection(host, int(port))
            status, _ = await exchange(*conn, prepared[index])
        latencies[index] = (loop.time() - scheduled) * 1000
        idle.append(conn)
        if status != 200:
            raise RuntimeError(f"webhook answered {status}")

    await asyncio.gather(*(one(i) for i in range(len(prepared))))
    for _, writer in idle:
        writer.close()
    return latencies


def steady(base: str, rate: float, seconds: float) -> list[float]:
    """Latencies (ms) of webhooks sent open-loop at ``rate`` per second."""
    host = base.removeprefix("http://")
    prepared = [_raw(signed(n, f"steady-{rate}"), host) for n in range(int(rate * seconds))]
    return asyncio.run(_steady(base, rate, prepared))


def stats(emulator: str) -> int:
    return int(requests.get(f"{emulator}/_emulator/stats", timeout=10).json()["requests"])


def wait_done(journal: Journal, target: int) -> None:
    """Until ``target`` journal rows are done (written and confirmed by Dataverse)."""
    while journal.counts().done < target:
        time.sleep(0.02)


def drain_backlog(journal: Journal, emulator: str, work: Path, env: dict[str, str]) -> tuple[
    float, float
]:  # fmt: skip
    """Start `connector worker` on the journaled backlog: (msgs/s, requests per message)."""
    backlog = journal.counts().pending
    done_before = journal.counts().done
    before = stats(emulator)
    began = time.perf_counter()
    with cli(["worker"], env, work, "Worker running"):
        wait_done(journal, done_before + backlog)
        elapsed = time.perf_counter() - began
    return backlog / elapsed, (stats(emulator) - before) / backlog


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--emulator-nice",
        type=int,
        default=0,
        help="CPU niceness of the emulator, with --emulator-competes",
    )
    parser.add_argument(
        "--emulator-competes",
        action="store_true",
        help="let the emulator compete for the CPU like any process (default: it stands in "
        "for a remote Dataverse, so it only gets CPU time the connector does not want: Linux "
        "SCHED_IDLE where available)",
    )
    parser.add_argument(
        "--worker-nice", type=int, default=0, help="CPU niceness of `connector worker`"
    )
    parser.add_argument(
        "--emulator-on-our-disk",
        action="store_true",
        help="keep the emulator's database on the connector's disk (default: in RAM under "
        "/dev/shm where there is one, as a remote Dataverse's writes never touch our disk)",
    )
    args = parser.parse_args()
    configure_logging("WARNING")
    ram = Path("/dev/shm")  # noqa: S108 - only a parent for a private TemporaryDirectory
    remote_dir = None if args.emulator_on_our_disk or not ram.is_dir() else str(ram)
    with (
        tempfile.TemporaryDirectory() as tmp,
        tempfile.TemporaryDirectory(dir=remote_dir) as remote,
    ):
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
        env |= {"CONNECTOR_STATE__URL": f"sqlite:///{work / 'state.db'}"}
        env |= {"CONNECTOR_LOG__LEVEL": "WARNING"}
        emulator_db = Path(remote) / "dv.db"
        emu_args = ["emulator", "--port", "0", "--db", str(emulator_db), "--no-auth"]
        idle = not args.emulator_competes and hasattr(os, "SCHED_IDLE")
        emulated = cli(emu_args, env, work, "http", nice=args.emulator_nice, idle=idle)
        with emulated as emulator_process:
            emulator = emulator_process.url
            client = DataverseClient(
                WebApi(emulator, StaticTokenProvider("bench"), requests.Session())
            )
            seed_demo(client, PUBLIC)
            env |= {
                "CONNECTOR_DATAVERSE__URL": emulator,
                "CONNECTOR_DATAVERSE__TOKEN": "bench",
                "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
                "CONNECTOR_TWILIO__AUTH_TOKEN": TOKEN,
            }
            client.api.close()
            with cli(["serve", "--port", "0", "--no-worker"], env, work, "listening on") as web:
                journal = Journal(StateStore.from_url(env["CONNECTOR_STATE__URL"]))
                warm = signed(0, "warm-up")
                requests.post(web.url + PATH, data=warm.body, headers=warm.headers, timeout=30)
                web_only = steady(web.url, args.rate, args.seconds)
                per_second, per_message = drain_backlog(journal, emulator, work, env)
                with cli(["worker"], env, work, "Worker running", nice=args.worker_nice) as worker:
                    processes = {"web": web, "worker": worker, "emulator": emulator_process}
                    before = {name: p.cpu_ms() for name, p in processes.items()}
                    with_worker = steady(web.url, args.rate, args.seconds)
                    wait_done(journal, 1 + 2 * len(web_only))
                    cpu = {
                        name: (p.cpu_ms() - before[name]) / len(with_worker)
                        for name, p in processes.items()
                    }
                journal.store.close()
    report(
        args,
        web_only=web_only,
        with_worker=with_worker,
        per_second=per_second,
        per_message=per_message,
        cpu=cpu,
    )


def report(
    args: argparse.Namespace,
    *,
    web_only: list[float],
    with_worker: list[float],
    per_second: float,
    per_message: float,
    cpu: dict[str, float],
) -> None:
    """Print the figures and their ratio to the goals."""
    table = Table(title="Inbound: webhook latency, throughput, Dataverse requests per message")
    for column in ("figure", "value", "goal", "ratio to goal"):
        table.add_column(column)
    rate = f"{args.rate:.0f}/s"
    for label, values in (("web only", web_only), ("worker busy alongside", with_worker)):
        p50, p99 = quantile(values, 0.5), quantile(values, 0.99)
        table.add_row(f"webhook p50 at {rate}, {label}", f"{p50:.2f} ms", "-", "-")
        table.add_row(
            f"webhook p99 at {rate}, {label}", f"{p99:.2f} ms", "< 10 ms", f"{p99 / 10:.2f}"
        )
        table.add_row(f"webhook max, {label}", f"{max(values):.2f} ms", "-", "-")
    backlog = int(args.rate * args.seconds)
    table.add_row(f"end-to-end throughput ({backlog} msgs)", f"{per_second:.0f} msg/s", "-", "-")
    table.add_row(
        "Dataverse requests per message", f"{per_message:.3f}", "<= 1", f"{per_message:.2f}"
    )
    for name, ms in cpu.items():
        table.add_row(f"CPU per message, {name} (worker busy phase)", f"{ms:.2f} ms", "-", "-")
    Console().print(table)


if __name__ == "__main__":
    main()
