"""Reliability report: inbound messages under Dataverse, PostgreSQL and Redis faults.

Run ``python -m benchmarks.reliability [--quick] [--rate R] [--only NAME ...]``. Each scenario
starts afresh, as in production on one machine: a standalone Dataverse emulator (``connector
emulator``, its database on disk, holding the schema, the demo data and the inbound
benchmark's 1,000 numbers in mixed formats, about 14 % unknown) and the connector in its
default topology (``connector serve``, its worker a child process, default settings; state
on SQLite, or on a throwaway PostgreSQL server for the PostgreSQL scenario). Signed inbound
webhooks from numbers drawn at random go open loop at a steady rate (``--rate``, 25/s) for
a lead-in, the fault's window and a tail (10 + 60 + 10 s; ``--quick``: 3 + 6 + 3 s at 10/s).
A webhook that is not answered 200 (or not within 15 s) is sent again after 1, 2, 4 and 8 s,
as a careful provider would. Then the run waits until the journal has nothing pending and
reads every message row back from Dataverse. The faults:

- Dataverse down: the emulator process killed (SIGKILL) and started again on the same port
  and file when the window ends (connections refused meanwhile);
- Dataverse hanging, 429 storm (``Retry-After: 5``), 5xx bursts (5 s of 500/502/503/504 every
  10 s), connection resets mid-response (half the requests carried out, then a TCP reset
  halfway through the answer): the emulator's fault modes (``POST /_emulator/faults``, see
  the README), as no maintained fault-injection proxy is installable here;
- PostgreSQL restarted: the state store's server stopped at once (``immediate``, as a crash)
  and started again after 5 s (2 s with ``--quick``), commits durable;
- Redis restarted: the fleet's set-up (state on PostgreSQL, the task queue on a throwaway
  ``redis-server``, ``CONNECTOR_QUEUE__URL``), Redis killed and started again on the same
  port after 5 s (2 s with ``--quick``), its queued tasks gone.

Per scenario the table shows the messages sent, those answered 200, the webhooks sent again
(not answered 200 in time), lost (answered 200 but no row in Dataverse), duplicated
(MessageSids with more than one row), the maximum delay from a webhook's first sending to
its row confirmed in Dataverse (the journal's ``done`` mark: the row is there by then), the
tracebacks and the error-level lines in the connector's output; then why webhooks were
resent (the answers that were not 200). A keep-alive connection the server closed while
idle is reopened at once and not counted. Not a test;
``tests/e2e/test_reliability_e2e.py`` keeps three quick scenarios at zero lost and zero
duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from benchmarks.inbound_bench import PATH, PUBLIC, TOKEN, number, seed_numbers
from connector.bootstrap.local_mode import DEMO_SENDER, seed_demo
from connector.dataverse.auth import StaticTokenProvider
from connector.dataverse.client import DataverseClient
from connector.dataverse.transport import WebApi
from connector.log_config import configure_logging
from connector.state.journal import Journal
from connector.state.journal_file import open_journal_store
from connector.state.journal_table import journal_table
from connector.testing.postgres import PostgresServer, start_postgres
from connector.testing.redis import RedisServer, start_redis
from connector.testing.signing import inbound_fields, signed_form

NUMBERS = 1000
URL = re.compile(r"(http://127\.0\.0\.1:\d+)")
RETRIES = (1.0, 2.0, 4.0, 8.0)  # seconds before each new attempt at an unanswered webhook
ANSWER_TIMEOUT = 15.0  # as Twilio waits for a webhook's answer


@dataclass(frozen=True)
class Timing:
    """How long a scenario's phases last and how fast webhooks come."""

    rate: float = 25.0
    lead: float = 10.0
    window: float = 60.0
    tail: float = 10.0
    settle: float = 900.0  # the longest wait for the journal to have nothing pending
    restart_pause: float = 5.0  # PostgreSQL's time down
    numbers: int = NUMBERS  # distinct senders seeded (the report: the inbound benchmark's)
    logs: Path | None = None  # where to keep each scenario's connector output

    @classmethod
    def quick(cls, rate: float | None = None) -> Timing:
        return cls(rate or 10.0, 3.0, 6.0, 3.0, 300.0, 2.0)


