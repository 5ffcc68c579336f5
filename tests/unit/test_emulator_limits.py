"""Service-protection simulation rules, with a fake clock (no sleeps)."""

from __future__ import annotations

import pytest

from connector.emulators.dataverse.errors import EmulatorRequestError
from connector.emulators.dataverse.limits import Limits, Throttle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limits_are_off_by_default() -> None:
    throttle = Throttle(Limits(), FakeClock())
    for _ in range(10_000):
        throttle.enter("u")
        throttle.leave("u", 1000.0)


def test_request_count_over_sliding_window() -> None:
    clock = FakeClock()
    throttle = Throttle(Limits(requests_per_window=2, window_seconds=300), clock)
    throttle.enter("u")
    throttle.leave("u", 1)
    clock.now += 100
    throttle.enter("u")
    throttle.leave("u", 1)
    with pytest.raises(EmulatorRequestError) as refused:
        throttle.enter("u")
    assert refused.value.status == 429
    assert refused.value.service_code == "0x80072322"
    assert refused.value.headers["Retry-After"] == "200"
    throttle.enter("other")
    clock.now += 200.5
    throttle.enter("u")


def test_concurrency_limit_is_immediate_and_released_on_leave() -> None:
    throttle = Throttle(Limits(max_concurrent=2), FakeClock())
    throttle.enter("u")
    throttle.enter("u")
    with pytest.raises(EmulatorRequestError) as refused:
        throttle.enter("u")
    assert refused.value.service_code == "0x80072326"
    assert "52" not in refused.value.message and "2" in refused.value.message
    throttle.leave("u", 5)
    throttle.enter("u")


def test_execution_time_budget() -> None:
    clock = FakeClock()
    throttle = Throttle(Limits(execution_ms_per_window=1000, window_seconds=60), clock)
    throttle.enter("u")
    throttle.leave("u", 1200)
    with pytest.raises(EmulatorRequestError) as refused:
        throttle.enter("u")
    assert refused.value.service_code == "0x80072321"
    assert int(refused.value.headers["Retry-After"]) == 60
    clock.now += 61
    throttle.enter("u")


def test_retry_after_grows_while_the_client_keeps_pushing() -> None:
    throttle = Throttle(Limits(requests_per_window=1, window_seconds=10), FakeClock())
    throttle.enter("u")
    waits = []
    for _ in range(3):
        with pytest.raises(EmulatorRequestError) as refused:
            throttle.enter("u")
        waits.append(int(refused.value.headers["Retry-After"]))
    assert waits == [10, 11, 12]
