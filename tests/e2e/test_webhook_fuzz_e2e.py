"""Fuzzing the inbound webhook: signed forms of any shape over real HTTP to `connector serve`.

The web service runs as a user runs it (``connector serve --no-worker`` as a subprocess, its
journal in a SQLite file, Dataverse the emulator with the demo configuration), its output
kept in a file. Hypothesis (derandomized: a fixed seed, a bounded number of examples) builds
forms signed exactly as Twilio signs them (``connector.testing.signing``, twilio-python's
algorithm): any field names and values in any unicode, any count of fields (past the
service's bounds too), repeated names. For every form:

- the answer is never a 5xx, and the service's output never gains a traceback (printed, or
  in a JSON log line) nor an error-level line;
- a form the service answers 200 is journaled with exactly the fields it was sent (the
  first value of each name, as the parser reads them);
- a well-formed inbound message (Twilio's fields with any unicode body and any extra or
  repeated fields after them) is answered 200 and its body is stored byte-exact in the
  journal, and in Dataverse once ``connector worker`` has written them all.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from connector.bootstrap.local_mode import DEMO_CUSTOMER, DEMO_SENDER, seed_demo
from connector.dataverse.client import DataverseClient
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, TWILIO_INBOUND_PATH
from connector.state.db import StateStore
from connector.state.journal import Journal
from connector.state.journal_file import open_journal_store
from connector.state.journal_table import journal_table
from connector.testing.signing import inbound_fields, signed_form
from tests.e2e.conftest import PUBLIC, Emulator, connector_env
from tests.integration.test_installer_emulator import make_client

TOKEN = "0123456789abcdef0123456789abcdef"
URL_LINE = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
SIDS = itertools.count(1)
FUZZ = settings(
    derandomize=True,
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TWILIO_NAMES = (
    "MessageSid", "SmsSid", "SmsMessageSid", "AccountSid", "MessagingServiceSid", "From", "To",
    "Body", "NumMedia", "NumSegments", "MediaUrl0", "MediaContentType0", "OptOutType",
    "FromCity", "FromState", "FromZip", "FromCountry", "ToCountry", "ApiVersion", "SmsStatus",
)  # fmt: skip
# Fields the parser reads besides the required ones: extras must not be these, or a
# "well-formed" message would not be (an OptOutType of "x" is rightly a 400).
READ = {"OptOutType", "NumSegments", "NumMedia", "MessagingServiceSid"}

names = st.one_of(st.sampled_from(TWILIO_NAMES), st.text(max_size=40))
values = st.text(max_size=300)  # any unicode Twilio can send (UTF-8: no lone surrogates)


@dataclass
class Service:
    url: str
    log: Path
    store: StateStore  # the service's journal file, read as it is written
    env: dict[str, str]
    dataverse: DataverseClient
    seen: int = 0  # how much of the log was checked for tracebacks

    def post(self, pairs: list[tuple[str, str]]) -> requests.Response:
        signed = signed_form(PUBLIC + TWILIO_INBOUND_PATH, pairs, TOKEN)
        return requests.post(
            self.url + TWILIO_INBOUND_PATH, data=signed.body, headers=signed.headers, timeout=30
        )

    def new_output(self) -> str:
        with self.log.open("rb") as log:
            log.seek(self.seen)
            fresh = log.read()
        self.seen += len(fresh)
        return fresh.decode(errors="replace")

    def journaled(self, sid: str) -> dict[str, Any] | None:
        c = journal_table.c
        with self.store.engine.connect() as conn:
            row = conn.execute(select(c.payload).where(c.event_id == sid)).first()
        if row is None:
            return None
        payload: dict[str, Any] = json.loads(row[0])
        return payload


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    emulator = Emulator(tmp_path / "dataverse.db").start()
    seeding = make_client(emulator.url)
    seed_demo(seeding, PUBLIC)
    seeding.api.close()
    env = connector_env(
        tmp_path,
        {
            "CONNECTOR_DATAVERSE__URL": emulator.url,
            "CONNECTOR_DATAVERSE__TOKEN": "e2e",
            "CONNECTOR_PUBLIC_BASE_URL": PUBLIC,
            "CONNECTOR_TWILIO__AUTH_TOKEN": TOKEN,
            "CONNECTOR_LOG__LEVEL": "INFO",
        },
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "connector", "serve", "--no-worker", "--port", "0"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not (found := URL_LINE.search(log.read_text(errors="replace"))):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        store = open_journal_store(env["CONNECTOR_STATE__URL"])
        client = make_client(emulator.url)
        yield Service(found.group(1), log, store, env, client)
        client.api.close()
        store.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
        emulator.stop()


def sid() -> str:
    return f"SM{next(SIDS):032x}"


def check(service: Service, answer: requests.Response) -> None:
    assert answer.status_code < 500, (answer.status_code, answer.text)
    assert_no_trace(service.new_output())


def assert_no_trace(output: str) -> None:
    """No traceback, whether printed or carried by a JSON log line, and no error logged."""
    for marker in ("Traceback", '"exc_info"', '"exception"', '"level": "error"'):
        assert marker not in output, output


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[list[tuple[str, str]], str]:
    """Twilio's fields with any body, then extra fields and repeats in any order."""
    body = draw(st.text(max_size=1600))
    base = inbound_fields(DEMO_CUSTOMER, DEMO_SENDER, body, message_sid=sid())
    known = {name for name, _ in base} | READ
    extra = st.tuples(names.filter(lambda n: n not in known and not n.startswith("Media")), values)
    repeat = st.tuples(st.sampled_from(sorted(known - READ)), values)
    tail = draw(st.lists(st.one_of(extra, repeat), max_size=30))
    return base + tail, body