class Process:
    """A ``connector`` subprocess whose output goes to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, marker: str) -> None:
        self.log = log
        self.offset = log.stat().st_size if log.exists() else 0  # a restart appends
        with log.open("ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "connector", *args],
                env=env,
                cwd=log.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = next((ln for ln in self._lines() if marker in ln), None)
            if line is not None:
                found = URL.search(line)
                self.url = found.group(1) if found else ""
                return
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"connector {args[0]} did not start: {log.read_text()[-2000:]}")

    def _lines(self) -> list[str]:
        with self.log.open("rb") as log:
            log.seek(self.offset)
            return log.read().decode(errors="replace").splitlines()

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait(timeout=60)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


class Emulator:
    """The standalone Dataverse emulator on a database file, restartable on the same port."""

    def __init__(self, db: Path, env: dict[str, str]) -> None:
        self.db, self.env, self.port = db, env, 0
        self.process: Process | None = None

    def start(self) -> Emulator:
        args = ["emulator", "--port", str(self.port), "--db", str(self.db), "--no-auth"]
        self.process = Process(args, self.env, self.db.with_suffix(".log"), "listening on")
        self.port = int(self.process.url.rsplit(":", 1)[1])
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def fault(self, **body: object) -> None:
        answer = requests.post(f"{self.url}/_emulator/faults", json=body, timeout=10)
        answer.raise_for_status()

    def client(self) -> DataverseClient:
        return DataverseClient(WebApi(self.url, StaticTokenProvider("bench"), requests.Session()))


@dataclass
class Stack:
    """What a scenario's fault acts on."""

    emulator: Emulator
    postgres: PostgresServer | None
    redis: RedisServer | None = None


Fault = Callable[[Stack, Timing], None]


def dataverse_down(stack: Stack, timing: Timing) -> None:
    stack.emulator.kill()
    time.sleep(timing.window)
    stack.emulator.start()


def emulator_fault(mode: str, **extra: object) -> Fault:
    def inject(stack: Stack, timing: Timing) -> None:
        stack.emulator.fault(mode=mode, seconds=timing.window, **extra)
        time.sleep(timing.window)

    return inject


def five_xx_bursts(stack: Stack, timing: Timing) -> None:
    burst = min(5.0, timing.window / 2)
    statuses = [500, 502, 503, 504]
    ends = time.monotonic() + timing.window
    n = 0
    while time.monotonic() + burst <= ends:
        stack.emulator.fault(mode="error", seconds=burst, status=statuses[n % len(statuses)])
        time.sleep(2 * burst)
        n += 1


def postgres_restart(stack: Stack, timing: Timing) -> None:
    assert stack.postgres is not None
    stack.postgres.halt()
    time.sleep(timing.restart_pause)
    stack.postgres.resume()


def redis_restart(stack: Stack, timing: Timing) -> None:
    assert stack.redis is not None
    stack.redis.kill()
    time.sleep(timing.restart_pause)
    stack.redis.start()


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: Fault
    postgres: bool = False
    redis: bool = False  # the task queue on Redis (state on PostgreSQL, as a fleet runs)


SCENARIOS = (
    Scenario("Dataverse down", dataverse_down),
    Scenario("Dataverse hanging", emulator_fault("hang")),
    Scenario("429 storm, Retry-After 5 s", emulator_fault("throttle", retry_after=5)),
    Scenario("5xx bursts", five_xx_bursts),
    Scenario("connection resets mid-response", emulator_fault("reset", ratio=0.5)),
    Scenario("PostgreSQL restarted", postgres_restart, postgres=True),
    Scenario("Redis restarted", redis_restart, postgres=True, redis=True),
)


@dataclass
class Result:
    """One scenario's figures."""

    scenario: str
    messages: int = 0
    answered: int = 0
    resent: int = 0
    lost: int = 0
    duplicated: int = 0
    max_delay: float = 0.0
    tracebacks: int = 0
    errors: int = 0
    why_resent: Counter[str] = field(default_factory=Counter)
    lost_sids: list[str] = field(default_factory=list)


@dataclass
class Sent:
    """A webhook's fate: when it was first sent and whether any attempt was answered 200."""

    sid: str
    first: float = 0.0
    answered: bool = False
    attempts: int = 0
    failures: list[str] = field(default_factory=list)  # why each earlier attempt failed


def seed_template(folder: Path, env: dict[str, str], numbers: int = NUMBERS) -> Path:
    """An emulator database with the schema, the demo data and the numbers (made once)."""
    emulator = Emulator(folder / "dv.db", env).start()
    try:
        client = emulator.client()
        seed_demo(client, PUBLIC)
        seed_numbers(client, numbers)
        client.api.close()
    finally:
        emulator.stop()
    return folder / "dv.db"


