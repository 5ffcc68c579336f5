"""The simulator's per-sender rate limit (``sender_rate_limit_mps``): evenly spaced sends at
the limit pass, bursts are refused with 429 / 20429 and counted per ``From`` number."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector.emulators.twilio.engine import SimulatorEngine, SimulatorOptions
from connector.emulators.twilio.errors import SimulatorRefusalError

FROM, OTHER = "+15005550006", "+14155550111"


class Clock:
    """Seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(clock: Clock) -> Iterator[SimulatorEngine]:
    engine = SimulatorEngine(SimulatorOptions(deliver=False, sender_rate_limit_mps=10.0), clock)
    yield engine
    engine.close()


def _create(engine: SimulatorEngine, from_: str = FROM) -> int:
    """HTTP status of a create from ``from_`` (201 when accepted)."""
    try:
        engine.create_message([("To", "+14155550100"), ("From", from_), ("Body", "hi")])
    except SimulatorRefusalError as exc:
        assert exc.twilio_code == 20429 and exc.message == "Too Many Requests"
        return exc.status
    return 201


def test_evenly_spaced_sends_at_exactly_the_limit_pass(
    engine: SimulatorEngine, clock: Clock
) -> None:
    statuses = []
    for _ in range(500):
        statuses.append(_create(engine))
        clock.now += 0.1
    assert set(statuses) == {201}
    assert engine.snapshot()["throttled"] == {}


def test_a_burst_is_refused_with_429_and_counted_per_sender(
    engine: SimulatorEngine, clock: Clock
) -> None:
    assert [_create(engine) for _ in range(4)] == [201, 201, 429, 429]
    assert _create(engine, OTHER) == 201
    assert engine.snapshot()["throttled"] == {FROM: 2}
    assert len(engine.list_messages()) == 3


def test_a_sender_faster_than_the_limit_by_more_than_the_tolerance_is_refused(
    engine: SimulatorEngine, clock: Clock
) -> None:
    statuses = []
    for _ in range(100):
        statuses.append(_create(engine))
        clock.now += 0.09  # 11.1 per second against 10 (+5 %)
    assert 429 in statuses
    assert engine.snapshot()["throttled"][FROM] == statuses.count(429)


def test_waiting_refills_the_bucket(engine: SimulatorEngine, clock: Clock) -> None:
    [_create(engine) for _ in range(3)]
    clock.now += 0.1
    assert _create(engine) == 201
    assert _create(engine) == 429


def test_no_limit_by_default_and_reset_forgets_refusals(clock: Clock) -> None:
    engine = SimulatorEngine(SimulatorOptions(deliver=False), clock)
    assert {_create(engine) for _ in range(50)} == {201}
    engine.options.sender_rate_limit_mps = 1.0
    assert _create(engine) == 201 and _create(engine) == 201 and _create(engine) == 429
    assert engine.snapshot()["throttled"] == {FROM: 1}
    engine.reset()
    assert engine.snapshot()["throttled"] == {}
    assert _create(engine) == 201
    engine.close()


def test_a_per_sender_limit_overrides_the_common_one(engine: SimulatorEngine, clock: Clock) -> None:
    engine.options.sender_rate_limits = {OTHER: 2.0}
    paced = []
    for _ in range(20):  # 10/s: within the common limit, twice the other sender's own
        paced.append((_create(engine), _create(engine, OTHER)))
        clock.now += 0.1
    assert {first for first, _ in paced} == {201}
    assert 429 in {second for _, second in paced}
    assert set(engine.snapshot()["throttled"]) == {OTHER}
