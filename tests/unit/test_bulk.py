"""Bulk sends: a job through the real send path and outbox (fakes for Dataverse and the
provider), outcomes per recipient, a crash that sends nobody twice, the pace, the view."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from connector.domain.bulk import Outcome, Recipient, RecipientState, mark_duplicates
from connector.domain.model import Configuration, MessageCategory, Provider
from connector.domain.phone_records import RecordTypeSpec
from connector.domain.status import MessageStatus
from connector.errors import ConnectorError
from connector.services.bulk import BulkOrder, BulkService
from connector.services.outbound import SendService
from connector.services.outbox_sender import OutboxSender
from connector.state.bulk import BulkJobs
from connector.state.caches import ConfigurationCache
from connector.state.db import StateStore
from connector.state.outbox import Outbox
from connector.state.session_mirror import SessionCache
from connector.testing.conversations import FakeConfigurationDirectory, TableResolver
from connector.testing.fake_sms import FakeSmsProvider
from connector.testing.send_rate import FakeSendRate
from connector.testing.templates import FakeRecordReader, FakeTemplateCatalog

US = Configuration(
    name="US desk",
    provider=Provider.SIMULATOR,
    sender_number="+14155550100",
    id="cfg-us",
    owner_id="user-1",
    default_country="US",
    rate_per_second=1.0,
)
SPECS = (RecordTypeSpec("contact", "contacts", "contactid", "fullname", ("mobilephone",)),)
BLOCKED = "+14155550177"
OPTED_OUT = "+14155550178"


def numbers(count: int, start: int = 200) -> list[str]:
    return [f"+1415555{start + n:04d}" for n in range(count)]


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    bulk: BulkService
    jobs: BulkJobs
    outbox: Outbox
    configurations: ConfigurationCache
    clock: Clock
    provider: FakeSmsProvider = field(default_factory=FakeSmsProvider)

    def drain_outbox(self) -> None:
        sender = OutboxSender(
            self.outbox, self.provider, self.configurations, FakeSendRate(), sleep=lambda _s: None
        )
        while sender.run_once().sent:
            pass

    def run(self, times: int = 50) -> None:
        for _ in range(times):
            due = self.bulk.run_once()
            self.drain_outbox()
            if due is None:
                return
            self.clock.now = max(self.clock.now, due)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    outbox = Outbox(store)
    directory = FakeConfigurationDirectory(configurations=[US], blocked={"cfg-us": {BLOCKED}})
    configurations = ConfigurationCache(directory)
    records = FakeRecordReader()
    records.put("contact", "c-1", {"mobilephone": None}, name="No Phone")
    records.put("contact", "c-2", {"mobilephone": "+14155550190"}, name="Has Phone")
    clock = Clock()

    def consent(to: str, _config: str, _category: MessageCategory) -> str | None:
        return "consent_opted_out" if to == OPTED_OUT else None

    sender = SendService(
        configurations=configurations,
        sessions=SessionCache(store),
        resolver=TableResolver(),
        records=records,
        templates=FakeTemplateCatalog(),
        outbox=outbox,
        record_types=lambda _sender: SPECS,
        consent=consent,
        clock=clock,
    )
    jobs = BulkJobs(store)
    bulk = BulkService(
        jobs, sender, configurations, FakeTemplateCatalog(), outbox.exists, clock=clock
    )
    yield World(bulk, jobs, outbox, configurations, clock)
    outbox.close()


def outcomes(world: World, job_id: str) -> dict[int, tuple[str, str | None]]:
    view = world.bulk.view(job_id, limit=1000)
    return {r["index"]: (r["outcome"], r["code"]) for r in view["recipients"]}


def test_every_recipient_ends_with_its_outcome_and_bad_ones_never_stop_the_job(
    world: World,
) -> None:
    good = numbers(5)
    recipients = [
        *[Recipient(n) for n in good],
        Recipient(good[0]),  # the same number again
        Recipient("not a number"),
        Recipient(None, "contact", "c-1"),  # no phone on the record
        Recipient(BLOCKED),
        Recipient(OPTED_OUT),
        Recipient(None, "contact", "c-2"),
        Recipient("+15005550001"),  # the provider refuses it (21211)
    ]
    answer = world.bulk.submit(BulkOrder(body="Sale today"), recipients)
    assert answer["total"] == 12 and answer["duplicates"] == 1
    world.run()
    found = outcomes(world, answer["id"])
    assert [found[i][0] for i in range(5)] == ["sent"] * 5 or all(
        found[i][0] == "queued" for i in range(5)
    )
    assert found[5] == ("duplicate", "duplicate")
    assert found[6] == ("invalid_number", "invalid_phone_number")
    assert found[7] == ("no_number", "regarding_without_phone")
    assert found[8] == ("blocked", "number_blocked")
    assert found[9] == ("opted_out", "consent_opted_out")
    assert found[10][0] == "queued"
    assert found[11][0] == "provider_error"
    sent_to = sorted(request.to for request, _ in world.provider.sent)
    assert sent_to == sorted([*good, "+14155550190"])
    view = world.bulk.view(answer["id"])
    assert view["processed"] == 12 and view["counts"]["provider_error"] == 1


def test_sent_and_delivered_follow_the_outbox(world: World) -> None:
    job = world.bulk.submit(BulkOrder(body="Hi"), [Recipient(n) for n in numbers(2)])["id"]
    world.run()
    first = world.bulk.view(job)["recipients"][0]
    world.outbox.apply(first["message_id"], MessageStatus.DELIVERED, world.clock.now + 1)
    world.outbox.apply(
        world.bulk.view(job)["recipients"][1]["message_id"], MessageStatus.SENT, world.clock.now
    )
    view = world.bulk.view(job)
    assert [r["outcome"] for r in view["recipients"]] == ["delivered", "sent"]
    assert view["status"] == "completed"  # nothing left to send (sent may still be delivered)


class CrashingJobs(BulkJobs):
    """Loses the worker after its first recipients were handed on, before they were recorded."""

    crashes: int = 1

    def record(self, job_id: str, results: Sequence[RecipientState]) -> None:
        if self.crashes and results:
            self.crashes -= 1
            raise RuntimeError("worker killed")
        super().record(job_id, results)


def test_a_job_resumed_after_a_crash_sends_nobody_twice(world: World) -> None:
    crashing = CrashingJobs(world.jobs.store)
    world.bulk.jobs = crashing
    recipients = [Recipient(n) for n in numbers(30)]
    job = world.bulk.submit(BulkOrder(body="Once"), recipients)["id"]
    with pytest.raises(RuntimeError):
        world.bulk.run_once()
    assert world.outbox.counts()["waiting"] > 0  # handed on, never recorded
    assert world.bulk.run_once() is not None  # leased by the dead worker: not yet
    world.clock.now += world.bulk.lease_seconds + 1
    world.run()
    sent = [request.to for request, _ in world.provider.sent]
    assert sorted(sent) == sorted(numbers(30))
    assert all(o in {"sent", "queued"} for o, _ in outcomes(world, job).values())


def test_the_job_keeps_only_a_few_seconds_of_sending_in_the_outbox(world: World) -> None:
    job = world.bulk.submit(BulkOrder(body="Paced"), [Recipient(n) for n in numbers(25)])["id"]
    world.bulk.run_once()
    assert world.outbox.counts()["waiting"] == 10  # 10 s at 1 message a second
    world.bulk.run_once()
    assert world.outbox.counts()["waiting"] == 10  # nothing more until the outbox drains
    view = world.bulk.view(job)
    assert view["counts"]["pending"] == 15 and view["status"] == "running"
    assert view["estimated_finish"] > view["created_at"]
    world.run()
    assert len(world.provider.sent) == 25
    assert world.bulk.view(job)["handed_over_at"] is not None


def test_a_transient_failure_backs_the_job_off_and_resumes_at_that_recipient(
    world: World,
) -> None:
    class Flaky:
        def __init__(self, inner: SendService) -> None:
            self.inner, self.failures = inner, 1

        def send(self, order: object, *, idempotency_key: str | None = None) -> dict[str, object]:
            if self.failures:
                self.failures -= 1
                raise ConnectorError("Dataverse away", transient=True)
            return self.inner.send(order, idempotency_key=idempotency_key)  # type: ignore[arg-type]

    world.bulk.sender = Flaky(world.bulk.sender)  # type: ignore[arg-type]
    job = world.bulk.submit(BulkOrder(body="Later"), [Recipient(n) for n in numbers(3)])["id"]
    due = world.bulk.run_once()
    assert due is not None and due > world.clock.now
    assert world.bulk.view(job)["counts"] == {"pending": 3}
    world.run()
    assert len(world.provider.sent) == 3


@pytest.mark.parametrize(
    ("order", "recipients", "code"),
    [
        (BulkOrder(body="x", template_id="t-1"), [Recipient("+14155550123")], "body_or_template"),
        (BulkOrder(body="  "), [Recipient("+14155550123")], "body_empty"),
        (BulkOrder(body="x"), [], "recipients_out_of_range"),
        (BulkOrder(template_id="t-404"), [Recipient("+14155550123")], "unknown_template"),
        (BulkOrder(body="x", configuration_id="nope"), [Recipient("+1415")], "unknown_sender"),
    ],
)
def test_a_bad_request_stores_nothing(
    world: World, order: BulkOrder, recipients: list[Recipient], code: str
) -> None:
    with pytest.raises(ConnectorError) as caught:
        world.bulk.submit(order, recipients)
    assert caught.value.code == code
    assert world.jobs.next_due() is None


def test_duplicates_are_the_same_number_however_written_or_the_same_record() -> None:
    flags = mark_duplicates(
        [
            Recipient("+1 415 555 0123"),
            Recipient("+14155550123"),
            Recipient(None, "contact", "a"),
            Recipient(None, "contact", "a"),
            Recipient(None, "lead", "a"),
        ]
    )
    assert flags == [False, True, False, True, False]
    assert Outcome.DUPLICATE.value == "duplicate"