async def _send_all(base: str, timing: Timing, sent: list[Sent], bodies: list[bytes]) -> None:
    host, port = base.removeprefix("http://").split(":")
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1

    async def attempt(raw: bytes) -> str:
        """One sending: "200", another status, "timeout" or "connection error"."""
        reused = bool(idle)
        conn = idle.pop() if idle else await asyncio.open_connection(host, int(port))
        try:
            status = await asyncio.wait_for(_exchange(*conn, raw), ANSWER_TIMEOUT)
        except _Stale:
            conn[1].close()
            if not reused:
                return "connection error"
            return await attempt(raw)  # the server closed an idle keep-alive connection
        except TimeoutError:
            conn[1].close()
            return "timeout"
        except (OSError, asyncio.IncompleteReadError, ValueError):
            conn[1].close()
            return "connection error"
        idle.append(conn)
        return str(status)

    async def one(index: int) -> None:
        await asyncio.sleep(max(0.0, start + index / timing.rate - loop.time()))
        sent[index].first = time.time()
        for pause in (*RETRIES, None):
            sent[index].attempts += 1
            try:
                outcome = await attempt(bodies[index])
            except OSError:
                outcome = "connection refused"  # the web process is restarting or overloaded
            if outcome == "200":
                sent[index].answered = True
                return
            sent[index].failures.append(outcome)
            if pause is not None:
                await asyncio.sleep(pause)

    await asyncio.gather(*(one(i) for i in range(len(bodies))))
    for _, writer in idle:
        writer.close()


class _Stale(Exception):  # noqa: N818 - a condition, handled where it is raised
    """The connection was closed before any answer (an idle keep-alive the server ended)."""


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    try:
        writer.write(raw)
        await writer.drain()
        status_line = await reader.readline()
    except ConnectionResetError as exc:
        raise _Stale from exc
    if not status_line:
        raise _Stale
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


def _webhooks(count: int, numbers: int, host: str, seed: str) -> tuple[list[Sent], list[bytes]]:
    draw = random.Random(seed)
    sent: list[Sent] = []
    bodies: list[bytes] = []
    for n in range(count):
        sender = number(draw.randrange(numbers))
        fields = inbound_fields(sender, DEMO_SENDER, f"reliability {seed} message {n}")
        req = signed_form(PUBLIC + PATH, fields, TOKEN)
        head = [f"POST {PATH} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(req.body)}"]
        head += [f"{name}: {value}" for name, value in req.headers.items()]
        bodies.append(("\r\n".join(head) + "\r\n\r\n").encode() + req.body)
        sent.append(Sent(dict(fields)["MessageSid"]))
    return sent, bodies


def _settle(state_url: str, answered: int, timeout: float) -> dict[str, float]:
    """Wait until the journal has nothing pending and every answered message is in it;
    each event's done time."""
    store = open_journal_store(state_url)  # its own file beside a SQLite state file
    journal = Journal(store)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = journal.counts()
            if counts.pending == 0 and counts.done + counts.error >= answered:
                break
            time.sleep(0.5)
        c = journal_table.c
        with store.engine.connect() as conn:
            rows = conn.execute(select(c.event_id, c.done_at).where(c.done_at.is_not(None)))
            return {str(sid): float(done) for sid, done in rows}
    finally:
        store.close()


def _stored(emulator: Emulator) -> Counter[str]:
    client = emulator.client()
    try:
        rows = client.query("smsc_messages", select=["smsc_providermessageid"], page_size=5000)
        return Counter(str(row["smsc_providermessageid"]) for row in rows)
    finally:
        client.api.close()


@contextmanager
def _stack(scenario: Scenario, template: Path, work: Path, env: dict[str, str]) -> Iterator[
    tuple[Stack, Process, str]
]:  # fmt: skip
    """Emulator (a copy of the template), state store, `connector serve`; torn down after."""
    with ExitStack() as stack:
        for part in template.parent.glob(template.name + "*"):  # with any -wal/-shm file
            shutil.copy(part, work / part.name)
        emulator = Emulator(work / "dv.db", env).start()
        stack.callback(emulator.stop)
        postgres = start_postgres(durable=True) if scenario.postgres else None
        if postgres is not None:
            stack.callback(postgres.stop)
        redis = start_redis() if scenario.redis else None
        if redis is not None:
            stack.callback(redis.stop)
            env = env | {"CONNECTOR_QUEUE__URL": redis.url}
        state_url = postgres.url if postgres else f"sqlite:///{work / 'state.db'}"
        serve_env = env | {
            "CONNECTOR_STATE__URL": state_url,
            "CONNECTOR_DATAVERSE__URL": emulator.url,
            "CONNECTOR_DATAVERSE__TOKEN": "bench",
            "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
            "CONNECTOR_TWILIO__AUTH_TOKEN": TOKEN,
        }
        web = Process(["serve", "--port", "0"], serve_env, work / "serve.log", "listening on")
        stack.callback(web.stop)
        yield Stack(emulator, postgres, redis), web, state_url


