"""THE composition root: :func:`build` turns settings into a wired connector.

:class:`Connector` holds every adapter and service a process may use, each built on first use
from the settings (a ``cached_property``), so a command takes only what it needs and nobody
has to fill fields in the right order: ``connector journal status`` opens the state store
alone, ``connector schema apply`` a Dataverse client alone, ``connector serve`` everything.
This module is the only place that reads settings to open connections. Tests pass fakes as
keyword overrides (``build(settings, writer=FakeConversationWriter(), huey=MemoryHuey())``):
an override is used instead of building that part, and everything built later uses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from fastapi import FastAPI
from huey import Huey
from prometheus_client import CollectorRegistry

from connector.api.app import create_app
from connector.api.deps import DataverseWebhook, InboundWebhooks, WebServices
from connector.api.identity import EntraTokens
from connector.bootstrap import local_mode
from connector.bootstrap.loop_lag import LoopLagMonitor, lag_histogram
from connector.bootstrap.metrics import (
    JournalCollector,
    event_delivery_counter,
    outcome_counter,
    webhook_counter,
)
from connector.bootstrap.readiness import dataverse_check
from connector.bootstrap.twilio import media_fetcher, signature_tokens, twilio_webhooks
from connector.crm.consent_rows import DataverseConsentLedger
from connector.crm.conversation_links import DataverseConversationRelinker
from connector.crm.conversations import DataverseConversations, DataverseErrorLog
from connector.crm.inbox import DataverseInbox
from connector.crm.message_export import DataverseMessageArchive
from connector.crm.outbound_rows import DataverseOutbound
from connector.crm.phone_directory import DataversePhoneDirectory
from connector.crm.send_rows import DataverseSendRows, waits_for_us, webhook_event
from connector.crm.system_users import SystemUsers
from connector.crm.templates import DataverseRecordReader, DataverseTemplates
from connector.crm.webhook_registration import DataverseWebhookRegistration
from connector.dataverse.client import DataverseClient
from connector.dataverse.connect import build_client
from connector.domain import phone
from connector.domain.conversation import InboundWrite
from connector.domain.model import MessageCategory
from connector.domain.outbound import Failure, OutboundMessage
from connector.errors import ConfigurationError
from connector.event_hooks.http import HttpEventPoster
from connector.log_config import get_logger
from connector.ports import (
    ConfigurationDirectory,
    ConsentLedgerWriter,
    ConversationRelinker,
    ConversationWriter,
    ErrorLog,
    MediaFetcher,
    OutboundWriter,
    RecordReader,
    RecordResolver,
    SendRate,
    SmsProvider,
    TemplateCatalog,
    WebhookProvider,
)
from connector.providers.twilio.client import build_twilio_provider
from connector.providers.twilio.status_webhook import TwilioStatusWebhooks
from connector.providers.unconfigured import UnconfiguredProvider
from connector.providers.webhooks import ProviderRegistry
from connector.secret_box import SecretBox
from connector.services.bulk import BulkService
from connector.services.consent import ConsentService
from connector.services.consent_sync import ConsentSync
from connector.services.conversation_move import ConversationMover
from connector.services.crm_sends import CrmSends
from connector.services.escalation import EscalationService
from connector.services.events import EventService
from connector.services.inbound import InboundService
from connector.services.inbound_batch import JournalDrain
from connector.services.inbox import InboxService
from connector.services.outbound import SendService
from connector.services.outbound_sync import OutboundSync, StatusNews
from connector.services.outbox_sender import OutboxSender
from connector.services.phone_sync import PhoneSync, PhoneSyncJob
from connector.services.resolution import ConfiguredRecordTypes, RecordResolutionService
from connector.services.session_closing import SessionClosing
from connector.services.sessions import SessionActions
from connector.settings import Settings
from connector.state.bulk import BulkJobs
from connector.state.caches import ConfigurationCache, TeamCache
from connector.state.consent import ConsentLedger
from connector.state.crm_sends import StateCrmSendLedger, WebhookKeys
from connector.state.dataverse_pacing import StateStorePacing
from connector.state.db import StateStore
from connector.state.group_commit import Checkpointer
from connector.state.journal import Journal
from connector.state.journal_file import journal_url, open_journal_store, take_over
from connector.state.outbox import Outbox
from connector.state.periodic_runs import PeriodicRuns
from connector.state.phone_index import PhoneIndex
from connector.state.resolution_ledger import ResolutionLedger
from connector.state.send_rate import StateStoreSendRate
from connector.state.session_mirror import SessionCache
from connector.state.subscriptions import Subscriptions
from connector.web.microsoft import MicrosoftSignIn
from connector.web.page import page_router
from connector.web.wiring import PageServices
from connector.worker.bulk_tasks import BulkTasks, register_bulk
from connector.worker.consent_tasks import ConsentTasks, register_consent
from connector.worker.crm_send_tasks import CrmSendTasks, register_crm_sends
from connector.worker.escalation_tasks import register_escalation
from connector.worker.event_tasks import EventTasks, register_events
from connector.worker.outbound_tasks import OutboundTasks, register_outbound
from connector.worker.phone_sync_tasks import PhoneSyncTasks, register_phone_sync
from connector.worker.queue import InProcessWorker, Nudger, make_huey
from connector.worker.session_closing_tasks import register_session_closing
from connector.worker.tasks import WorkerTasks, register

log = get_logger(__name__)
DATAVERSE_JOURNAL = "dataverse"
"""The journal name of Dataverse webhook events (rows created in Dataverse)."""


@dataclass(frozen=True, slots=True)
class PeriodicTasks:
    """The periodic tasks on the queue (callable directly, e.g. ``.call_local()`` in tests)."""

    phone_sync: PhoneSyncTasks
    escalation: Any
    session_closing: Any = None


class Connector:
    """Everything one connector process uses, each part built once, on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        public_base_url: str | None = None,
        start_local: bool = False,
        local_signing_token: str | None = None,
        shared_pacing: bool = False,
    ) -> None:
        self.settings = settings
        self.shared_pacing = shared_pacing
        self.local_signing_token = local_signing_token
        configured = settings.public_base_url
        self.public_base_url = str(configured) if configured else public_base_url
        self.start_local = start_local
        self.worker: InProcessWorker | None = None
        self._closers: list[Callable[[], object]] = []

    # -- connections ------------------------------------------------------------------------

    @cached_property
    def metrics(self) -> CollectorRegistry:
        """This process's Prometheus registry."""
        return CollectorRegistry()

    @cached_property
    def local(self) -> local_mode.LocalMode | None:
        """Local mode's embedded emulator and simulator (``serve`` without a Dataverse URL)."""
        if not (self.settings.local_mode and self.start_local):
            return None
        local = local_mode.start_local_dataverse(self.settings, self.local_signing_token)
        self._closers.append(local.close)
        return local

    @cached_property
    def dataverse(self) -> DataverseClient:
        """The Web API client: the configured environment, else local mode's emulator (the
        one this process started, or the one ``connector serve`` runs in this directory).

        With ``shared_pacing`` (``serve`` and ``worker``) its service protection (a 429's
        pause, the learned pace, the concurrency cap) is shared through the state store with
        every process of the fleet; tools keep their own."""
        url = None
        if self.settings.local_mode:
            url = (
                self.local.dataverse_url
                if self.local is not None
                else local_mode.local_dataverse_url(self.settings)
            )
        pacing = StateStorePacing(self.state) if self.shared_pacing else None
        client = build_client(self.settings.dataverse, url=url, pacing=pacing)
        self._closers.append(client.api.close)
        return client

    @cached_property
    def state(self) -> StateStore:
        """The state store (tables created on first open)."""
        store = StateStore.from_url(self.settings.state.url)
        self._closers.append(store.close)
        checkpointer = Checkpointer(store)  # bookkeeping connections never checkpoint
        self._closers.append(checkpointer.close)
        return store

    @cached_property
    def huey(self) -> Huey:
        """The task queue: Redis when a queue URL is set (a fleet), else a file beside a
        SQLite state store."""
        return make_huey(
            self.settings.state.url,
            queue_url=self.settings.queue.url,
            claim_period=self.periodic_runs.claim,
        )

    @cached_property
    def periodic_runs(self) -> PeriodicRuns:
        """Which process runs each periodic job in each period (once per fleet)."""
        return PeriodicRuns(self.state)

    # -- adapters ---------------------------------------------------------------------------

    @cached_property
    def journal(self) -> Journal:
        """The ingress journal (in a file of its own beside a SQLite state file, so a webhook's
        append never waits for the worker's other writes; rows an earlier version kept in the
        state file are moved there first)."""
        store = self.state
        if journal_url(self.settings.state.url) != self.settings.state.url:
            store = open_journal_store(self.settings.state.url)
            self._closers.append(store.close)
            take_over(store, self.state)
        journal = Journal(store)
        self._closers.append(journal.close)
        return journal

    @cached_property
    def sessions(self) -> SessionCache:
        """The local session mirror."""
        return SessionCache(self.state)

    @cached_property
    def conversations(self) -> DataverseConversations:
        """Our conversation tables in Dataverse."""
        return DataverseConversations(self.dataverse)

    @cached_property
    def writer(self) -> ConversationWriter:
        """Where conversations are written."""
        return self.conversations

    @cached_property
    def configuration_directory(self) -> ConfigurationDirectory:
        """Where configurations and blocked numbers are read."""
        return self.conversations

    @cached_property
    def configurations(self) -> ConfigurationCache:
        """Configurations, cached (a webhook never waits for them once loaded)."""
        return ConfigurationCache(self.configuration_directory)

    @cached_property
    def directory(self) -> DataversePhoneDirectory:
        """The CRM rows the phone index and the live fallback read."""
        return DataversePhoneDirectory(self.dataverse)

    @cached_property
    def team_members(self) -> Callable[[str], frozenset[str]]:
        """Members of a team, cached."""
        return TeamCache(self.directory.team_members)

    @cached_property
    def phone_index(self) -> PhoneIndex:
        """The local phone index."""
        index = PhoneIndex(self.state)
        self._closers.append(index.close)
        return index

    @cached_property
    def resolver(self) -> RecordResolver:
        """Which record a number belongs to: the index, then one live query, per the
        record types configured for the sender."""
        return RecordResolutionService(
            self.phone_index,
            ResolutionLedger(self.state),
            self.directory,
            lookup_key=phone.lookup_key,
            variants=phone.search_variants,
            normalize=phone.lookup_key,
            specs_for=self.record_types.for_sender,
        )

    @cached_property
    def phone_sync(self) -> PhoneSyncJob:
        """The phone index sync (``connector sync phones`` and the periodic job)."""
        sync = PhoneSync(self.directory, self.phone_index, phone.lookup_key)
        return PhoneSyncJob(sync, self.directory.sync_targets)

    @cached_property
    def media(self) -> MediaFetcher:
        """MMS media downloads (the simulator's host too in local mode)."""
        origins = [self.local.simulator_url] if self.local and self.local.simulator_url else []
        return media_fetcher(self.settings, origins)

    @cached_property
    def error_log(self) -> ErrorLog:
        """Where parked events are reported for admins (Dataverse)."""
        return DataverseErrorLog(self.dataverse)

    @cached_property
    def relinker(self) -> ConversationRelinker:
        """Re-links a conversation's rows in Dataverse."""
        return DataverseConversationRelinker(self.dataverse)

    @cached_property
    def outbox(self) -> Outbox:
        """Outbound messages until Dataverse has their latest state."""
        outbox = Outbox(self.state)
        self._closers.append(outbox.close)
        return outbox

    @cached_property
    def send_rate(self) -> SendRate:
        """Each sender's sending rate, shared by every process on the state store."""
        return StateStoreSendRate(self.state)

    @cached_property
    def templates(self) -> TemplateCatalog:
        """The message templates (cached)."""
        return DataverseTemplates(self.dataverse)

    @cached_property
    def records(self) -> RecordReader:
        """Reads regarding records (template values, phone columns, owner)."""
        return DataverseRecordReader(self.dataverse)

    @cached_property
    def record_types(self) -> ConfiguredRecordTypes:
        """The record types each configuration uses (cached)."""
        return ConfiguredRecordTypes(self.directory)

    @cached_property
    def outbound_writer(self) -> OutboundWriter:
        """Where outbound messages are written."""
        return DataverseOutbound(self.dataverse)

    @cached_property
    def consent_ledger(self) -> ConsentLedger:
        """The local consent ledger (what sends are checked against)."""
        ledger = ConsentLedger(self.state)
        self._closers.append(ledger.close)
        return ledger

    @cached_property
    def consent_writer(self) -> ConsentLedgerWriter:
        """Dataverse's consent ledger."""
        return DataverseConsentLedger(self.dataverse)

    @cached_property
    def sms(self) -> SmsProvider:
        """The SMS provider sends go to (the simulator in local mode)."""
        simulator = None
        if self.settings.local_mode:
            simulator = (
                self.local.simulator_url
                if self.local is not None
                else local_mode.local_value(self.settings, "simulator_url")
            )
        try:
            # one try per call: the outbox retries at the sender's pace, never in a burst
            provider = build_twilio_provider(self.settings, api_base_url=simulator, max_attempts=1)
        except ConfigurationError as exc:
            log.warning("outbound.provider_not_configured", reason=exc.message)
            return UnconfiguredProvider(exc.message)
        base = self.public_base_url
        if base is None and self.settings.local_mode and self.local is None:
            base = local_mode.local_value(self.settings, "public_base_url")
        provider.public_base_url = provider.public_base_url or base
        return provider

    @cached_property
    def providers(self) -> ProviderRegistry[WebhookProvider]:
        """The SMS providers webhooks are accepted from, by name."""
        return ProviderRegistry(
            [twilio_webhooks(self.settings, self.configurations.snapshot_nowait)]
        )

    # -- services ---------------------------------------------------------------------------

    @cached_property
    def inbound(self) -> InboundService:
        """The inbound use case."""
        return InboundService(
            self.configurations,
            self.sessions,
            self.resolver,
            self.writer,
            team_members=self.team_members,
            media=self.media,
            error_log=self.error_log,
            keywords=self.consent.on_received,
        )

    @cached_property
    def consent(self) -> ConsentService:
        """Keywords, double opt-in, opt-outs; the check every send passes."""
        service = ConsentService(
            self.consent_ledger,
            self.configurations,
            self.configurations.keywords_for,
            on_change=self._consent_soon,
        )
        service.sender = self.sender
        return service

    def _consent_refusal(
        self, to: str, configuration_id: str, category: MessageCategory
    ) -> str | None:
        """The send path's consent check (late-bound: consent replies through the sender)."""
        return self.consent.refused(to, configuration_id, category)

    def _consent_soon(self) -> None:
        """Ask for a Dataverse write of consent changes (the tasks are built on first use)."""
        self.consent_tasks.push_soon()

    @cached_property
    def consent_sync(self) -> ConsentSync:
        """The local consent ledger and Dataverse's, in step."""
        return ConsentSync(self.consent_ledger, self.consent_writer)

    @cached_property
    def drain(self) -> JournalDrain:
        """Claimed journal batches into Dataverse (status callbacks into the outbox)."""
        return JournalDrain(
            self.journal,
            self.inbound,
            self.providers,
            batch_size=self.settings.worker.batch_size,
            lease_seconds=self.settings.worker.lease_seconds,
            error_log=self.error_log,
            status_news=self.status_news.apply_many,
            status_journals=frozenset(p.journal_name for p in self.status_providers.values()),
            sinks={DATAVERSE_JOURNAL: self._crm_rows},
            on_written=self._received_events,
            linger_seconds=self.settings.worker.inbound_linger_seconds,
            depth=self.journal.due_depth,
        )

    def _crm_rows(
        self, events: Sequence[tuple[Mapping[str, Any], float]]
    ) -> list[Exception | None]:
        """Journaled Dataverse webhook events to the send path (late-bound: built on use)."""
        return self.crm_sends.take_events(events)

    @cached_property
    def status_providers(self) -> ProviderRegistry[TwilioStatusWebhooks]:
        """The providers status callbacks are accepted from, by name."""
        tokens = signature_tokens(self.settings, self.configurations.snapshot_nowait)
        return ProviderRegistry([TwilioStatusWebhooks(tokens)])

    @cached_property
    def status_news(self) -> StatusNews:
        """Status callbacks applied to the outbox (a change asks for a Dataverse write)."""
        twilio = next(iter(self.status_providers.values()))
        return StatusNews(
            self.outbox,
            twilio.parse_status,
            on_change=self._sync_soon,
            on_status=self._status_events,
        )

    def _sync_soon(self) -> None:
        """Ask for a Dataverse write of outbound changes (the tasks are built on first use)."""
        self.outbound_tasks.sync_soon()

    @cached_property
    def sender(self) -> SendService:
        """The one send path, up to the outbox."""
        return SendService(
            configurations=self.configurations,
            sessions=self.sessions,
            resolver=self.resolver,
            records=self.records,
            templates=self.templates,
            outbox=self.outbox,
            record_types=self.record_types.for_sender,
            consent=self._consent_refusal,
            team_members=self.team_members,
            nudge=self.send_nudger.nudge,
        )

    @cached_property
    def outbox_sender(self) -> OutboxSender:
        """Due messages to the provider, at each sender's rate."""
        return OutboxSender(
            self.outbox,
            self.sms,
            self.configurations,
            self.send_rate,
            recheck=self._still_allowed,
            on_failed=self._provider_refused,
            on_status=self._status_events,
        )

    def _still_allowed(self, message: OutboundMessage) -> Failure | None:
        """Consent checked again before the provider (late-bound, as the send path's)."""
        return self.consent.still_allowed(message)

    def _provider_refused(self, message: OutboundMessage, failure: Failure) -> None:
        """A provider refusal that means an opt-out goes to the consent ledger."""
        self.consent.provider_refused(message, failure)

    @cached_property
    def outbound_sync(self) -> OutboundSync:
        """Outbox changes into Dataverse, batched across messages."""
        return OutboundSync(
            self.outbox,
            self.outbound_writer,
            self.sessions,
            linger=self.settings.worker.outbound_linger_seconds,
        )

    # -- bulk sends ---------------------------------------------------------------------

    @cached_property
    def bulk(self) -> BulkService:
        """Bulk jobs: stored by the API, sent by the worker through the send path."""
        return BulkService(
            BulkJobs(self.state),
            self.sender,
            self.configurations,
            self.templates,
            self.outbox.exists,
            nudge=self.bulk_nudger.nudge,
            lease_seconds=self.settings.worker.lease_seconds,
        )

    @cached_property
    def bulk_tasks(self) -> BulkTasks:
        """Bulk jobs on the queue."""
        return register_bulk(self.huey, self.bulk)

    @cached_property
    def bulk_nudger(self) -> Nudger:
        """Asks for a bulk run from a background thread."""
        nudger = Nudger(self._bulk_soon)
        self._closers.append(nudger.close)
        return nudger

    def _bulk_soon(self) -> None:
        self.bulk_tasks.enqueue()

    # -- subscriptions and events ---------------------------------------------------------

    @cached_property
    def events(self) -> EventService:
        """Subscriptions (secrets and callback URLs encrypted with ``CONNECTOR_SECRET_KEYS``),
        and events delivered to them by the worker."""
        poster = HttpEventPoster()
        self._closers.append(poster.close)
        outcomes = event_delivery_counter(self.metrics)
        return EventService(
            Subscriptions(self.state, SecretBox(self.settings.secret_keys)),
            poster,
            nudge=self.events_nudger.nudge,
            count=lambda outcome: outcomes.labels(outcome).inc(),
        )

    @cached_property
    def event_tasks(self) -> EventTasks:
        """Event deliveries on the queue."""
        return register_events(self.huey, self.events)

    @cached_property
    def events_nudger(self) -> Nudger:
        """Asks for a delivery run from a background thread."""
        nudger = Nudger(self._deliver_soon)
        self._closers.append(nudger.close)
        return nudger

    def _deliver_soon(self) -> None:
        self.event_tasks.enqueue()

    def _received_events(self, writes: Sequence[InboundWrite]) -> None:
        """Inbound messages written to Dataverse, for subscribers (late-bound)."""
        self.events.received(writes)

    def _status_events(self, messages: Sequence[OutboundMessage]) -> None:
        """Status changes, for subscribers (late-bound)."""
        self.events.status_changed(messages)

    # -- sends that start in Dynamics -----------------------------------------------------

    @cached_property
    def crm_send_rows(self) -> DataverseSendRows:
        """Outbound message rows created in Dataverse."""
        return DataverseSendRows(self.dataverse)

    @cached_property
    def crm_sends(self) -> CrmSends:
        """Rows created in Dataverse through the send path, once (webhook and poll)."""
        return CrmSends(
            self.sender,
            self.crm_send_rows,
            StateCrmSendLedger(self.state),
            self.outbox.exists,
            interval=self.settings.worker.dataverse_poll_seconds,
        )

    @cached_property
    def webhook_keys(self) -> WebhookKeys:
        """The Dataverse webhook key (stored encrypted with ``CONNECTOR_SECRET_KEYS``)."""
        return WebhookKeys(self.state, lambda: SecretBox(self.settings.secret_keys))

    @cached_property
    def webhook_registration(self) -> DataverseWebhookRegistration:
        """The service endpoint and step that post new message rows to us."""
        return DataverseWebhookRegistration(self.dataverse)

    @cached_property
    def session_actions(self) -> SessionActions:
        """Accept, dismiss, block, assign."""
        return SessionActions(self.sessions, self.writer, self.configurations)

    @cached_property
    def escalation(self) -> EscalationService:
        """The idle-timeout escalation sweep."""
        return EscalationService(self.configurations, self.sessions, self.writer, self.team_members)

    @cached_property
    def session_closing(self) -> SessionClosing:
        """The session timeout sweep."""
        return SessionClosing(self.sessions, self.writer)

    @cached_property
    def mover(self) -> ConversationMover:
        """Conversation moves."""
        return ConversationMover(self.sessions, self.relinker, self.resolver)

    @cached_property
    def inbox_reader(self) -> DataverseInbox:
        """Folders, threads and record look-ups in Dataverse (the messages page, read API)."""
        return DataverseInbox(self.dataverse)

    @cached_property
    def inbox(self) -> InboxService:
        """Folders, threads, marks and records created from conversations."""
        return InboxService(
            sessions=self.sessions,
            reader=self.inbox_reader,
            writer=self.writer,
            records=self.inbox_reader,
            mover=self.mover,
            configurations=self.configurations,
            consent=self.consent_ledger,
        )

    @cached_property
    def page(self) -> PageServices:
        """What the messages page uses (local mode: a loopback browser is signed in)."""
        return PageServices(
            inbox=self.inbox,
            sender=self.sender,
            actions=self.session_actions,
            mover=self.mover,
            consent=self.consent,
            archive=DataverseMessageArchive(self.dataverse),
            templates=self.templates,
            api_keys=self.settings.api.keys,
            local_open=self.settings.local_mode,
            secure_cookie=(self.public_base_url or "").startswith("https://"),
            microsoft=self.microsoft_signin,
        )

    @cached_property
    def microsoft_signin(self) -> MicrosoftSignIn | None:
        """Sign in with Microsoft on the messages page (needs the Entra settings and the web
        app registration's client id and secret); its users' tokens pass the API's checks."""
        api = self.settings.api
        authority = api.signin_authority()
        tokens = self.entra_tokens
        if authority is None or tokens is None or api.entra_client_secret is None:
            return None

        def user_of_token(token: str) -> tuple[str, str]:
            caller = tokens.caller(token)
            assert caller.object_id is not None and caller.systemuser_id is not None
            return caller.object_id, caller.systemuser_id

        return MicrosoftSignIn(
            str(api.entra_client_id),
            api.entra_client_secret.get_secret_value(),
            authority,
            api.signin_scope(),
            user_of_token,
            redirect_base=self.public_base_url,
        )

    # -- the worker -------------------------------------------------------------------------

    @cached_property
    def tasks(self) -> WorkerTasks:
        """The drain and the journal sweep on the queue."""
        return register(self.huey, self.drain, self.journal.prune)

    @cached_property
    def periodic(self) -> PeriodicTasks:
        """The phone sync and the escalation sweep on the queue (every consumer schedules
        them; a queue-wide lock makes one process run each turn)."""
        return PeriodicTasks(
            register_phone_sync(self.huey, self.phone_sync),
            register_escalation(self.huey, self.escalation),
            register_session_closing(self.huey, self.session_closing),
        )

    @cached_property
    def outbound_tasks(self) -> OutboundTasks:
        """Sending and the Dataverse writes of outbound messages on the queue."""
        return register_outbound(self.huey, self.outbox_sender, self.outbound_sync)

    @cached_property
    def crm_send_tasks(self) -> CrmSendTasks:
        """The poll for rows created in Dataverse on the queue."""
        return register_crm_sends(self.huey, self.crm_sends)

    @cached_property
    def consent_tasks(self) -> ConsentTasks:
        """The consent ledger's Dataverse push and periodic pull on the queue."""
        return register_consent(self.huey, self.consent_sync)

    @cached_property
    def send_nudger(self) -> Nudger:
        """Asks for a send cycle from a background thread, coalescing bursts."""
        nudger = Nudger(self.outbound_tasks.enqueue_send, min_interval=0.02)
        self._closers.append(nudger.close)
        return nudger

    @cached_property
    def nudger(self) -> Nudger:
        """Asks for a drain from a background thread, coalescing bursts."""
        nudger = Nudger(self.tasks.enqueue)
        self._closers.append(nudger.close)
        return nudger

    def start_worker(self, threads: int | None = None, *, periodic: bool = True) -> None:
        """Run huey's consumer threads in this process (``connector serve``).

        ``periodic=False`` leaves out the periodic jobs (sweeps, phone sync): tests that
        count Dataverse requests.
        """
        if self.worker is not None:
            return
        self.queue_tasks()
        self.worker = InProcessWorker(
            self.huey, workers=threads or self.settings.worker.threads, periodic=periodic
        )
        self.worker.start()
        self._closers.append(self._stop_worker)
        self.tasks.enqueue()  # pick up whatever an earlier run left behind
        self.outbound_tasks.enqueue_send()
        self.bulk_tasks.enqueue()
        self.event_tasks.enqueue()
        if periodic:
            self.crm_send_tasks.start()

    def queue_tasks(self) -> Huey:
        """Register every task on the queue (before a consumer starts); the queue."""
        _ = self.tasks, self.periodic, self.outbound_tasks, self.consent_tasks
        _ = self.crm_send_tasks, self.bulk_tasks, self.event_tasks
        return self.huey

    def _stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    # -- the web app ------------------------------------------------------------------------

    @cached_property
    def webhooks(self) -> InboundWebhooks:
        """What the webhook route needs (outcomes counted on ``/metrics``)."""
        outcomes = self.webhook_outcomes
        self.metrics.register(JournalCollector(self.journal))
        return InboundWebhooks(
            providers=self.providers,
            journal=self.journal,
            public_base_url=self.public_base_url,
            max_body_bytes=self.settings.api.max_body_bytes,
            nudge=self.nudger.nudge,
            count=outcome_counter(outcomes),
            statuses=self.status_providers,
            known_message=self.outbox.exists,
        )

    @cached_property
    def webhook_outcomes(self) -> Any:
        """``connector_webhooks_total{outcome}`` on this process's registry."""
        return webhook_counter(self.metrics)

    @cached_property
    def dataverse_webhook(self) -> DataverseWebhook:
        """What ``POST /webhooks/dataverse`` needs."""
        outcomes = self.webhook_outcomes
        return DataverseWebhook(
            keys=self.webhook_keys.accepted,
            parse=webhook_event,
            journal=self.journal,
            journal_name=DATAVERSE_JOURNAL,
            max_body_bytes=self.settings.api.max_request_bytes,
            nudge=self.nudger.nudge,
            count=lambda outcome: outcomes.labels(outcome).inc(),
            wanted=waits_for_us,
        )

    @cached_property
    def app(self) -> FastAPI:
        """The web application, every route wired."""
        return create_app(
            WebServices(
                api_keys=self.settings.api.keys,
                webhooks=self.webhooks,
                sessions=self.session_actions,
                mover=self.mover,
                sender=self.sender,
                outbox=self.outbox,
                consent=self.consent,
                dataverse_webhook=self.dataverse_webhook,
                inbox=self.inbox,
                readiness={"state_store": self.state.ping, "dataverse": self.readiness},
                metrics=self.metrics,
                max_request_bytes=self.settings.api.max_request_bytes,
                bulk=self.bulk,
                events=self.events,
                entra=self.entra_tokens,
            ),
            extra_routers=[page_router(self.page)],
            lifespan=self._web_lifespan,
        )

    @cached_property
    def loop_lag(self) -> LoopLagMonitor:
        """The web event loop's lag on ``/metrics`` (and, when asked, who held it)."""
        return LoopLagMonitor(
            lag_histogram(self.metrics), stall_seconds=self.settings.server.stall_log_seconds
        )

    @asynccontextmanager
    async def _web_lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        async with self.loop_lag.running():
            yield

    @cached_property
    def entra_tokens(self) -> EntraTokens | None:
        """Entra ID user tokens for the API (None unless an issuer is configured)."""
        api = self.settings.api
        if not api.entra_issuer:
            return None
        users = SystemUsers(self.dataverse)
        return EntraTokens(
            api.entra_issuer,
            api.entra_audience,
            users.by_object_id,
            jwks_url=api.entra_jwks_url,
            scope=api.entra_scope,
        )

    @cached_property
    def readiness(self) -> Callable[[], object]:
        """The Dataverse readiness check (token and ``WhoAmI``, cached 30 s)."""
        return dataverse_check(self.dataverse)

    def close(self) -> None:
        """Release what was opened, last opened first."""
        while self._closers:
            self._closers.pop()()


