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

from connector.dataverse.connect import build_client
from connector.settings import Settings

if TYPE_CHECKING:
    from connector.dataverse.client import DataverseClient
    from connector.services.phone_sync import PhoneSyncJob


@dataclass
class Container:
    """Everything a running connector process uses, built once."""

    settings: Settings
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    readiness_checks: dict[str, Callable[[], Any]] = field(default_factory=dict)
    routers: list[APIRouter] = field(default_factory=list)
    closers: list[Callable[[], Any]] = field(default_factory=list)
    phone_sync: PhoneSyncJob | None = None
    dataverse: DataverseClient | None = None

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
