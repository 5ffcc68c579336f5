"""Rows created in Dataverse through the one send path: once, in place, refusals explained,
the poll once per interval for the fleet (the real send path and outbox, fake rows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from connector.domain.crm_sends import NO_PHONE_NUMBER, CrmSendRow
from connector.domain.model import MessageCategory, Template
from connector.domain.routing import RecordRef
from connector.domain.status import FailureCategory
from connector.errors import DataverseUnavailableError
from connector.services.crm_sends import CrmSends, Outcome
from connector.services.outbound import SendOrder
from connector.testing.crm_sends import FakeCrmSendLedger, FakeCrmSendRows
from tests.unit.test_outbound_send import ALICE, CONTACT, US, World, world

__all__ = ["world"]  # the fixture, used by name
ROW = CrmSendRow(
    id="6f1c2b2e-0000-4000-8000-000000000001",
    outbound=True,
    queued=True,
    regarding=CONTACT,
    body="Your order is ready",
    modified_at="2026-01-05T09:30:00+00:00",
)


@dataclass
class Clock:
    now: float = 1_767_605_400.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    sends: CrmSends
    rows: FakeCrmSendRows
    ledger: FakeCrmSendLedger
    world: World
    clock: Clock = field(default_factory=Clock)


@pytest.fixture
def setup(world: World) -> Setup:
    rows, ledger, clock = FakeCrmSendRows([ROW]), FakeCrmSendLedger(), Clock()
    sends = CrmSends(
        world.service, rows, ledger, world.outbox.exists, interval=60.0, limit=2, clock=clock
    )
    return Setup(sends, rows, ledger, world, clock)


def waiting(setup: Setup) -> int:
    return setup.world.outbox.counts()["waiting"]


def test_a_row_is_queued_under_its_own_id_once_however_often_it_is_seen(setup: Setup) -> None:
    assert setup.sends.take(ROW) is Outcome.QUEUED
    stored = setup.world.outbox.get(ROW.id)
    assert stored is not None
    assert (stored.to_number, stored.body) == (ALICE, "Your order is ready")
    assert (stored.regarding_table, stored.regarding_id) == (CONTACT.table, CONTACT.id)
    assert stored.session_id  # joins the conversation of that number and sender
    assert setup.sends.take(ROW) is Outcome.DUPLICATE
    event = {"row_id": ROW.id, "target": {}}
    assert setup.sends.take_events([(event, 0.0), (event, 0.0)]) == [None, None]
    assert waiting(setup) == 1


def test_two_paths_racing_past_the_outbox_check_still_store_the_row_once(setup: Setup) -> None:
    racing = replace(setup.sends, in_outbox=lambda _row_id: False)
    assert racing.take(ROW) is Outcome.QUEUED
    racing.take(ROW)
    changed = replace(ROW, body="edited by a flow between the two deliveries")
    assert racing.take(changed) is Outcome.DUPLICATE  # not refused, not sent again
    assert waiting(setup) == 1 and setup.rows.failures == {}


def test_a_template_row_without_a_body_is_rendered_against_its_record(setup: Setup) -> None:
    setup.world.templates.add(Template("T", "Hi {firstname}, see you tomorrow", id="t-1"))
    row = replace(ROW, body=None, template_id="t-1", category=MessageCategory.TRANSACTIONAL)
    assert setup.sends.take(row) is Outcome.QUEUED
    stored = setup.world.outbox.get(ROW.id)
    assert stored is not None and stored.body == "Hi Alice, see you tomorrow"


@pytest.mark.parametrize(
    ("refusal", "category"),
    [
        ("consent_opted_out", FailureCategory.OPTED_OUT),
        ("consent_missing", FailureCategory.CONSENT_MISSING),
    ],
)
def test_a_row_refused_for_consent_ends_failed_with_the_consent_category_once(
    setup: Setup, refusal: str, category: FailureCategory
) -> None:
    calls: list[str] = []

    def consent(to: str, _configuration: str, _category: MessageCategory) -> str:
        calls.append(to)
        return refusal

    setup.world.service.consent = consent
    assert setup.sends.take(ROW) is Outcome.FAILED
    failure = setup.rows.failures[ROW.id]
    assert (failure.category, failure.code) == (category, refusal)
    assert setup.ledger.refused(ROW.id) and waiting(setup) == 0
    assert setup.sends.take(ROW) is Outcome.DUPLICATE  # a repeated webhook: nothing again
    assert len(calls) == 1


def test_a_row_whose_record_has_no_phone_ends_failed_no_phone_number(setup: Setup) -> None:
    setup.world.records.put("contact", "c-2", {"mobilephone": None, "telephone1": ""})
    row = replace(ROW, regarding=RecordRef("contact", "c-2"))
    assert setup.sends.take(row) is Outcome.FAILED
    failure = setup.rows.failures[ROW.id]
    assert failure.category is FailureCategory.INVALID_RECIPIENT
    assert NO_PHONE_NUMBER in failure.reason
    assert waiting(setup) == 0


def test_a_blocked_number_ends_failed_and_says_blocked(setup: Setup) -> None:
    setup.world.directory.blocked["cfg-us"] = {ALICE}
    setup.world.service.configurations.invalidate()  # type: ignore[attr-defined]
    row = replace(ROW, configuration_id=US.id)
    assert setup.sends.take(row) is Outcome.FAILED
    assert "blocked" in setup.rows.failures[ROW.id].reason


@pytest.mark.parametrize(
    "row",
    [
        replace(ROW, outbound=False),
        replace(ROW, queued=False),
        replace(ROW, provider_id="SM123"),
    ],
)
def test_rows_that_do_not_wait_for_us_are_left_alone(setup: Setup, row: CrmSendRow) -> None:
    assert setup.sends.take(row) is Outcome.SKIPPED
    assert waiting(setup) == 0 and setup.rows.failures == {}


def test_a_trimmed_webhook_event_is_read_back_by_id(setup: Setup) -> None:
    errors = setup.sends.take_events([({"row_id": ROW.id, "target": None}, 0.0)])
    assert errors == [None]
    assert setup.world.outbox.exists(ROW.id)


def test_a_transient_failure_is_the_events_to_retry(setup: Setup) -> None:
    setup.rows.down = True
    errors = setup.sends.take_events([({"row_id": ROW.id, "target": None}, 0.0)])
    assert isinstance(errors[0], DataverseUnavailableError)


def test_the_poll_makes_one_request_per_interval_for_the_fleet(setup: Setup) -> None:
    report = setup.sends.poll()
    assert report is not None and report.outcomes == {"queued": 1}
    assert setup.sends.poll() is None  # another process (or this one) polled just now
    setup.clock.now += 40.0  # within the interval (less a margin for the schedule's jitter)
    assert setup.sends.poll() is None
    setup.clock.now += 20.0
    again = setup.sends.poll()
    assert again is not None and again.outcomes == {"duplicate": 1}
    assert setup.rows.queries == 2


def test_the_poll_pages_on_and_holds_its_place_at_a_row_that_failed(setup: Setup) -> None:
    rows = [
        replace(ROW, id=f"{ROW.id[:-1]}{n}", modified_at=f"2026-01-05T1{n}:00:00+00:00")
        for n in range(4)
    ]
    setup.rows.rows = {row.id: row for row in rows}
    setup.sends.poll(force=True)  # a full page (limit 2): go on from its newest row
    assert setup.ledger.since == datetime(2026, 1, 5, 11, tzinfo=UTC)
    failing = _FailingSender(setup.sends.sender, rows[2].id)
    stuck = replace(setup.sends, sender=failing)
    report = stuck.poll(force=True)
    assert report is not None and report.errors >= 1
    assert setup.ledger.since == datetime(2026, 1, 5, 12, tzinfo=UTC)  # held at the failed row


@dataclass
class _FailingSender:
    inner: Any
    failing_id: str

    def send(self, order: SendOrder, *, idempotency_key: str | None = None) -> Mapping[str, Any]:
        if order.message_id == self.failing_id:
            raise DataverseUnavailableError("Dataverse is down")
        result: Mapping[str, Any] = self.inner.send(order, idempotency_key=idempotency_key)
        return result