@st.composite
def any_form(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Any fields at all; half of them with the required ones valid, put anywhere, so that
    parsing goes further; any count (past the bounds too, with repeated names)."""
    pairs = draw(st.lists(st.tuples(names, values), max_size=30))
    if draw(st.booleans()):
        sender = draw(values.filter(str.strip))
        required = [
            ("MessageSid", sid()), ("AccountSid", LOCAL_ACCOUNT_SID), ("To", DEMO_SENDER),
            ("From", sender),
        ]  # fmt: skip
        for field in required:
            pairs.insert(draw(st.integers(0, len(pairs))), field)
    many = draw(st.sampled_from([0, 0, 0, 0, 150, 199, 260]))
    pairs += [(f"P{n % 120}", "v") for n in range(many)]
    return pairs


@pytest.mark.slow
def test_well_formed_messages_of_any_unicode_are_stored_byte_exact(service: Service) -> None:
    sent: dict[str, str] = {}

    @FUZZ
    @given(well_formed())
    def each(example: tuple[list[tuple[str, str]], str]) -> None:
        pairs, body = example
        answer = service.post(pairs)
        check(service, answer)
        assert answer.status_code == 200, answer.text
        first = dict(reversed(pairs))  # the first value of each name, as the parser reads
        stored = service.journaled(first["MessageSid"])
        assert stored is not None
        assert stored["Body"] == body
        assert stored == first  # every field, byte-exact
        sent[first["MessageSid"]] = body

    each()
    # ... and byte-exact in Dataverse once the worker has written them
    journal = Journal(service.store)
    pending = journal.counts().pending
    assert pending == len(sent)
    worker, worker_log = start_worker(service)
    try:
        deadline = time.monotonic() + 120
        while journal.counts().pending and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert_no_trace(worker_log.read_text(errors="replace"))
    assert journal.counts().error == 0, worker_log.read_text(errors="replace")[-3000:]
    rows = service.dataverse.query("smsc_messages", select=["smsc_providermessageid", "smsc_body"])
    written = {row["smsc_providermessageid"]: row["smsc_body"] or "" for row in rows}
    assert {sid: written.get(sid) for sid in sent} == sent


def start_worker(service: Service) -> tuple[subprocess.Popen[bytes], Path]:
    """``connector worker`` on the service's state, its output in a file."""
    log = service.log.with_name("worker.log")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "connector", "worker"],
            env=service.env,
            cwd=service.log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, log


@pytest.mark.slow
def test_any_signed_form_gets_no_5xx_and_what_is_accepted_is_journaled_exactly(
    service: Service,
) -> None:
    statuses: Counter[int] = Counter()

    @FUZZ
    @given(any_form())
    def each(pairs: list[tuple[str, str]]) -> None:
        answer = service.post(pairs)
        check(service, answer)
        statuses[answer.status_code] += 1
        if answer.status_code == 200:
            first = dict(reversed(pairs))
            assert service.journaled(first["MessageSid"]) == first

    each()
    assert statuses[200] >= 10, statuses  # the "accepted" branch was exercised
    assert statuses[400] >= 10, statuses
