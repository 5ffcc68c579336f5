"""What a ``connector serve`` / ``connector worker`` process starts, in order.

With no Dataverse URL (local mode) the embedded emulator comes first (schema, demo data),
then the Dataverse client points at it. Then record resolution and the inbound path are
wired; the phone index is synced once when it is empty so the first message resolves from
the index; and the huey worker threads start unless this is a web-only process. The
returned lines are what the command prints for people.
"""

from __future__ import annotations

from connector.bootstrap import Container
from connector.dataverse.connect import build_client
from connector.local_mode import seed_demo, start_local_dataverse, try_this
from connector.log_config import get_logger
from connector.worker.assembly import InboundRuntime, wire_inbound

log = get_logger(__name__)


def start_dataverse(container: Container, *, public_base_url: str | None) -> list[str]:
    """Make sure ``container.dataverse`` exists (starting local mode if needed)."""
    settings = container.settings
    if container.dataverse is not None:
        return []
    if not settings.local_mode:
        container.dataverse = build_client(settings.dataverse)
        container.closers.append(container.dataverse.api.close)
        return []
    local = start_local_dataverse(settings)
    container.closers.append(local.close)
    container.dataverse = build_client(settings.dataverse, url=local.dataverse_url)
    container.closers.append(container.dataverse.api.close)
    local.configuration_id = seed_demo(container.dataverse, public_base_url)
    return [f"Embedded Dataverse emulator on {local.dataverse_url}"]


def start_inbound(container: Container, *, public_base_url: str, worker: bool) -> InboundRuntime:
    """Wire the inbound path, sync an empty phone index once, start the worker if asked."""
    configured = container.settings.public_base_url
    runtime = wire_inbound(
        container, public_base_url=str(configured) if configured else public_base_url
    )
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
    lines = start_dataverse(container, public_base_url=base_url)
    start_inbound(container, public_base_url=base_url, worker=worker)
    if container.settings.local_mode:
        lines += try_this(base_url, port_is_default)
    if not worker:
        lines.append("Web only (--no-worker): run `connector worker` to process messages.")
    return lines
