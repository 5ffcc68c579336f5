"""Outbound benchmark: the send API's answer time, each sender's rate, Dataverse requests per
outbound message, and the time from ``POST`` to ``delivered`` in Dataverse.

Run ``python -m benchmarks.outbound_bench [--seconds 20] [--rate-seconds 60]``. Everything
runs as it does in production on one machine, as subprocesses: the Dataverse emulator
(``connector emulator``, its database on disk, normal priority), the Twilio simulator
(``connector simulator``, posting signed status callbacks, refusing a sender that goes over
its rate with 429/20429), and the connector in its default topology (``connector serve``:
web and worker in one process; SQLite state and queue). Recipients are 1,000 distinct
numbers.

1. **API**: sends at 200 per second for ``--seconds``, open loop on keep-alive connections
   (latency from each request's scheduled time to the complete ``202``, so queueing counts;
   the outbox's durable write is included): p50 / p99 / max.
2. **Dataverse requests per message** at 50 sends per second for ``--seconds``: the
   emulator's request count from the first send until every message is ``delivered`` in
   Dataverse, over the messages (each message's row and its status callbacks included; the
   benchmark's own progress reads are subtracted). And **end to end**: from each ``POST``
   to the moment the message shows ``delivered`` in Dataverse (sampled every 100 ms).
3. **Rate**: three senders at 5, 10 and 20 messages per second, a backlog for each, two
   ``connector worker`` processes beside a web-only ``serve``; over ``--rate-seconds`` the
   achieved rate per sender (from the simulator's counts) and the simulator's 429 refusals.

Prints a table with each figure's ratio to its goal (issue goals: API p99 < 10 ms at 200/s;
<= 0.2 Dataverse requests per message; rate within 5 %, zero 429). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import requests
from rich.console import Console
from rich.table import Table

from benchmarks.inbound_bench import cli, exchange, quantile
from connector.bootstrap.local_mode import seed_demo
from connector.crm import tables
from connector.crm.outbound_rows import STATUS_OPTIONS
from connector.dataverse.auth import StaticTokenProvider
from connector.dataverse.client import DataverseClient
from connector.dataverse.transport import WebApi
from connector.domain.model import Configuration, Provider, ValidationStatus
from connector.domain.status import MessageStatus
from connector.log_config import configure_logging
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from connector.state.db import StateStore
from connector.state.outbox import Outbox

KEY = "bench-key"
DELIVERED = STATUS_OPTIONS[MessageStatus.DELIVERED]
RATE_SENDERS = {"+14155550201": 5.0, "+14155550202": 10.0, "+14155550203": 20.0}


def free_port() -> int:
    """A free loopback port (the status callback URL must be known before the start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def number(n: int) -> str:
    """The n-th of 1,000 distinct US mobile-looking numbers."""
    return f"+1415666{n % 1000:04d}"


def client_for(url: str) -> DataverseClient:
    """A Web API client for the emulator."""
    return DataverseClient(WebApi(url, StaticTokenProvider("bench"), requests.Session()))


def stats(emulator: str) -> int:
    """The emulator's request count so far."""
    return int(requests.get(f"{emulator}/_emulator/stats", timeout=10).json()["requests"])


def add_sender(client: DataverseClient, sender: str, rate: float) -> str:
    """An active simulated configuration for ``sender`` at ``rate`` per second; its id."""
    config_id = str(uuid.uuid5(uuid.NAMESPACE_URL, sender))
    config = Configuration(
        name=f"Bench {sender}",
        provider=Provider.SIMULATOR,
        sender_number=sender,
        account_id=LOCAL_ACCOUNT_SID,
        default_country="US",
        rate_per_second=rate,
        validation_status=ValidationStatus.VALID,
    )
    client.upsert(tables.CONFIGURATION.entity_set, config_id, tables.configuration_to_row(config))
    return config_id


def _raw(host: str, body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode()
    head = [
        "POST /api/v1/messages HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"X-API-Key: {KEY}",
        f"Content-Length: {len(data)}",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


async def _open_loop(
    base: str, rate: float, bodies: list[dict[str, object]]
) -> tuple[list[float], list[tuple[str, float]]]:
    """Latencies (ms) and (message id, POST time) of sends made open loop at ``rate``."""
    host, port = base.removeprefix("http://").split(":")
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    latencies = [0.0] * len(bodies)
    sent: list[tuple[str, float]] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    wall = time.time() - loop.time()

    async def one(index: int) -> None:
        scheduled = start + index / rate
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        raw = _raw(host, bodies[index])
        conn = idle.pop() if idle else await asyncio.open_connection(host, int(port))
        try:
            status, answer = await exchange(*conn, raw)
        except (ConnectionError, asyncio.IncompleteReadError):
            conn[1].close()
            conn = await asyncio.open_connection(host, int(port))
            status, answer = await exchange(*conn, raw)
        latencies[index] = (loop.time() - scheduled) * 1000
        idle.append(conn)
        if status != 202:
            raise RuntimeError(f"send answered {status}: {answer[:300]!r}")
        sent.append((str(json.loads(answer)["id"]), wall + scheduled))

    await asyncio.gather(*(one(i) for i in range(len(bodies))))
    for _, writer in idle:
        writer.close()
    return latencies, sent


def open_loop(
    base: str, rate: float, seconds: float, sender: str, offset: int = 0
) -> tuple[list[float], list[tuple[str, float]]]:
    """Send ``rate * seconds`` messages to distinct numbers from ``sender``."""
    bodies: list[dict[str, object]] = [
        {"to": number(offset + n), "from": sender, "body": f"Your order {offset + n} is ready"}
        for n in range(int(rate * seconds))
    ]
    return asyncio.run(_open_loop(base, rate, bodies))


def delivered_times(
    client: DataverseClient, wanted: set[str], timeout: float
) -> tuple[dict[str, float], int]:
    """When each wanted message first showed ``delivered`` in Dataverse; requests made."""
    seen: dict[str, float] = {}
    reads = 0
    deadline = time.monotonic() + timeout
    while not wanted <= seen.keys() and time.monotonic() < deadline:
        rows = client.query(
            tables.MESSAGE.entity_set,
            select=["activityid"],
            filter=f"smsc_status eq {DELIVERED} and smsc_direction eq 105710001",
        )
        now = time.time()
        for row in rows:
            seen.setdefault(str(row["activityid"]), now)
        reads += 1 + len(seen) // 5000  # one request per page of 5,000
        time.sleep(0.1)
    return {k: v for k, v in seen.items() if k in wanted}, reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="Seconds per load phase.")
    parser.add_argument("--rate-seconds", type=float, default=60.0, help="Rate phase length.")
    parser.add_argument("--skip-rate", action="store_true", help="Leave out the rate phase.")
    parser.add_argument(
        "--split-worker",
        action="store_true",
        help="Comparison only: `serve --no-worker` beside a `connector worker` process "
        "(the headline figure is the default `connector serve`).",
    )
    args = parser.parse_args()
    configure_logging(level="WARNING", fmt="console")
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="outbound-bench-"))
    port = free_port()
    env = {
        "CONNECTOR_STATE__URL": f"sqlite:///{work / 'state.db'}",
        "CONNECTOR_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "CONNECTOR_TWILIO__ACCOUNT_SID": LOCAL_ACCOUNT_SID,
        "CONNECTOR_TWILIO__AUTH_TOKEN": LOCAL_AUTH_TOKEN,
        "CONNECTOR_API__KEYS": f'["{KEY}"]',
        "CONNECTOR_LOG__LEVEL": "WARNING",
        "CONNECTOR_DATAVERSE__TOKEN": "bench",
    }
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}, **env}
    rows: list[tuple[str, str, str, str]] = []
    with cli(["emulator", "--port", "0", "--db", str(work / "dv.db")], env, work, "http") as dv:
        client = client_for(dv.url)
        seed_demo(client, env["CONNECTOR_PUBLIC_BASE_URL"])
        main_sender = "+14155550100"
        (demo,) = client.query(tables.CONFIGURATION.entity_set)
        client.update(
            tables.CONFIGURATION.entity_set,
            str(demo["smsc_configurationid"]),
            {"smsc_sendingrate": 400},
        )
        for sender, rate in RATE_SENDERS.items():
            add_sender(client, sender, rate)
        env["CONNECTOR_DATAVERSE__URL"] = dv.url
        sim_args = ["simulator", "--port", "0", "--rate-limits", _limits()]
        with cli(sim_args, env, work, "http") as sim:
            env["CONNECTOR_TWILIO__API_BASE_URL"] = sim.url
            serve = ["serve", "--port", str(port)] + (["--no-worker"] if args.split_worker else [])
            with (
                cli(serve, env, work, "listening on") as web,
                _worker(env, work, enabled=args.split_worker),
            ):
                base = web.url
                open_loop(base, 20, 2, main_sender, offset=900)  # warm-up
                time.sleep(3)
                latencies, _ = open_loop(base, 200, args.seconds, main_sender)
                rows += [
                    ("API answer p50 at 200/s", f"{quantile(latencies, 0.5):.1f} ms", "", ""),
                    (
                        "API answer p99 at 200/s",
                        f"{quantile(latencies, 0.99):.1f} ms",
                        "< 10 ms",
                        f"{quantile(latencies, 0.99) / 10:.2f}",
                    ),
                    ("API answer max at 200/s", f"{max(latencies):.1f} ms", "", ""),
                ]
                # Let the 200/s backlog go out and settle before counting requests.
                _settle(env)
                before = stats(dv.url)
                _, sent = open_loop(base, 50, args.seconds, main_sender, offset=0)
                seen, reads = delivered_times(client, {i for i, _ in sent}, 120)
                requests_made = stats(dv.url) - before - reads
                per_message = requests_made / len(sent)
                delays = [seen[i] - at for i, at in sent if i in seen]
                rows += [
                    (
                        "Dataverse requests per message (50/s, 1,000 numbers)",
                        f"{per_message:.3f}",
                        "<= 0.2",
                        f"{per_message / 0.2:.2f}",
                    ),
                    ("messages delivered in Dataverse", f"{len(seen)} / {len(sent)}", "", ""),
                ]
                if delays:
                    rows += [
                        (
                            "POST -> delivered in Dataverse p50",
                            f"{quantile(delays, 0.5):.2f} s",
                            "",
                            "",
                        ),
                        (
                            "POST -> delivered in Dataverse p99",
                            f"{quantile(delays, 0.99):.2f} s",
                            "",
                            "",
                        ),
                    ]
            if not args.skip_rate:
                rows += _rate_phase(env, work, port, sim.url, args.rate_seconds)
    table = Table(title="Outbound benchmark")
    for name in ("figure", "measured", "goal", "ratio to goal"):
        table.add_column(name)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@contextlib.contextmanager
