"""Assembly of the inbound path (called by the composition root, ``bootstrap.py``).

Builds, from settings and an already-built Dataverse client: the state store, ingress
journal, caches, record resolver, conversation writer, inbound service, the idle-timeout
escalation sweep, the huey queue with its tasks, the nudger, and the webhook wiring. Kept
out of ``bootstrap.py`` so the root stays a short list of areas; nothing here runs at
import time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from huey import Huey

from connector.api import resolution as move_routes
from connector.api import sessions as session_routes
from connector.api import webhooks
from connector.api.webhooks import InboundWebhook, SignatureTokens
from connector.bootstrap.container import Container, wire_resolution
from connector.bootstrap.metrics import JournalCollector, webhook_counter
from connector.crm.conversation_links import DataverseConversationRelinker
from connector.crm.conversations import DataverseConversations, DataverseErrorLog
from connector.crm.phone_directory import DataversePhoneDirectory
from connector.dataverse.client import DataverseClient
from connector.domain import phone
from connector.errors import ConfigurationError
from connector.ports import (
    ConfigurationDirectory,
    ConversationWriter,
    ErrorLog,
    MediaFetcher,
    RecordResolver,
)
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from connector.providers.twilio.media import TWILIO_MEDIA_ORIGIN, ProviderMediaFetcher
from connector.secret_box import SecretBox
from connector.services.conversation_move import ConversationMover
from connector.services.escalation import EscalationService
from connector.services.inbound import InboundService
from connector.services.resolution import RecordResolutionService
from connector.services.sessions import SessionActions
from connector.settings import Settings
from connector.state.caches import ConfigurationCache, SessionCache, TeamCache
from connector.state.db import StateStore
from connector.state.journal import Journal
from connector.state.phone_index import PhoneIndex
from connector.state.resolution_ledger import ResolutionLedger
from connector.worker.escalation_tasks import register_escalation
from connector.worker.phone_sync_tasks import register_phone_sync
from connector.worker.queue import InProcessWorker, Nudger, make_huey
from connector.worker.tasks import JournalDrain, WorkerTasks, register


@dataclass
class InboundRuntime:
    """The pieces of the inbound path one process holds."""

    store: StateStore
    journal: Journal
    sessions: SessionCache
    configurations: ConfigurationCache
    service: InboundService
    actions: SessionActions
    drain: JournalDrain
    huey: Huey
    tasks: WorkerTasks
    webhook: InboundWebhook
    nudger: Nudger | None = None
    worker: InProcessWorker | None = None
    escalation: EscalationService | None = None
    escalation_task: Any = None

    def start_worker(self, threads: int = 2, *, periodic: bool = True) -> None:
        """Run huey's consumer threads in this process (``connector serve``).

        ``periodic=False`` leaves out the periodic jobs (sweeps, phone sync): tests that
        count Dataverse requests.
        """
        if self.worker is None:
            self.worker = InProcessWorker(self.huey, workers=threads, periodic=periodic)
            self.worker.start()
            self.tasks.enqueue()  # pick up whatever an earlier run left behind

    def close(self) -> None:
        """Stop the worker and the nudger (the store belongs to whoever opened it)."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        if self.nudger is not None:
            self.nudger.close()
            self.nudger = None
        self.journal.close()


def auth_tokens(settings: Settings) -> Sequence[str]:
    """Twilio tokens a webhook signature may be made with (the simulator's in local mode)."""
    tokens = []
    if settings.twilio.auth_token is not None:
        tokens.append(settings.twilio.auth_token.get_secret_value())
    if settings.local_mode:
        tokens.append(LOCAL_AUTH_TOKEN)
    return tokens


def media_fetcher(settings: Settings, extra_origins: Sequence[str] = ()) -> ProviderMediaFetcher:
    """Media downloads from Twilio (and the configured simulator host) with our credentials."""
    twilio = settings.twilio
    sid = twilio.account_sid or (LOCAL_ACCOUNT_SID if settings.local_mode else None)
    token = twilio.auth_token.get_secret_value() if twilio.auth_token else None
    if token is None and settings.local_mode:
        token = LOCAL_AUTH_TOKEN
    origins = [TWILIO_MEDIA_ORIGIN, *extra_origins]
    if twilio.api_base_url is not None:
        origins.append(str(twilio.api_base_url))

    def credentials(account_id: str) -> tuple[str, str] | None:
        return (account_id, token) if sid and token and account_id == sid else None

    return ProviderMediaFetcher(credentials, origins)


def default_resolver(store: StateStore, client: DataverseClient) -> RecordResolver:
    """The phone-index resolver with its live Dataverse fallback."""
    return RecordResolutionService(
        PhoneIndex(store),
        ResolutionLedger(store),
        DataversePhoneDirectory(client),
        lookup_key=phone.lookup_key,
        variants=phone.search_variants,
        normalize=phone.lookup_key,
    )


