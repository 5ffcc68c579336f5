"""Service protection shared by "processes" (instances on one store), on a fake clock."""

from __future__ import annotations

import threading

import pytest

from connector.dataverse.pacing import PacingLaw
from connector.dataverse.protection import MemoryPacingStore, ServiceProtection
from connector.errors import StateStoreError
from connector.ports import PaceState

KEY = "https://org.crm.dynamics.com app"


class FakeClock:
    """Epoch time that moves only when someone sleeps (every sleep is recorded)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _process(
    store: MemoryPacingStore | None,
    clock: FakeClock,
    *,
    law: PacingLaw | None = None,
    cap: int = 8,
    cache: float = 0.1,
) -> ServiceProtection:
    return ServiceProtection(
        KEY,
        store,
        law or PacingLaw(initial_rate=None, window_seconds=10.0),
        fleet_cap=cap,
        pause_cache_seconds=cache,
        clock=clock,
        sleep=clock.sleep,
    )


def test_a_429_seen_by_one_process_pauses_the_other_until_retry_after() -> None:
    clock, store = FakeClock(), MemoryPacingStore()
    one, other = _process(store, clock), _process(store, clock)
    for process in (one, other):
        process.enter()
        process.leave()
    one.throttled(retry_after=7.0)
    clock.now += 0.2  # past the other's pause cache: it reads the shared pause
    started = clock.now
    other.enter()
    assert clock.now == pytest.approx(started + 6.8)
    other.leave()


def test_a_pause_reaches_another_process_within_its_cache_moment() -> None:
    clock, store = FakeClock(), MemoryPacingStore()
    one, other = _process(store, clock, cache=0.5), _process(store, clock, cache=0.5)
    other.enter()  # reads the store (nothing paused) and remembers it for 0.5 s
    other.leave()
    one.throttled(retry_after=3.0)
    assert other.paused_until() == 0.0  # still the cached answer
    clock.now += 0.5
    assert other.paused_until() == pytest.approx(clock.now - 0.5 + 3.0)


def test_a_request_that_waited_for_its_slot_rechecks_the_pause_before_going() -> None:
    clock, store = FakeClock(), MemoryPacingStore()
    law = PacingLaw(initial_rate=1.0, window_seconds=10.0)
    waiting = _process(store, clock, law=law, cache=0.0)
    waiting.enter()
    waiting.leave()
    other = _process(store, clock, law=law, cache=0.0)

    def pause_while_sleeping(seconds: float) -> None:  # another process is refused meanwhile
        clock.sleeps.append(seconds)
        if len(clock.sleeps) == 1:
            other.throttled(retry_after=5.0)
        clock.now += seconds

    waiting._sleep = pause_while_sleeping
    started = clock.now
    waiting.enter()  # its slot was 1 s away; then the pause; then a new slot
    assert clock.now >= started + 5.0
    assert waiting.state() is not None


def test_the_fleet_cap_is_shared_among_live_processes_and_a_dead_ones_share_returns() -> None:
    clock, store = FakeClock(), MemoryPacingStore()
    first, second = _process(store, clock, cap=8), _process(store, clock, cap=8)
    assert first.share() == 8  # alone so far
    assert second.share() == 4
    clock.now += 2.0
    assert first.share() == 4
    clock.now += 11.0  # the second stops renewing (killed): its membership runs out
    assert first.share() == 8


def test_a_process_never_has_more_than_its_share_in_flight() -> None:
    clock, store = FakeClock(), MemoryPacingStore()
    _process(store, clock, cap=2).share()  # another live member: this one's share is 1
    process = _process(store, clock, cap=2)
    process.enter()
    second_in = threading.Event()

    def second() -> None:
        process.enter()
        second_in.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not second_in.wait(0.05)
    process.leave()
    assert second_in.wait(5.0)
    thread.join(5.0)
    process.leave()


def test_slow_start_shares_the_probe_cap_until_a_429_then_the_fleet_cap() -> None:
    clock, store = FakeClock(), MemoryPacingStore()
    law = PacingLaw(initial_rate=1000.0, window_seconds=10.0, min_sample=1, probe_in_flight=2)
    first, second = _process(store, clock, law=law), _process(store, clock, law=law)
    assert first.share() == 2  # alone: the whole probe
    assert second.share() == 1  # two members: one each
    for _ in range(50):  # a window's sample of requests, nothing learned yet
        first.enter()
        first.leave()
    clock.now += 2.0  # the first counts the members again
    assert first.share() == 1
    first.throttled(retry_after=1.0)
    assert first.share() == 4  # learned: half the fleet cap of 8
    clock.now += 0.2
    second.enter()  # sees the learned state with its slot
    second.leave()
    assert second.share() == 4


def test_slow_requests_lift_the_slow_start_cap_to_what_the_pace_needs() -> None:
    clock, store = FakeClock(), MemoryPacingStore()
    law = PacingLaw(initial_rate=25.0, window_seconds=10.0, probe_in_flight=2)
    process = _process(store, clock, law=law, cap=32)
    assert process.share() == 2  # nothing measured yet: the probe
    for _ in range(20):  # requests that take 400 ms each, as a distant Dataverse answers
        process.enter()
        clock.now += 0.4
        process.leave()
    clock.now += 2.0  # the next look at the fleet
    assert process.share() == 13  # 25/s x 0.4 s x 1.25: the pace is not held back


def test_a_slow_start_process_waits_for_room_under_the_probe_cap() -> None:
    clock = FakeClock()
    law = PacingLaw(initial_rate=1000.0, window_seconds=10.0, probe_in_flight=1)
    process = _process(MemoryPacingStore(), clock, law=law)
    process.enter()
    second_in = threading.Event()

    def second() -> None:
        process.enter()
        second_in.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not second_in.wait(0.05)  # the fleet cap (8) would have let it in
    process.leave()
    assert second_in.wait(5.0)
    thread.join(5.0)
    process.leave()


def test_a_request_that_waited_for_room_honours_a_429_that_came_meanwhile() -> None:
    clock = FakeClock()
    law = PacingLaw(initial_rate=1000.0, window_seconds=10.0, probe_in_flight=1)
    process = _process(MemoryPacingStore(), clock, law=law)
    process.enter()
    second_in = threading.Event()
    went_at: list[float] = []

    def second() -> None:
        process.enter()
        went_at.append(clock.now)
        second_in.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not second_in.wait(0.05)  # no room: the first is in flight
    process.throttled(retry_after=5.0)  # the first is refused
    paused_until = process.paused_until()
    process.leave()
    assert second_in.wait(5.0)
    thread.join(5.0)
    assert went_at[0] >= paused_until  # it did not go during the pause
    process.leave()


def test_one_process_without_a_store_keeps_its_own_pause() -> None:
    clock = FakeClock()
    alone = _process(None, clock)
    alone.throttled(retry_after=2.0)
    started = clock.now
    alone.enter()
    assert clock.now == pytest.approx(started + 2.0)


class BrokenStore(MemoryPacingStore):
    """A store whose database is gone."""

    def read(self, key: str) -> PaceState | None:
        raise StateStoreError("state store unreachable")

    def write(self, key: str, expected: PaceState | None, new: PaceState) -> bool:
        raise StateStoreError("state store unreachable")

    def join(self, key: str, member: str, now: float, ttl: float) -> int:
        raise StateStoreError("state store unreachable")


def test_an_unreachable_store_lets_requests_go_and_still_honours_this_processs_429() -> None:
    clock = FakeClock()
    process = _process(BrokenStore(), clock)
    process.enter()  # not stopped by the state store: Dataverse's own 429s still protect
    process.leave()
    process.throttled(retry_after=3.0)
    started = clock.now
    process.enter()
    assert clock.now == pytest.approx(started + 3.0)
