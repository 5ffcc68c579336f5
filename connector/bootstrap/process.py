"""What a ``connector serve`` / ``connector worker`` process starts, in order.

With no Dataverse URL (local mode) the embedded emulator comes first (schema, demo data),
then the Dataverse client points at it. Then record resolution and the inbound path are
wired; the phone index is synced once when it is empty so the first message resolves from
the index; and the huey worker threads start unless this is a web-only process. The
returned lines are what the command prints for people.
"""

from __future__ import annotations

from collections.abc import Sequence

from connector.bootstrap.container import Container
from connector.bootstrap.inbound import InboundRuntime, wire_inbound
from connector.bootstrap.local_mode import LocalMode, seed_demo, start_local_dataverse, try_this
from connector.dataverse.connect import build_client
from connector.errors import ConnectorError
from connector.log_config import get_logger
from connector.providers.twilio.endpoints import TWILIO_INBOUND_PATH

log = get_logger(__name__)


def start_dataverse(container: Container, *, public_base_url: str) -> LocalMode | None:
    """Make sure ``container.dataverse`` exists; in local mode start and seed it (returned)."""
    settings = container.settings
    if container.dataverse is not None:
        return None
    if not settings.local_mode:
        container.dataverse = build_client(settings.dataverse)
        container.closers.append(container.dataverse.api.close)
        return None
    local = start_local_dataverse(settings)
    container.closers.append(local.close)
    container.dataverse = build_client(settings.dataverse, url=local.dataverse_url)
    container.closers.append(container.dataverse.api.close)
    local.configuration_id = seed_demo(container.dataverse, public_base_url)
    local.start_simulator(public_base_url.rstrip("/") + TWILIO_INBOUND_PATH)
    return local


def start_inbound(
    container: Container,
    *,
    public_base_url: str,
    worker: bool,
    media_origins: Sequence[str] = (),
) -> InboundRuntime:
    """Wire the inbound path, sync an empty phone index once, start the worker if asked."""
    configured = container.settings.public_base_url
    runtime = wire_inbound(
        container,
        public_base_url=str(configured) if configured else public_base_url,
        media_origins=media_origins,
    )
    try:
        runtime.configurations.snapshot()  # warm: the first webhook must not wait for it
    except ConnectorError as exc:
        log.warning("inbound.configurations_not_loaded", code=exc.code)
    if worker and container.phone_sync is not None:
        report = container.phone_sync.run(full=False)
        log.info("phone_sync.startup", report=str(report)[:200])
    if worker:
        runtime.start_worker(container.settings.worker.threads)
    return runtime


def start_process(
    container: Container, *, base_url: str, port_is_default: bool, worker: bool
) -> list[str]:
    """Start everything a serve process runs; the lines to print."""
    local = start_dataverse(container, public_base_url=base_url)
    origins = [local.simulator_url] if local and local.simulator_url else []
    start_inbound(container, public_base_url=base_url, worker=worker, media_origins=origins)
    lines: list[str] = []
    if local is not None:
        lines.append(f"Embedded Dataverse emulator on {local.dataverse_url}")
        lines.append(f"Simulated SMS provider (Twilio API) on {local.simulator_url}")
        lines += try_this(base_url, port_is_default)
    if not worker:
        lines.append("Web only (--no-worker): run `connector worker` to process messages.")
    return lines
