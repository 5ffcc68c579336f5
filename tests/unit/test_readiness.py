"""The Dataverse readiness check: at most one real check per 30 s, its outcome replayed."""

from __future__ import annotations

import pytest

from connector.bootstrap.readiness import CachedCheck
from connector.errors import DataverseUnavailableError


class Probe:
    """A check that counts its calls and fails while ``down`` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = False

    def __call__(self) -> None:
        self.calls += 1
        if self.down:
            raise DataverseUnavailableError("Dataverse is down")


def test_a_passing_check_runs_once_per_ttl_however_often_it_is_asked() -> None:
    now = [0.0]
    probe = Probe()
    check = CachedCheck(probe, ttl=30.0, clock=lambda: now[0])
    for second in range(30):
        now[0] = float(second)
        check()
    assert probe.calls == 1
    now[0] = 30.0
    check()
    assert probe.calls == 2


def test_a_failure_is_replayed_until_the_ttl_passes_then_recovery_is_seen() -> None:
    now = [0.0]
    probe = Probe()
    probe.down = True
    check = CachedCheck(probe, ttl=30.0, clock=lambda: now[0])
    with pytest.raises(DataverseUnavailableError):
        check()
    probe.down = False
    now[0] = 29.0
    with pytest.raises(DataverseUnavailableError):  # still the cached outcome
        check()
    assert probe.calls == 1
    now[0] = 30.0
    check()  # checked again, and Dataverse is back
    assert probe.calls == 2
