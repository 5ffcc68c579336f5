"""A fleet as an operator runs one: 2 web processes and 3 worker processes, each in its own
folder, sharing one PostgreSQL state database and one Redis queue, against a standalone
Dataverse emulator (``connector emulator``) and the Twilio simulator.

5,000 signed inbound webhooks are spread over both web processes and some sends go through
the API; mid-run one random worker and one random web process are killed with SIGKILL and
started again. A webhook that fails against the dead web process is retried by the test, as
Twilio would, on the other one (a send the same way, with its ``Idempotency-Key``). At the
end every inbound message is in Dataverse exactly once, every send went to the provider once
and is in Dataverse once, and each periodic job was claimed once for every minute of the run
(the ``periodic_runs`` claims in the shared state store). Status callbacks reach the web
processes through a small round-robin TCP balancer (the public base URL), as behind a load
balancer. The figures (webhooks/s, the cross-process wake-up of a send) are printed.
"""

from __future__ import annotations

import contextlib
import random
import re
import signal
import socket
import statistics
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from connector.bootstrap.local_mode import seed_demo
from connector.emulators.twilio.engine import SimulatorEngine
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID
from connector.state.db import StateStore
from connector.state.periodic_runs import PeriodicRuns
from connector.testing.signing import inbound_fields, signed_form
from tests.e2e.conftest import connector_env
from tests.e2e.test_inbound_e2e import ALICE_ID, TOKEN, start_cli, stop, wait_until
from tests.e2e.test_outbound_e2e import simulator
from tests.integration.test_installer_emulator import make_client

__all__ = ["simulator"]  # the fixture, used by name

