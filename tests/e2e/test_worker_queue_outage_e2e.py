"""`connector worker` whose Redis queue is down when it starts: it waits for the queue.

A worker (re)started while Redis is unreachable (the serve parent restarts a dead worker
child at once, so this is what a Redis restart looks like to it) used to die at start-up
with a traceback, queueing its first drain; it now stays up, and once Redis is back the
messages journaled meanwhile reach Dataverse.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from connector.dataverse.client import DataverseClient
from connector.testing.redis import start_redis
from tests.e2e.conftest import Emulator
from tests.e2e.test_inbound_e2e import messages, post, serve, service_env, stop, wait_until


def test_worker_started_while_redis_is_down_stays_up_and_drains_once_it_is_back(
    tmp_path: Path, emulator: Emulator, client: DataverseClient
) -> None:
    redis = start_redis()
    redis.kill()  # down, its port known
    env = service_env(tmp_path, emulator) | {"CONNECTOR_QUEUE__URL": redis.url}
    web, base = serve(tmp_path, env, "--no-worker")
    log = tmp_path / "worker.log"
    worker: subprocess.Popen[bytes] | None = None
    try:
        status, first = post(base, "sent while the queue is down")
        assert status == 200
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "connector", "worker"],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: "Worker running" in log.read_text(), timeout=60)
        time.sleep(5)  # it died within a second of printing that line
        assert worker.poll() is None, log.read_text()
        redis.start()
        status, second = post(base, "sent once it is back")  # nudges the worker
        assert status == 200
        wait_until(
            lambda: {first, second} <= {m["smsc_providermessageid"] for m in messages(client)}
        )
        assert worker.poll() is None, log.read_text()  # the same process did it
        assert "Traceback" not in log.read_text()
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        stop(web)
        redis.stop()