def build_inbound(
    settings: Settings,
    store: StateStore,
    writer: ConversationWriter,
    directory: ConfigurationDirectory,
    resolver: RecordResolver,
    *,
    team_members: Callable[[str], frozenset[str]] | None = None,
    media: MediaFetcher | None = None,
    error_log: ErrorLog | None = None,
    huey: Huey | None = None,
    lease_seconds: float = 60.0,
    batch_size: int = 50,
) -> InboundRuntime:
    """Wire the inbound path for one process on these adapters (the worker starts later)."""
    journal = Journal(store)
    sessions = SessionCache(store)
    configurations = ConfigurationCache(directory)
    service = InboundService(
        configurations, sessions, resolver, writer, team_members=team_members, media=media
    )
    drain = JournalDrain(
        journal, service, batch_size=batch_size, lease_seconds=lease_seconds, error_log=error_log
    )
    queue = huey or make_huey(settings.state.url)
    tasks = register(queue, drain)
    nudger = Nudger(tasks.enqueue)
    box = SecretBox(settings.secret_keys) if settings.secret_keys else None
    webhook = InboundWebhook(
        journal=journal,
        auth_tokens=SignatureTokens(
            auth_tokens(settings),
            configurations.snapshot_nowait,
            box.decrypt if box is not None else None,
        ),
        public_base_url=str(settings.public_base_url) if settings.public_base_url else None,
        max_body_bytes=settings.api.max_body_bytes,
        nudge=nudger.nudge,
    )
    actions = SessionActions(sessions, writer, configurations)
    escalation = EscalationService(
        configurations, sessions, writer, team_members or (lambda _team: frozenset())
    )
    return InboundRuntime(
        store,
        journal,
        sessions,
        configurations,
        service,
        actions,
        drain,
        queue,
        tasks,
        webhook,
        nudger,
        escalation=escalation,
        escalation_task=register_escalation(queue, escalation),
    )


def build_dataverse_inbound(
    settings: Settings,
    client: DataverseClient,
    store: StateStore,
    *,
    resolver: RecordResolver | None = None,
    huey: Huey | None = None,
    lease_seconds: float = 60.0,
    batch_size: int = 50,
    media_origins: Sequence[str] = (),
) -> InboundRuntime:
    """The inbound path on the real Dataverse adapters."""
    conversations = DataverseConversations(client)
    directory = DataversePhoneDirectory(client)
    return build_inbound(
        settings,
        store,
        conversations,
        conversations,
        resolver or default_resolver(store, client),
        team_members=TeamCache(directory.team_members),
        media=media_fetcher(settings, media_origins),
        error_log=DataverseErrorLog(client),
        huey=huey,
        lease_seconds=lease_seconds,
        batch_size=batch_size,
    )


def wire_inbound(
    container: Container,
    *,
    public_base_url: str | None = None,
    media_origins: Sequence[str] = (),
) -> InboundRuntime:
    """Add the inbound path to a container with Dataverse (webhook and session routes).

    ``public_base_url`` overrides the configured one (local mode learns its port late);
    ``media_origins`` are more provider hosts media may come from (local mode's simulator).
    """
    if container.inbound is not None:
        return container.inbound
    if container.dataverse is None:
        raise ConfigurationError("the inbound path needs Dataverse (or local mode)")
    wire_resolution(container)
    runtime = build_dataverse_inbound(
        container.settings,
        container.dataverse,
        container.open_state(),
        resolver=container.resolver,
        lease_seconds=container.settings.worker.lease_seconds,
        batch_size=container.settings.worker.batch_size,
        media_origins=media_origins,
    )
    if public_base_url:
        runtime.webhook.public_base_url = public_base_url
    outcomes = webhook_counter(container.metrics)
    runtime.webhook.count = lambda outcome: outcomes.labels(outcome).inc()
    container.metrics.register(JournalCollector(runtime.journal))
    container.inbound = runtime
    container.closers.append(runtime.close)
    container.routers.extend([webhooks.router, session_routes.router])
    _wire_resolution_extras(container, runtime)
    return runtime


def _wire_resolution_extras(container: Container, runtime: InboundRuntime) -> None:
    """The conversation-move route and the periodic phone sync (issue 8's parts)."""
    if container.dataverse is None or container.resolver is None:
        return
    relinker = DataverseConversationRelinker(container.dataverse)
    mover = ConversationMover(runtime.sessions, relinker, container.resolver)
    container.routers.append(move_routes.build_router(mover))
    if container.phone_sync is not None:
        register_phone_sync(runtime.huey, container.phone_sync)
