"""A fleet's shared state on real servers: several *processes* on one PostgreSQL database.

Three worker processes claiming journal rows and outbox rows at once never hold the same row;
eight processes opening an empty database at once all start (the tables are made once);
racing schedulers on separate connections queue each periodic job once per period; and event
deliveries count what was recorded (SQLite file and PostgreSQL alike).
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from huey import crontab

from connector.domain.events import EventType, received_event
from connector.domain.outbound import OutboundMessage
from connector.secret_box import SecretBox
from connector.services.events import EventService
from connector.state.db import StateStore
from connector.state.journal import Journal
from connector.state.outbox import Outbox
from connector.state.periodic_runs import PeriodicRuns
from connector.state.subscriptions import Subscriptions
from connector.testing.event_poster import FakeEventPoster
from connector.worker.queue import make_huey
from tests.unit.test_events import inbound as inbound_write

ROOT = Path(__file__).resolve().parents[2]

CLAIMER = """
import json, sys, time
from connector.state.db import StateStore
from connector.state.journal import Journal
from connector.state.outbox import Outbox

kind, url = sys.argv[1], sys.argv[2]
store = StateStore.from_url(url)
print("ready", flush=True)
sys.stdin.readline()  # every process starts claiming at the same moment
claimed = []
if kind == "journal":
    journal = Journal(store)
    while batch := journal.claim(5, lease_seconds=600):
        claimed += [entry.event_id for entry in batch]
        journal.mark_done_many(batch)
    journal.close()
else:
    outbox = Outbox(store)
    while batch := outbox.claim_sends("c1", 5, lease_seconds=600):
        claimed += [item.message.id for item in batch]
    while synced := outbox.claim_unsynced(5, lease_seconds=600):
        claimed += ["sync:" + item.message.id for item in synced]
    outbox.close()
store.close()
print(json.dumps(claimed), flush=True)
"""

OPENER = """
import importlib, pkgutil, sys
import connector.state
for module in pkgutil.iter_modules(connector.state.__path__):  # each declares its tables
    importlib.import_module("connector.state." + module.name)
from connector.state.db import StateStore, metadata
assert len(metadata.tables) > 15
sys.stdin.readline()
StateStore.from_url(sys.argv[1]).close()
print("opened", flush=True)
"""


def _processes(script: str, *args: str, count: int) -> list[str]:
    """Run ``count`` copies of ``script`` released together; each one's last output line."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen(  # noqa: S603 - our own script
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(count)
    ]
    if "ready" in script:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
    outputs = []
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    finished = [(proc, *proc.communicate(timeout=120)) for proc in procs]
    for proc, out, err in finished:
        assert proc.returncode == 0, err[-3000:]
        outputs.append(out.strip().splitlines()[-1])
    return outputs


