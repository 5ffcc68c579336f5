"""What a ``connector serve`` / ``connector worker`` process starts, in order.

With no Dataverse URL (local mode) ``serve`` starts the embedded emulator first, applies the
schema and seeds the demo data, then starts the simulated provider and registers this
process's Dataverse webhook in the emulator (rows created there are sent within seconds).
Then the configurations are loaded (the first webhook must not wait for them), the phone
index is synced once so the first message resolves from it, and the worker starts unless this
is a web-only process: by default as a child process (``connector worker``, supervised by
:class:`WorkerProcess`: restarted if it dies, killed with its parent), so the worker's threads
never compete with the event loop that answers webhooks and sends for the interpreter lock;
``in_process=True`` runs them as threads of this process instead. The returned lines are what
the command prints for people.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

from connector.api.dataverse_webhook import DATAVERSE_PATH
from connector.bootstrap.local_mode import seed_demo, try_this
from connector.bootstrap.root import Connector
from connector.errors import ConnectorError
from connector.log_config import get_logger
from connector.providers.twilio.endpoints import LOCAL_AUTH_TOKEN, TWILIO_INBOUND_PATH
from connector.state.crm_sends import new_key

log = get_logger(__name__)


def start_local(connector: Connector) -> None:
    """Local mode: seed the embedded emulator and start the simulated provider."""
    local = connector.local
    if local is None:
        return
    base = connector.public_base_url or "http://127.0.0.1"
    local.configuration_id = seed_demo(connector.dataverse, base)
    token = connector.settings.twilio.auth_token
    signing = token.get_secret_value() if token is not None else LOCAL_AUTH_TOKEN
    local.start_simulator(base.rstrip("/") + TWILIO_INBOUND_PATH, signing, base)
    register_local_webhook(connector, base)


def register_local_webhook(connector: Connector, base_url: str) -> None:
    """Local mode: the embedded emulator posts new message rows to this process, with a key
    made for the run (kept in memory, accepted beside any stored one)."""
    key = new_key()
    connector.webhook_keys.extra.append(key)
    url = base_url.rstrip("/") + DATAVERSE_PATH
    connector.webhook_registration.ensure(url, key, key_changed=True)


def warm(connector: Connector, *, sync_phones: bool) -> None:
    """Load the configurations; sync the phone index once when asked (a worker process)."""
    try:
        connector.configurations.snapshot()  # the first webhook must not wait for it
    except ConnectorError as exc:
        log.warning("inbound.configurations_not_loaded", code=exc.code)
    if sync_phones:
        report = connector.phone_sync.run(full=False)
        log.info("phone_sync.startup", report=str(report)[:200])


def start_serve(
    connector: Connector, *, port_is_default: bool, worker: bool, in_process: bool = False
) -> tuple[list[str], WorkerProcess | None]:
    """Start everything a serve process runs; the lines to print, and the worker process
    (None: no worker, or its threads run here)."""
    start_local(connector)
    _ = connector.app  # wired before the first request
    warm(connector, sync_phones=worker)
    child = None
    if worker and in_process:
        connector.start_worker()
    elif worker:
        child = WorkerProcess().start()
    lines: list[str] = []
    local = connector.local
    if local is not None:
        lines.append(f"Embedded Dataverse emulator on {local.dataverse_url}")
        lines.append(f"Simulated SMS provider (Twilio API) on {local.simulator_url}")
        lines += try_this(connector.public_base_url or "", port_is_default)
    if not worker:
        lines.append("Web only (--no-worker): run `connector worker` to process messages.")
    return lines, child


_PR_SET_PDEATHSIG = 1
PARENT_ENV = "SMS_CONNECTOR_SERVE_PID"  # not CONNECTOR_*: that prefix is the settings'


def follow_parent() -> None:
    """In a worker started by ``serve``: end when the serve process ends, even by SIGKILL
    (Linux: the kernel sends SIGTERM, so the running task finishes first). Called by the
    worker itself at start-up, not between fork and exec, where threads make it unsafe."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the serve process stops it on exit
        return
    if str(os.getppid()) != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


class WorkerProcess:
    """``connector worker`` as a child of ``connector serve``, with the same environment and
    working directory (so the same settings, state store and, in local mode, the emulator this
    process started). Restarted after an unexpected exit (at most once every few seconds);
    :meth:`stop` ends it (SIGTERM: it finishes its running task; SIGKILL after ``grace``)."""

    restart_delay = 3.0

    def __init__(self, args: tuple[str, ...] = ()) -> None:
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> WorkerProcess:
        """Spawn the worker and watch it."""
        self.process = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="worker-process", daemon=True)
        self._watcher.start()
        return self

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "connector", "worker", *self.args]
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        child = subprocess.Popen(command, env=env)  # noqa: S603 - our own CLI
        log.info("worker_process.started", pid=child.pid)
        return child

    def _watch(self) -> None:
        while not self._stopping.is_set():
            process = self.process
            if process is None:
                return
            code = process.wait()
            if self._stopping.is_set():
                return
            log.error("worker_process.exited", pid=process.pid, code=code)
            if self._stopping.wait(self.restart_delay):
                return
            self.process = self._spawn()

    def stop(self, grace: float = 30.0) -> None:
        """End the worker (it finishes its running task first)."""
        self._stopping.set()
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        deadline = time.monotonic() + grace
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait()
