"""What a ``connector serve`` / ``connector worker`` process starts, in order.

With no Dataverse URL (local mode) ``serve`` starts the embedded emulator first, applies the
schema and seeds the demo data, then starts the simulated provider and registers this
process's Dataverse webhook in the emulator (rows created there are sent within seconds).
Then the configurations are loaded (the first webhook must not wait for them), the phone
index is synced once so the first message resolves from it, and the worker threads start
unless this is a web-only process. The returned lines are what the command prints for people.
"""

from __future__ import annotations

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


def start_serve(connector: Connector, *, port_is_default: bool, worker: bool) -> list[str]:
    """Start everything a serve process runs; the lines to print."""
    start_local(connector)
    _ = connector.app  # wired before the first request
    warm(connector, sync_phones=worker)
    if worker:
        connector.start_worker()
    lines: list[str] = []
    local = connector.local
    if local is not None:
        lines.append(f"Embedded Dataverse emulator on {local.dataverse_url}")
        lines.append(f"Simulated SMS provider (Twilio API) on {local.simulator_url}")
        lines += try_this(connector.public_base_url or "", port_is_default)
    if not worker:
        lines.append("Web only (--no-worker): run `connector worker` to process messages.")
    return lines