@pytest.mark.parametrize("state_url", ["postgresql"], indirect=True)
def test_three_worker_processes_never_claim_the_same_journal_row(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    journal = Journal(store)
    try:
        for n in range(600):
            journal.append("twilio", f"SM{n:032d}", {"n": n})
        claimed = [json.loads(line) for line in _processes(CLAIMER, "journal", state_url, count=3)]
        every = [sid for one in claimed for sid in one]
        assert len(every) == len(set(every)) == 600
        assert all(one for one in claimed), "each process should have taken some rows"
        assert journal.counts().done == 600
    finally:
        journal.close()
        store.close()


@pytest.mark.parametrize("state_url", ["postgresql"], indirect=True)
def test_three_worker_processes_never_claim_the_same_outbox_row(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    outbox = Outbox(store)
    try:
        for n in range(300):
            message = OutboundMessage(
                id=f"m{n:04d}",
                configuration_id="c1",
                to_number="+14155550100",
                from_number="+15005550006",
                body="Hello",
                session_id="s1",
                created_at=1000.0 + n,
                updated_at=1000.0 + n,
            )
            outbox.add(message, {})
        claimed = [json.loads(line) for line in _processes(CLAIMER, "outbox", state_url, count=3)]
        every = [item for one in claimed for item in one]
        sends = [item for item in every if not item.startswith("sync:")]
        syncs = [item for item in every if item.startswith("sync:")]
        assert len(sends) == len(set(sends)) == 300
        assert len(syncs) == len(set(syncs)) == 300
    finally:
        outbox.close()
        store.close()


@pytest.mark.parametrize("state_url", ["postgresql"], indirect=True)
def test_eight_processes_opening_an_empty_database_together_all_start(state_url: str) -> None:
    assert _processes(OPENER, state_url, count=8) == ["opened"] * 8


def test_racing_schedulers_queue_each_periodic_job_once_per_period(state_url: str) -> None:
    names = ("sweep_every_minute", "sync_every_five")
    stores = [StateStore.from_url(state_url) for _ in range(3)]
    queues = []
    for index, store in enumerate(stores):
        huey = make_huey(
            state_url, memory=True, claim_period=PeriodicRuns(store, f"worker-{index}").claim
        )
        huey.periodic_task(crontab(minute="*"), name=names[0])(lambda: None)
        huey.periodic_task(crontab(minute="*/5"), name=names[1])(lambda: None)
        queues.append(huey)
    try:
        queued: list[str] = []
        lock = threading.Lock()

        def scheduler(huey: object, minute: int, second: int) -> None:
            at = datetime.datetime(2026, 1, 1, 10, minute, second)
            tasks = huey.read_periodic(at)  # type: ignore[attr-defined]
            with lock:
                queued.extend(f"{minute}:{task.name}" for task in tasks)

        for minute in (0, 1, 2):
            threads = [
                threading.Thread(target=scheduler, args=(huey, minute, 7 + 20 * n))
                for n, huey in enumerate(queues)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        expected = ["0:sweep_every_minute", "0:sync_every_five", "1:sweep_every_minute"]
        assert sorted(queued) == sorted([*expected, "2:sweep_every_minute"])
        runs = PeriodicRuns(stores[0]).runs()
        ten = int(datetime.datetime(2026, 1, 1, 10, tzinfo=datetime.UTC).timestamp())
        assert [(r.task, r.period_start - ten) for r in runs] == [
            ("sweep_every_minute", 0),
            ("sync_every_five", 0),
            ("sweep_every_minute", 60),
            ("sweep_every_minute", 120),
        ]
        assert {r.claimed_by for r in runs} <= {"worker-0", "worker-1", "worker-2"}
    finally:
        for store in stores:
            store.close()


def test_a_scheduler_that_cannot_claim_skips_the_period_instead_of_failing(
    tmp_path: Path,
) -> None:
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    runs = PeriodicRuns(store)
    huey = make_huey("sqlite://", memory=True, claim_period=runs.claim)
    huey.periodic_task(crontab(minute="*"), name="sweep")(lambda: None)
    assert [t.name for t in huey.read_periodic(datetime.datetime(2026, 1, 1, 10, 0))] == ["sweep"]
    with store.engine.begin() as conn:  # the claims table is gone: the claim fails
        conn.exec_driver_sql("DROP TABLE periodic_runs")
    assert huey.read_periodic(datetime.datetime(2026, 1, 1, 10, 1)) == []
    store.close()


def test_event_deliveries_count_what_was_recorded_on_both_backends(state_url: str) -> None:
    store = StateStore.from_url(state_url)
    subscriptions = Subscriptions(store, SecretBox([Fernet.generate_key().decode()]))
    nudges: list[int] = []
    service = EventService(subscriptions, FakeEventPoster(), nudge=lambda: nudges.append(1))
    try:
        sub = service.subscribe(EventType.SMS_RECEIVED, "https://flow.example/hook")
        event = received_event(inbound_write("SM1"))
        assert subscriptions.enqueue([(event, sub)], 1.0) == 1
        assert subscriptions.enqueue([(event, sub)], 2.0) == 0  # the same event: nothing new
        service.received([inbound_write("SM1")])  # told again: nothing recorded, no nudge
        assert nudges == []
    finally:
        store.close()
