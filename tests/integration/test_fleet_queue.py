"""huey on a real Redis server: a task queued by one process is taken by a worker in another
process at once (a blocking pop, no polling interval), and the connector's settings choose
the Redis queue when ``CONNECTOR_QUEUE__URL`` is set.

Run with ``-s`` to see the measured cross-process wake-up figures.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from huey import Huey
from huey.storage import RedisStorage, SqliteStorage

from connector.bootstrap import build
from connector.settings import load_settings
from connector.worker.queue import make_huey

ROOT = Path(__file__).resolve().parents[2]
PONGS = "test:pongs"

CONSUMER = """
import sys
from huey.consumer import Consumer
from connector.worker.queue import POLL_MAX_DELAY, make_huey
from tests.integration.test_fleet_queue import register_ping

huey = make_huey("sqlite://", queue_url=sys.argv[1])
register_ping(huey, sys.argv[1])
print("consuming", flush=True)
Consumer(huey, workers=2, worker_type="thread", max_delay=POLL_MAX_DELAY).run()
"""


def register_ping(huey: Huey, url: str) -> Any:
    """The ``ping(sent_at)`` task: records in Redis how long after ``sent_at`` it ran."""
    client = redis.Redis.from_url(url)

    def ping(sent_at: float) -> None:
        client.rpush(PONGS, repr(time.time() - sent_at))

    ping.__module__ = "fleet_test"  # huey names a task by module: the same in both processes
    return huey.task(name="ping")(ping)


@pytest.fixture
def consumer(redis_url: str) -> Iterator[subprocess.Popen[str]]:
    """A worker process consuming the Redis queue."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, "-c", CONSUMER, redis_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "consuming"
    yield process
    process.terminate()
    process.communicate(timeout=30)


def test_a_task_queued_in_one_process_runs_in_another_well_within_a_second(
    redis_url: str, consumer: subprocess.Popen[str]
) -> None:
    huey = make_huey("sqlite://", queue_url=redis_url)
    ping = register_ping(huey, redis_url)
    client = redis.Redis.from_url(redis_url)
    time.sleep(1.5)  # the consumer's threads are idle, blocked on the queue
    for _ in range(20):
        ping(time.time())
        time.sleep(0.25)
    deadline = time.monotonic() + 10
    while client.llen(PONGS) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    delays = [float(value) for value in client.lrange(PONGS, 0, -1)]
    assert len(delays) == 20
    print(
        f"\ncross-process wake-up over Redis: median {statistics.median(delays) * 1000:.1f} ms, "
        f"max {max(delays) * 1000:.1f} ms (20 tasks)"
    )
    assert max(delays) < 0.5


def test_the_queue_url_setting_chooses_redis_and_its_absence_sqlite(
    redis_url: str, tmp_path: Path
) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    fleet = build(load_settings({"CONNECTOR_STATE__URL": state, "CONNECTOR_QUEUE__URL": redis_url}))
    alone = build(load_settings({"CONNECTOR_STATE__URL": state}))
    try:
        assert isinstance(fleet.huey.storage, RedisStorage)
        assert fleet.huey.storage.blocking
        assert isinstance(alone.huey.storage, SqliteStorage)
        assert Path(alone.huey.storage.filename) == tmp_path / "state.queue.db"
    finally:
        fleet.close()
        alone.close()
