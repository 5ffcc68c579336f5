"""Queue tasks ride out an unreachable state store: a warning and a run a second later, never
huey's "unhandled exception" error, and the task runs again once the store answers."""

from __future__ import annotations

import logging

import pytest

from connector.errors import StateStoreError
from connector.worker.queue import STORE_RETRY_SECONDS, make_huey


def test_a_task_cut_short_by_the_state_store_runs_again_a_moment_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    huey = make_huey("sqlite://", memory=True)
    runs: list[str] = []

    def drain_something() -> None:
        runs.append("run")
        if len(runs) == 1:
            raise StateStoreError("cannot claim: OperationalError")

    huey.task(name="drain_something")(drain_something)()
    with caplog.at_level(logging.INFO):
        huey.execute(huey.dequeue())
    assert runs == ["run"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    (waiting,) = huey.scheduled()  # queued again, due a second later
    assert waiting.name == "drain_something"
    assert waiting.eta is not None
    (retry,) = huey.read_schedule(waiting.eta)  # the scheduler takes it once it is due
    huey.execute(retry, timestamp=waiting.eta)
    assert runs == ["run", "run"]
    assert huey.scheduled() == []
    assert STORE_RETRY_SECONDS <= 5


def test_other_failures_are_still_huey_errors() -> None:
    huey = make_huey("sqlite://", memory=True)

    def broken() -> None:
        raise ValueError("a bug, not an outage")

    task = huey.periodic_task(lambda _when: False, name="broken")(broken)
    with pytest.raises(ValueError):
        task.call_local()