def run_scenario(scenario: Scenario, timing: Timing, template: Path, env: dict[str, str]) -> Result:
    """Run one scenario from a fresh stack; its figures."""
    result = Result(scenario.name)
    fault = scenario.fault
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        work = Path(tmp)
        with _stack(scenario, template, work, env) as (stack, web, state_url):
            total = int(timing.rate * (timing.lead + timing.window + timing.tail))
            host = web.url.removeprefix("http://")
            sent, bodies = _webhooks(total, timing.numbers, host, scenario.name)

            def inject() -> None:
                time.sleep(timing.lead)
                fault(stack, timing)

            injector = threading.Thread(target=inject, daemon=True)
            injector.start()
            asyncio.run(_send_all(web.url, timing, sent, bodies))
            injector.join()
            answered = [s for s in sent if s.answered]
            done = _settle(state_url, len(answered), timing.settle)
            stored = _stored(stack.emulator)
            log = (work / "serve.log").read_text(errors="replace")
        if timing.logs is not None:
            timing.logs.mkdir(parents=True, exist_ok=True)
            slug = re.sub(r"[^a-z0-9]+", "-", scenario.name.lower()).strip("-")
            (timing.logs / f"{slug}.log").write_text(log)
        result.messages, result.answered = len(sent), len(answered)
        result.resent = sum(s.attempts - 1 for s in sent)
        result.why_resent = Counter(reason for s in sent for reason in s.failures)
        result.lost_sids = [s.sid for s in answered if s.sid not in stored]
        result.lost = len(result.lost_sids)
        result.duplicated = sum(1 for n in stored.values() if n > 1)
        delays = [done[s.sid] - s.first for s in answered if s.sid in done]
        result.max_delay = max(delays, default=0.0)
        result.tracebacks = log.count("Traceback (most recent call last)")
        result.errors = sum(1 for line in log.splitlines() if '"level": "error"' in line)
    return result


def connector_free_env() -> dict[str, str]:
    """This process's environment without CONNECTOR_* settings, logging warnings and up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    return env | {"CONNECTOR_LOG__LEVEL": "WARNING"}


def run(scenarios: list[Scenario], timing: Timing) -> list[Result]:
    """Every scenario in turn, from one seeded emulator template."""
    env = connector_free_env()
    with tempfile.TemporaryDirectory(prefix="reliability-template-") as tmp:
        template = seed_template(Path(tmp), env, timing.numbers)
        return [run_scenario(s, timing, template, env) for s in scenarios]


def report(results: list[Result], timing: Timing) -> None:
    title = (
        f"Inbound under faults: default `connector serve`, {timing.rate:g} webhooks/s for "
        f"{timing.lead:g} + {timing.window:g} (fault) + {timing.tail:g} s per scenario"
    )
    table = Table(title=title)
    columns = ("messages", "answered 200", "webhooks resent", "lost", "duplicated", "max delay")
    table.add_column("scenario")
    for column in (*columns, "tracebacks", "errors logged"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r.scenario,
            str(r.messages),
            str(r.answered),
            str(r.resent),
            str(r.lost),
            str(r.duplicated),
            f"{r.max_delay:.1f} s",
            str(r.tracebacks),
            str(r.errors),
        )
    console = Console(width=max(150, Console().width))
    console.print(table)
    for r in results:
        if r.why_resent:
            reasons = ", ".join(f"{why} x{n}" for why, n in r.why_resent.most_common())
            console.print(f"{r.scenario}: webhooks resent after {reasons}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows (a smoke run)")
    parser.add_argument("--rate", type=float, default=None, help="webhooks per second")
    names = [s.name for s in SCENARIOS]
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help=f"scenarios whose name starts so: {names}"
    )
    parser.add_argument("--logs", type=Path, help="keep each scenario's connector output here")
    args = parser.parse_args()
    configure_logging("WARNING")
    timing = Timing.quick(args.rate) if args.quick else Timing(rate=args.rate or 25.0)
    timing = dataclasses.replace(timing, logs=args.logs)
    chosen = [s for s in SCENARIOS if not args.only or any(s.name.startswith(o) for o in args.only)]
    if not chosen:
        parser.error("no scenario matches --only")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up servers when stopped
    report(run(chosen, timing), timing)


if __name__ == "__main__":
    main()
