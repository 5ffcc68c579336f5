"""The configuration cache: a load that was under way when the cache was invalidated does not
put back what it read before the change."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from connector.domain.model import Configuration, Provider
from connector.state.caches import ConfigurationCache
from connector.testing.conversations import FakeConfigurationDirectory

OLD = Configuration(name="Desk", provider=Provider.SIMULATOR, sender_number="+14155550100", id="c")
NEW = replace(OLD, owning_team_id="team-1")


class SlowDirectory(FakeConfigurationDirectory):
    """Reads the configurations, then waits for ``go`` before answering."""

    def __init__(self) -> None:
        super().__init__(configurations=[OLD])
        self.reading = threading.Event()
        self.go = threading.Event()

    def active_configurations(self) -> Sequence[Configuration]:
        found = super().active_configurations()
        self.reading.set()
        self.go.wait(timeout=10)
        return found


def test_a_load_overtaken_by_an_invalidation_is_dropped() -> None:
    clock = [0.0]
    directory = SlowDirectory()
    directory.go.set()
    cache = ConfigurationCache(directory, ttl=60.0, clock=lambda: clock[0])
    assert cache.snapshot()[OLD.sender_number].owning_team_id is None
    directory.go.clear()
    directory.reading.clear()
    clock[0] = 61.0
    assert cache.ready()  # stale: a background refresh starts and reads OLD
    assert directory.reading.wait(timeout=10)
    directory.configurations = [NEW]  # the admin's change, then the caller invalidates
    cache.invalidate()
    directory.go.set()
    assert cache.snapshot()[OLD.sender_number].owning_team_id == "team-1"
    for _ in range(100):  # the overtaken refresh has finished: it did not put OLD back
        if not cache._refreshing.is_set():
            break
        threading.Event().wait(0.01)
    assert cache.snapshot()[OLD.sender_number].owning_team_id == "team-1"
