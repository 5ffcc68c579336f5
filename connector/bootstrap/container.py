"""The one composition root: builds adapters from settings and wires them together.

Nothing else in the connector reads settings or opens connections on its own. The CLI and the
tests call :func:`build_container`; the web app and the worker receive the container.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from prometheus_client import CollectorRegistry

from connector.crm.phone_directory import DataversePhoneDirectory
from connector.dataverse.connect import build_client
from connector.domain import phone
from connector.services.phone_sync import PhoneSync, PhoneSyncJob
from connector.services.resolution import ConfiguredRecordTypes, RecordResolutionService
from connector.settings import Settings
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex
from connector.state.resolution_ledger import ResolutionLedger

if TYPE_CHECKING:
    from connector.bootstrap.inbound import InboundRuntime
    from connector.dataverse.client import DataverseClient
    from connector.ports import RecordResolver


@dataclass
class Container:
    """Everything a running connector process uses, built once."""

    settings: Settings
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    readiness_checks: dict[str, Callable[[], Any]] = field(default_factory=dict)
    routers: list[APIRouter] = field(default_factory=list)
    closers: list[Callable[[], Any]] = field(default_factory=list)
    phone_sync: PhoneSyncJob | None = None
    inbound: InboundRuntime | None = None
    dataverse: DataverseClient | None = None
    state: StateStore | None = None
    resolver: RecordResolver | None = None

    def open_state(self) -> StateStore:
        """The state store, opened (tables created) on first use and closed with the container."""
        if self.state is None:
            self.state = StateStore.from_url(self.settings.state.url)
            self.closers.append(self.state.close)
            self.readiness_checks["state_store"] = self.state.ping
        return self.state

    def close(self) -> None:
        """Release what the container opened, last opened first."""
        while self.closers:
            self.closers.pop()()


def build_container(settings: Settings) -> Container:
    """Wire the adapters the settings ask for."""
    container = Container(settings=settings)
    if not settings.local_mode:
        container.dataverse = build_client(settings.dataverse)
        container.closers.append(container.dataverse.api.close)
    return container


def wire_resolution(container: Container) -> None:
    """Build record resolution and the phone sync on the state store and Dataverse.

    Sets ``container.resolver`` (the :class:`~connector.ports.RecordResolver` the inbound path
    uses) and ``container.phone_sync`` (``connector sync phones`` and the periodic job).
    Needs ``container.dataverse``; does nothing without it.
    """
    if container.dataverse is None or container.resolver is not None:
        return
    store = container.open_state()
    directory = DataversePhoneDirectory(container.dataverse)
    index = PhoneIndex(store)
    container.closers.append(index.close)
    resolver = RecordResolutionService(
        index,
        ResolutionLedger(store),
        directory,
        lookup_key=phone.lookup_key,
        variants=phone.search_variants,
        normalize=phone.lookup_key,
        specs_for=ConfiguredRecordTypes(directory).for_sender,
    )
    container.resolver = resolver

    container.phone_sync = PhoneSyncJob(
        PhoneSync(directory, index, phone.lookup_key), directory.sync_targets
    )