_PARTS = frozenset(
    name for name, value in vars(Connector).items() if isinstance(value, cached_property)
)


def build(
    settings: Settings,
    *,
    public_base_url: str | None = None,
    start_local: bool = False,
    local_signing_token: str | None = None,
    shared_pacing: bool = False,
    **overrides: Any,
) -> Connector:
    """The connector for ``settings``; nothing is opened until a part is first used.

    ``public_base_url`` is where providers reach this process when the settings do not say
    (local mode learns its port late); ``start_local`` lets local mode start its embedded
    emulator and simulator (``connector serve``) instead of reaching the running one;
    ``local_signing_token`` is the token local mode generated for a run beyond loopback (kept
    in its descriptor for ``connector simulate``); ``shared_pacing`` shares Dataverse's
    service protection with the other processes of the state store (``serve``, ``worker``).
    ``overrides`` replace parts by name (``writer=``, ``resolver=``, ``huey=``, ...).
    """
    unknown = set(overrides) - _PARTS
    if unknown:
        raise ConfigurationError(f"unknown parts to override: {', '.join(sorted(unknown))}")
    connector = Connector(
        settings,
        public_base_url=public_base_url,
        start_local=start_local,
        local_signing_token=local_signing_token,
        shared_pacing=shared_pacing,
    )
    vars(connector).update(overrides)
    return connector
