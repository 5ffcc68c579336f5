"""Service protection shared through the state store (SQLite and PostgreSQL) by two clients
with their own connections, as two processes of a fleet would be, against one limited
emulator over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests

from connector.bootstrap.server_thread import running
from connector.dataverse.client import DataverseClient
from connector.dataverse.connect import build_client
from connector.dataverse.pacing import PacingLaw
from connector.dataverse.retry import RetryPolicy
from connector.emulators.dataverse.app import create_emulator_app
from connector.emulators.dataverse.limits import Limits
from connector.errors import DataverseThrottledError
from connector.settings import DataverseSettings
from connector.state.dataverse_pacing import StateStorePacing
from connector.state.db import StateStore


@pytest.fixture
def stores(state_url: str) -> Iterator[tuple[StateStorePacing, StateStorePacing]]:
    """Two handles on one state store, each with its own engine (two processes)."""
    opened = [StateStore.from_url(state_url) for _ in range(2)]
    try:
        yield StateStorePacing(opened[0]), StateStorePacing(opened[1])
    finally:
        for store in opened:
            store.close()


def _client(url: str, pacing: StateStorePacing, **settings: object) -> DataverseClient:
    dataverse = DataverseSettings.model_validate({"url": url, "token": "fleet-token", **settings})
    return build_client(dataverse, pacing=pacing, retry=RetryPolicy(max_attempts=1))


def _stats(url: str) -> dict[str, int]:
    return dict(requests.get(url + "/_emulator/stats", timeout=10).json())


def test_a_429_seen_by_one_client_pauses_the_other_one(
    stores: tuple[StateStorePacing, StateStorePacing],
) -> None:
    limits = Limits(requests_per_window=4, window_seconds=2.0)
    with running(create_emulator_app(limits=limits)) as url:
        one, other = _client(url, stores[0]), _client(url, stores[1])
        other.who_am_i()  # the other one is already running (its pause cache is warm)
        with pytest.raises(DataverseThrottledError) as refused:
            for _ in range(5):
                one.who_am_i()
        retry_after = refused.value.retry_after
        assert retry_after is not None
        refused_at = time.time()
        other.who_am_i()  # waits out the fleet's pause instead of being refused too
        assert time.time() >= refused_at + retry_after - 0.2
        assert _stats(url)["throttled"] == 1
        state = other.api.protection.state()
        assert state is not None and state.paused_until >= refused_at + retry_after - 0.2


def test_the_fleet_never_has_more_requests_in_flight_than_its_cap(
    stores: tuple[StateStorePacing, StateStorePacing],
) -> None:
    with running(create_emulator_app(limits=Limits(max_concurrent=2))) as url:
        clients = [
            _client(url, store, fleet_max_concurrency=2, pace_start_per_second=None)
            for store in stores
        ]
        for client in clients:
            assert client.api.protection.share() >= 1
        time.sleep(2.1)  # both renew their membership: each now runs one of the two
        assert [c.api.protection.share() for c in clients] == [1, 1]
        errors: list[BaseException] = []

        def work(client: DataverseClient) -> None:
            try:
                for _ in range(15):
                    client.create("contacts", {"firstname": "cap"})
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(c,)) for c in clients for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == [] and _stats(url)["throttled"] == 0


def test_the_pacing_row_changes_only_from_the_state_its_writer_saw(
    stores: tuple[StateStorePacing, StateStorePacing],
) -> None:
    first, second = stores
    law = PacingLaw(initial_rate=5.0, window_seconds=10.0)
    state, _ = law.admit(None, 1000.0)
    assert state is not None
    assert first.write("k", None, state)
    assert not second.write("k", None, state)  # the row exists: a second first write loses
    stored = second.read("k")
    assert stored == replace(state, version=1)
    newer, _ = law.admit(stored, 1000.1)
    assert newer is not None and second.write("k", stored, newer)
    stale, _ = law.admit(stored, 1000.2)
    assert stale is not None and not first.write("k", stored, stale)  # changed meanwhile
    assert first.read("k") == replace(newer, version=2)


def test_members_are_counted_until_their_time_runs_out(
    stores: tuple[StateStorePacing, StateStorePacing],
) -> None:
    first, second = stores
    assert first.join("k", "a", now=100.0, ttl=10.0) == 1
    assert second.join("k", "b", now=101.0, ttl=10.0) == 2
    assert second.join("other", "c", now=101.0, ttl=10.0) == 1  # another user's fleet
    assert second.join("k", "b", now=111.0, ttl=10.0) == 1  # a's membership ran out at 110
    second.part("k", "b")
    assert first.join("k", "a", now=112.0, ttl=10.0) == 1