PATH = "/webhooks/twilio/messages"
KEY = "fleet-api-key"
WEBHOOKS = 5000
SENDS = 40
CUSTOMERS = ("+14155550123", "+14155550124", "+14155550125")  # Alice, Bob, Carol
SENDER = "+14155550100"
MINUTE_TASKS = (
    "sweep_journal",
    "sweep_outbox",
    "kick_crm_sends_poll",
    "sync_consent",
    "sweep_bulk",
    "close_timed_out_sessions",
    "sweep_events",
    "escalate_idle_sessions",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Balancer:
    """A round-robin TCP balancer on loopback: a connection goes to the next backend that
    accepts it (a dead one is skipped), bytes are piped both ways."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self._next = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        for _ in range(len(self.backends)):
            port = self.backends[self._next % len(self.backends)]
            self._next += 1
            try:
                backend = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                continue
            backend.settimeout(None)
            threading.Thread(target=self._pipe, args=(backend, client), daemon=True).start()
            self._pipe(client, backend)
            return
        client.close()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:  # either side closed: the other is shut down below
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            source.close()

    def close(self) -> None:
        self._stopping = True
        self._sock.close()


@dataclass
class Fleet:
    """The fleet's processes (web by port, workers by slot), each in its own folder."""

    root: Path
    env: dict[str, str]
    web_ports: list[int]
    web: dict[int, Any] = field(default_factory=dict)
    workers: dict[int, Any] = field(default_factory=dict)
    restarts: list[str] = field(default_factory=list)

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(exist_ok=True)
        return path

    def start_web(self, slot: int) -> None:
        port = self.web_ports[slot]
        args = ["serve", "--no-worker", "--port", str(port)]
        self.web[slot], _ = start_cli(args, self.env, self.folder(f"web{slot}"), "listening on")

    def start_worker(self, slot: int) -> None:
        folder = self.folder(f"worker{slot}")
        self.workers[slot], _ = start_cli(["worker"], self.env, folder, "Worker running")

    def kill(self, kind: str, slot: int) -> None:
        process = (self.web if kind == "web" else self.workers)[slot]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        stop(process)  # closes its output
        self.restarts.append(f"{kind}{slot}")
        (self.start_web if kind == "web" else self.start_worker)(slot)

    def stop_all(self) -> None:
        for process in [*self.web.values(), *self.workers.values()]:
            stop(process)

    def base(self, slot: int) -> str:
        return f"http://127.0.0.1:{self.web_ports[slot]}"


@pytest.fixture
def fleet_state_url(postgres_url: str) -> str:
    """A fresh database on the session's PostgreSQL server."""
    name = f"fleet_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return postgres_url.rsplit("/", 1)[0] + "/" + name


def _post_webhook(bases: list[str], first: int, public: str, fields: list[tuple[str, str]]) -> int:
    """Post one signed webhook, retrying like Twilio on the other web process; attempts."""
    signed = signed_form(public + PATH, fields, TOKEN)
    for attempt in range(1, 40):
        base = bases[(first + attempt - 1) % len(bases)]
        try:
            answer = requests.post(
                base + PATH, data=signed.body, headers=signed.headers, timeout=15
            )
            if answer.status_code == 200:
                return attempt
            assert answer.status_code >= 500, (answer.status_code, answer.text)
        except requests.RequestException:  # that web process is down: try again, as Twilio does
            pass
        time.sleep(0.2)
    raise AssertionError(f"webhook {dict(fields)['MessageSid']} never answered 200")


def _send(bases: list[str], first: int, n: int) -> str:
    """One send through the API (retried on the other web process with the same key)."""
    body = {"regarding": {"table": "contact", "id": ALICE_ID}, "body": f"fleet send {n}"}
    headers = {"X-API-Key": KEY, "Idempotency-Key": f"fleet-send-{n}"}
    for attempt in range(40):
        base = bases[(first + attempt) % len(bases)]
        try:
            url = f"{base}/api/v1/messages"
            answer = requests.post(url, json=body, headers=headers, timeout=15)
            if answer.status_code == 202:
                return str(answer.json()["id"])
            assert answer.status_code >= 500, (answer.status_code, answer.text)
        except requests.RequestException:  # that web process is down: try again, as Twilio does
            pass
        time.sleep(0.2)
    raise AssertionError(f"send {n} never accepted")


def _wake_up_latency(fleet: Fleet, engine: SimulatorEngine, count: int = 5) -> list[float]:
    """Seconds from a send's ``POST`` on a web process to a worker process handing it to the
    provider (the simulator's receipt), measured one at a time on an idle fleet."""
    figures = []
    for n in range(count):
        time.sleep(1.1)  # the demo sender's 1 message/s: no send waits for the rate
        before = len(engine.snapshot()["messages"])
        started = time.monotonic()
        _send([fleet.base(n % 2)], 0, 100_000 + n)
        while len(engine.snapshot()["messages"]) == before:
            assert time.monotonic() - started < 30, "the send never reached the provider"
            time.sleep(0.005)
        figures.append(time.monotonic() - started)
    return figures


def _inbound_rows(client: Any, sids: set[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for row in client.query("smsc_messages", select=["smsc_providermessageid"], page_size=5000):
        sid = row.get("smsc_providermessageid")
        if sid in sids:
            counts[sid] += 1
    return counts


@dataclass
class Run:
    """What the traffic phase did."""

    sids: set[str]
    send_ids: list[str]
    attempts: int
    answered: float


def _traffic(fleet: Fleet, public: str, rng: random.Random) -> Run:
    """5,000 webhooks over both web processes and the sends, with the two kills mid-run."""
    bases = [fleet.base(0), fleet.base(1)]
    forms = [
        inbound_fields(CUSTOMERS[n % 3], SENDER, f"fleet message {n} \u2713")
        for n in range(WEBHOOKS)
    ]
    done = 0
    lock = threading.Lock()
    kills = {WEBHOOKS * 35 // 100: "worker", WEBHOOKS * 60 // 100: "web"}

    def deliver(n: int) -> int:
        nonlocal done
        attempts = _post_webhook(bases, n % 2, public, forms[n])
        with lock:
            done += 1
            kind = kills.pop(done, None)
        if kind is not None:  # kill -9 mid-run, from the sending threads themselves
            fleet.kill(kind, rng.randrange(3 if kind == "worker" else 2))
        return attempts

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        sends = pool.map(lambda n: _send(bases, n % 2, n), range(SENDS))
        attempts = sum(pool.map(deliver, range(WEBHOOKS)))
        send_ids = list(sends)
    answered = time.monotonic() - started
    sids = {dict(form)["MessageSid"] for form in forms}
    return Run(sids, send_ids, attempts, answered)


def _periodic_claims(state_url: str, started: float, ended: float) -> tuple[int, int, int]:
    """Check each periodic job was claimed once per minute of the run; (claims, whole
    minutes, claiming processes)."""
    store = StateStore.from_url(state_url)
    try:
        claims = PeriodicRuns(store).runs(since=started - 120)
    finally:
        store.close()
    claimed = Counter((run.task, run.period_start) for run in claims)
    assert set(claimed.values()) == {1}
    for task in MINUTE_TASKS:  # the run spans at least two minutes: two periods each
        assert sum(1 for t, _ in claimed if t == task) >= 2, f"{task} ran in < 2 periods"
    whole_minutes = range(int(started // 60) + 1, int(ended // 60))
    for minute in whole_minutes:
        missing = [t for t in MINUTE_TASKS if (t, minute * 60) not in claimed]
        assert not missing, f"minute {minute}: no run of {missing}"
    return len(claims), len(whole_minutes), len({run.claimed_by for run in claims})


def _fleet_env(root: Path, state_url: str, queue_url: str, urls: dict[str, str]) -> dict[str, str]:
    return connector_env(
        root,
        {
            "CONNECTOR_STATE__URL": state_url,
            "CONNECTOR_QUEUE__URL": queue_url,
            "CONNECTOR_DATAVERSE__URL": urls["dataverse"],
            "CONNECTOR_DATAVERSE__TOKEN": "fleet",
            "CONNECTOR_PUBLIC_BASE_URL": urls["public"],
            "CONNECTOR_TWILIO__AUTH_TOKEN": TOKEN,
            "CONNECTOR_TWILIO__ACCOUNT_SID": LOCAL_ACCOUNT_SID,
            "CONNECTOR_TWILIO__API_BASE_URL": urls["twilio"],
            "CONNECTOR_API__KEYS": f'["{KEY}"]',
            "CONNECTOR_WORKER__LEASE_SECONDS": "10",
            "CONNECTOR_WORKER__OUTBOUND_LINGER_SECONDS": "0.3",
            "CONNECTOR_LOG__LEVEL": "WARNING",
        },
    )


def test_a_fleet_loses_and_duplicates_nothing_through_kills_and_runs_periodic_jobs_once(
    tmp_path: Path,
    fleet_state_url: str,
    redis_url: str,
    simulator: tuple[SimulatorEngine, str],
) -> None:
    engine, simulator_url = simulator
    emulator, line = start_cli(
        ["emulator", "--port", "0"], connector_env(tmp_path), tmp_path, r"listening on http://"
    )
    match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
    assert match is not None
    web_ports = [_free_port(), _free_port()]
    balancer = Balancer(web_ports)
    urls = {
        "dataverse": match.group(1),
        "public": f"http://127.0.0.1:{balancer.port}",
        "twilio": simulator_url,
    }
    client = make_client(urls["dataverse"])
    seed_demo(client, urls["public"])
    fleet = Fleet(tmp_path, _fleet_env(tmp_path, fleet_state_url, redis_url, urls), web_ports)
    try:
        for slot in (0, 1):
            fleet.start_web(slot)
        for slot in (0, 1, 2):
            fleet.start_worker(slot)
        started = time.time()
        latency = _wake_up_latency(fleet, engine)
        run = _traffic(fleet, urls["public"], random.Random(20))
        assert len(fleet.restarts) == 2

        wait_until(lambda: set(_inbound_rows(client, run.sids)) == run.sids, 150)
        in_dataverse = time.time() - started
        wait_until(lambda: all(_has_row(client, m) for m in run.send_ids), timeout=60)
        wanted = {f"fleet send {n}" for n in range(SENDS)}
        wait_until(lambda: wanted <= set(_sent(engine)), timeout=90)
        time.sleep(2.0)  # a second send or write of anything would have shown by now
        sent = _sent(engine)
        assert {body: sent[body] for body in wanted if sent[body] != 1} == {}  # each once
        # Counted once nothing is written any more (a scan during inserts can shift pages).
        rows = _inbound_rows(client, run.sids)
        assert {sid: n for sid, n in rows.items() if n != 1} == {}  # each exactly once
        # The fleet must live through two minute boundaries for "once per period" to be seen
        # twice: a fast run can finish within one (3 s more for the schedulers' claims).
        second_boundary = (int(started // 60) + 2) * 60 + 3
        wait_until(lambda: time.time() >= second_boundary, timeout=125)
        claims, minutes, processes = _periodic_claims(fleet_state_url, started, time.time())
        print(
            f"\nfleet: {WEBHOOKS} webhooks answered in {run.answered:.1f} s "
            f"({WEBHOOKS / run.answered:.0f}/s, {run.attempts - WEBHOOKS} retries), all in "
            f"Dataverse {in_dataverse:.1f} s after the fleet was up; {SENDS} sends; "
            f"restarted {fleet.restarts}; {claims} periodic claims, {minutes} whole minute(s), "
            f"by {processes} process(es); a send's wake-up across processes median "
            f"{statistics.median(latency) * 1000:.0f} ms, max {max(latency) * 1000:.0f} ms"
        )
        # The send path end to end (API commit, queue, claim, provider call) on a shared
        # two-core machine; the queue's own wake-up is checked finely in the integration tier.
        assert statistics.median(latency) < 1.0 and max(latency) < 3.0
    finally:
        fleet.stop_all()
        balancer.close()
        client.api.close()
        stop(emulator)


def _sent(engine: SimulatorEngine) -> Counter[str]:
    """How often the provider was handed each body."""
    return Counter(str(m["body"]) for m in engine.snapshot()["messages"])


def _has_row(client: Any, message_id: str) -> bool:
    try:
        client.retrieve("smsc_messages", message_id)
    except Exception:
        return False
    return True
