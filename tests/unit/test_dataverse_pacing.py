"""The pacing law in numbers: slow start, the limit learned from a 429, the window's room."""

from __future__ import annotations

import pytest

from connector.dataverse.pacing import PacingLaw, Slot
from connector.ports import PaceState

T0 = 1_000_000.0


def _admit_many(law: PacingLaw, state: PaceState | None, times: list[float]) -> PaceState:
    for now in times:
        new, slot = law.admit(state, now)
        assert slot.taken and new is not None
        state = new
    assert state is not None
    return state


def test_an_unpaced_law_lets_every_request_go_at_once() -> None:
    law = PacingLaw(initial_rate=None, window_seconds=10.0)
    state = None
    for _ in range(100):
        state, slot = law.admit(state, T0)
        assert slot == Slot(T0, taken=True)


def test_slow_start_spaces_requests_and_doubles_the_rate_while_it_holds_them_back() -> None:
    law = PacingLaw(initial_rate=10.0, doubling_seconds=1.0, window_seconds=10.0)
    state, first = law.admit(None, T0)
    state, second = law.admit(state, T0)
    assert first.at == T0 and second.at == pytest.approx(T0 + 0.1)
    now, rate = T0, 10.0
    while now < T0 + 1.0:  # for one second, the next request always waits for its slot
        state, slot = law.admit(state, now)
        now = max(now, slot.at - 0.01)
    assert state is not None and state.rate is not None
    assert 1.6 * rate < state.rate < 2.6 * rate


def test_slow_start_does_not_grow_a_rate_the_fleet_does_not_use() -> None:
    law = PacingLaw(initial_rate=10.0, window_seconds=10.0)
    times = [T0 + i * 0.5 for i in range(40)]  # 2 requests per second: never held back
    state = _admit_many(law, None, times)
    assert state.rate == 10.0


def test_the_first_429_teaches_the_rate_from_the_window_count_and_pauses() -> None:
    law = PacingLaw(initial_rate=None, window_seconds=10.0, margin=0.03)
    state = _admit_many(law, None, [T0 + i * 0.005 for i in range(1000)])  # 1000 in 5 s
    now = T0 + 5.0
    throttled = law.throttled(state, now, retry_after=5.0)
    assert throttled.learned and throttled.paused_until == now + 5.0
    assert throttled.rate == pytest.approx(1000 / 10.0 * 0.97, rel=0.01)
    _, slot = law.admit(throttled, now + 1.0)
    assert slot.at >= now + 5.0  # nobody goes before Retry-After


def test_more_429s_of_the_same_pause_lengthen_it_but_teach_nothing_new() -> None:
    law = PacingLaw(initial_rate=None, window_seconds=10.0)
    state = _admit_many(law, None, [T0 + i * 0.005 for i in range(1000)])
    first = law.throttled(state, T0 + 5.0, retry_after=5.0)
    second = law.throttled(first, T0 + 5.01, retry_after=6.0)
    assert second.rate == first.rate and second.paused_until == T0 + 11.01


def test_a_429_after_a_pause_lowers_a_learned_rate_by_at_least_the_decrease() -> None:
    law = PacingLaw(initial_rate=None, window_seconds=10.0, decrease=0.05)
    state = _admit_many(law, None, [T0 + i * 0.005 for i in range(1000)])
    learned = law.throttled(state, T0 + 5.0, retry_after=1.0)
    assert learned.rate is not None
    later = law.throttled(learned, T0 + 30.0, retry_after=1.0)
    assert later.rate == pytest.approx(learned.rate * 0.95)


def test_a_429_with_few_requests_of_ours_in_the_window_does_not_teach_a_tiny_rate() -> None:
    law = PacingLaw(initial_rate=20.0, window_seconds=300.0, min_sample=20)
    state = _admit_many(law, None, [T0 + i for i in range(3)])  # someone else spent the limit
    throttled = law.throttled(state, T0 + 3.0, retry_after=30.0)
    assert not throttled.learned and throttled.rate == pytest.approx(19.0)
    assert throttled.paused_until == T0 + 33.0


def test_a_learned_window_is_filled_at_once_and_then_waits_for_its_oldest_slice() -> None:
    law = PacingLaw(initial_rate=None, window_seconds=10.0, slices=10, margin=0.0)
    state = _admit_many(law, None, [T0 + i * 0.01 for i in range(100)])  # 100 in 1 s
    learned = law.throttled(state, T0 + 1.0, retry_after=1.0)  # rate 10/s: 100 per window
    assert learned.rate == pytest.approx(10.0)
    after_pause = T0 + 12.5  # the first 100 have left the window: room for 100 at once
    state = _admit_many(law, learned, [after_pause] * 100)
    new, slot = law.admit(state, after_pause)
    assert new is None and not slot.taken
    assert after_pause < slot.at <= after_pause + 1.0  # when the oldest slice leaves
    assert law.admitted_in_window(state, after_pause) == pytest.approx(100)


def test_the_window_count_forgets_what_left_the_window() -> None:
    law = PacingLaw(initial_rate=None, window_seconds=10.0, slices=10)
    state = _admit_many(law, None, [T0 + i * 0.1 for i in range(100)])  # 10/s for 10 s
    assert law.admitted_in_window(state, T0 + 9.95) == pytest.approx(100, abs=10)
    assert law.admitted_in_window(state, T0 + 15.0) == pytest.approx(50, abs=10)
    assert law.admitted_in_window(state, T0 + 30.0) == 0


def test_slow_start_holds_few_requests_in_flight_until_a_429_teaches_the_rate() -> None:
    law = PacingLaw(initial_rate=25.0, window_seconds=10.0, probe_in_flight=2)
    state = _admit_many(law, None, [T0 + i * 0.005 for i in range(100)])
    assert law.in_flight_cap(None, 32) == 2
    assert law.in_flight_cap(state, 32) == 2  # requests admitted, nothing learned yet
    assert law.in_flight_cap(state, 1) == 1  # never above the fleet cap
    learned = law.throttled(state, T0 + 1.0, retry_after=9.0)
    assert learned.learned
    assert law.in_flight_cap(learned, 32) == 32


def test_the_slow_start_cap_grows_with_what_the_pace_needs_at_the_latency() -> None:
    law = PacingLaw(initial_rate=25.0, window_seconds=10.0, probe_in_flight=2)
    assert law.in_flight_cap(None, 32, latency=0.005) == 2  # a fast server: the probe
    assert law.in_flight_cap(None, 32, latency=0.3) == 10  # 25/s at 300 ms, a quarter spare
    assert law.in_flight_cap(None, 8, latency=0.3) == 8  # never above the fleet cap
    state = _admit_many(law, None, [T0 + i * 0.005 for i in range(100)])
    assert state is not None and state.rate is not None and state.rate > 25.0
    assert law.in_flight_cap(state, 64, latency=0.3) > 10  # the cap follows the rate


def test_an_unpaced_law_does_not_hold_requests_back_before_a_429() -> None:
    law = PacingLaw(initial_rate=None, window_seconds=10.0)
    assert law.in_flight_cap(None, 32) == 32


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_rate": 0.0},
        {"window_seconds": 0.0},
        {"decrease": 1.0},
        {"margin": -0.1},
        {"slices": 0},
        {"probe_in_flight": 0},
    ],
)
def test_a_law_with_impossible_constants_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PacingLaw(**kwargs)  # type: ignore[arg-type]