def _worker(env: dict[str, str], work: Path, *, enabled: bool) -> Iterator[None]:
    """A `connector worker` process beside a web-only serve (``--split-worker``)."""
    if not enabled:
        yield
        return
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "worker"],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def _limits() -> str:
    """The simulator's per-sender limits (a sender going over is refused with 429)."""
    return json.dumps({**RATE_SENDERS, "+14155550100": 400.0})


def _settle(env: dict[str, str]) -> None:
    """Wait until no outbound message is waiting to be sent or written."""
    outbox = Outbox(StateStore.from_url(env["CONNECTOR_STATE__URL"]))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            counts = outbox.counts()
            if counts["waiting"] == 0 and counts["unsynced"] == 0:
                break
            time.sleep(0.5)
        time.sleep(2)
    finally:
        outbox.close()


def _rate_phase(
    env: dict[str, str], work: Path, port: int, simulator: str, seconds: float
) -> list[tuple[str, str, str, str]]:
    """Three senders with a backlog each, two worker processes: achieved rate per sender."""
    rows: list[tuple[str, str, str, str]] = []
    with cli(["serve", "--port", str(port), "--no-worker"], env, work, "listening on") as web:
        for sender, rate in RATE_SENDERS.items():
            total = int(rate * (seconds + 20))
            for n in range(total):
                answer = requests.post(
                    f"{web.url}/api/v1/messages",
                    json={"to": number(n), "from": sender, "body": f"rate {n}"},
                    headers={"X-API-Key": KEY},
                    timeout=10,
                )
                answer.raise_for_status()

        def counts() -> tuple[dict[str, int], dict[str, int]]:
            snap = requests.get(f"{simulator}/_simulator/messages", timeout=30).json()
            sent: dict[str, int] = {}
            for message in snap["messages"]:
                sent[message["from"]] = sent.get(message["from"], 0) + 1
            return sent, dict(snap.get("throttled", {}))

        with (
            cli(["worker"], env, work, "Worker running"),
            cli(["worker"], env, work, "Worker running"),
        ):
            time.sleep(5)  # both workers running, past start-up
            first, _ = counts()
            began = time.monotonic()
            time.sleep(seconds)
            last, throttled = counts()
            elapsed = time.monotonic() - began
    for sender, rate in RATE_SENDERS.items():
        achieved = (last.get(sender, 0) - first.get(sender, 0)) / elapsed
        rows.append(
            (
                f"rate of sender at {rate:g}/s (2 workers, {seconds:g} s)",
                f"{achieved:.2f}/s",
                "within 5 %",
                f"{achieved / rate:.3f}",
            )
        )
    rows.append(("provider 429 refusals", str(sum(throttled.values())), "0", ""))
    return rows


if __name__ == "__main__":
    main()
