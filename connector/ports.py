"""Protocols the core (``domain/`` and ``services/``) depends on.

Adapters in ``dataverse/``, ``providers/`` and ``state/`` implement them; shipped fakes in
``connector/testing/`` implement them too, so services are tested against state, not mocks.
Each area adds its port here as it is built.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeAlias

from connector.domain.consent import ConsentChange
from connector.domain.conversation import (
    EscalationWrite,
    InboundWrite,
    MediaFile,
    NewLead,
    SessionState,
)
from connector.domain.crm_sends import CrmSendRow
from connector.domain.inbox import (
    ConversationSummary,
    Folder,
    MediaFileContent,
    RecordMatch,
    ThreadMessage,
)
from connector.domain.model import Configuration, Keyword, MessageCategory, RecordType, Template
from connector.domain.outbound import Failure, OutboundMessage
from connector.domain.phone_records import IndexEntry, RecordTypeSpec, SyncCursor
from connector.domain.provider_messages import (
    CredentialReport,
    InboundMedia,
    InboundMessage,
    SendRequest,
    SendResult,
    StatusUpdate,
)
from connector.domain.routing import (
    Candidate,
    MatchTrace,
    RecordRef,
    Resolution,
    SenderContext,
)
from connector.domain.status import MessageStatus


class Clock(Protocol):
    """Where the current time comes from (injected so tests control it)."""

    def now(self) -> float:
        """Seconds since the epoch, UTC."""
        ...


class RecordResolver(Protocol):
    """Finds the CRM record an inbound number belongs to (phone index, then one live query).

    ``resolve`` never returns "unknown": for a number no record carries it returns the
    number's lead with ``created=True``, its id derived from (configuration, number) so every
    message from the number names the same one; :meth:`new_lead` says when a message must
    create it (create-only, in its own change set) and :meth:`lead_written` is told once
    that was confirmed. The returned :class:`~connector.domain.routing.MatchTrace` is
    what the session stores as its match trace.
    """

    def resolve(self, phone_e164: str, sender: SenderContext) -> Resolution:
        """The record for ``phone_e164`` texting the sender described by ``sender``."""
        ...

    def prefetch(self, phones: Sequence[str], sender: SenderContext) -> None:
        """Before several :meth:`resolve` calls for one sender: look the numbers the index
        does not know up live in ONE request (doing nothing is always correct)."""
        ...

    def note_conversation(
        self, phone_e164: str, record: RecordRef, at: datetime | None = None
    ) -> None:
        """Remember that ``record`` had a conversation with the number (the first rule)."""
        ...

    def new_lead(self, phone_e164: str, sender: SenderContext, record: RecordRef) -> NewLead | None:
        """The lead a message regarding ``record`` must create first (None: none, or it is
        known to exist)."""
        ...

    def lead_written(self, lead: NewLead) -> None:
        """A confirmed change set created (or found) ``lead``."""
        ...


@dataclass(frozen=True, slots=True)
class ChangePage:
    """One page of rows read for the phone sync; the last page of a delta read has its link."""

    rows: list[dict[str, Any]]
    deleted_ids: list[str] = field(default_factory=list)
    delta_link: str | None = None


class PhoneDirectory(Protocol):
    """The CRM rows the phone index is built from and the live fallback reads (Dataverse)."""

    def read_records(
        self, spec: RecordTypeSpec, *, modified_since: datetime | None = None
    ) -> Iterator[ChangePage]:
        """Pages of ``spec``'s rows (all, or modified at or after ``modified_since``)."""
        ...

    def read_changes(self, spec: RecordTypeSpec, delta_link: str | None) -> Iterator[ChangePage]:
        """Change-tracking pages: everything with no link, else changes and deletions since it."""
        ...

    def find_by_phone(
        self, specs: Sequence[RecordTypeSpec], variants: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Rows per table whose phone columns equal one of ``variants``, in ONE request."""
        ...

    def create_lead(self, phone_e164: str, owner_id: str | None) -> str:
        """Create a lead carrying the number; returns its id."""
        ...

    def team_members(self, team_id: str) -> frozenset[str]:
        """Ids of the users in ``team_id``."""
        ...

    def configured_record_types(self) -> list[tuple[Configuration, list[RecordType]]]:
        """Every active configuration with its record types (none before the schema exists)."""
        ...


class PhoneIndexStore(Protocol):
    """The local phone index (``connector.state.phone_index``)."""

    def lookup(self, key: str) -> list[Candidate]: ...

    def lookup_many(self, keys: Sequence[str]) -> dict[str, list[Candidate]]: ...

    def entries_for(self, records: Sequence[RecordRef]) -> dict[RecordRef, list[IndexEntry]]: ...

    def entries_via(self, parents: Sequence[RecordRef]) -> dict[RecordRef, list[IndexEntry]]: ...

    def replace(self, records: Mapping[RecordRef, Sequence[IndexEntry]]) -> int: ...

    def delete(self, records: Sequence[RecordRef]) -> None: ...

    def records_in(self, table: str) -> set[str]: ...

    def cursor(self, table: str) -> SyncCursor: ...

    def save_cursor(self, cursor: SyncCursor) -> None: ...


class ResolutionMemory(Protocol):
    """Conversation recency per number (``connector.state.resolution_ledger``)."""

    def last_conversations(self, key: str) -> dict[RecordRef, datetime]: ...

    def note_conversation(self, key: str, record: RecordRef, at: datetime) -> None: ...


class ConversationRelinker(Protocol):
    """Re-links a session activity and all its messages in Dataverse (conversation move)."""

    def relink(self, session_id: str, target: RecordRef, trace: MatchTrace) -> int:
        """Point the session and its messages at ``target`` and store ``trace`` on the session,
        atomically; returns the number of messages re-linked. A ``target`` whose table cannot
        be a conversation's regarding record raises ``UnknownReferenceError``."""
        ...


WebhookParams = Mapping[str, str] | Sequence[tuple[str, str]]
"""A webhook's form fields: a mapping, or (name, value) pairs when a name repeats."""


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A provider's webhook call as the route received it, body bounded, nothing parsed.

    ``url`` is the public URL the provider called (the configured base URL, the path and the
    query), never the socket address: signatures are made over it. ``headers`` have
    lower-case names.
    """

    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One verified event to journal: the provider's own id (the dedupe key) and its raw
    payload, stored as received and parsed again by the same provider in the worker."""

    event_id: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """What the route answers the provider (Twilio: empty TwiML; ACS: the handshake's JSON)."""

    content: str
    media_type: str
    status: int = 200


@dataclass(frozen=True, slots=True)
class AcceptedWebhook:
    """A verified webhook: the events it carries (none for a handshake) and the answer."""

    events: tuple[ProviderEvent, ...]
    answer: WebhookAnswer


class WebhookProvider(Protocol):
    """The inbound half of a provider: verify and split its webhooks, parse journaled events.

    Two shapes fit: Twilio posts one form per message, signed with HMAC-SHA1 over the URL and
    the sorted fields, and expects TwiML; Azure Communication Services delivers Event Grid
    JSON (an array of events, after a subscription-validation handshake the provider answers
    with the validation code) for which ``accept`` returns no events and the handshake
    answer. The route picks the provider by its path (``/webhooks/{name}/messages``) and the
    worker by the journal row's provider name: nobody imports a provider to use it.
    """

    name: str

    def ready(self) -> bool:
        """Whether :meth:`accept` returns without waiting on I/O (then the route calls it on
        the event loop; otherwise in a thread, e.g. while credentials load the first time)."""
        ...

    def accept(self, request: WebhookRequest) -> AcceptedWebhook:
        """Verify ``request`` (``SignatureError``, leaving no trace) and split it into events
        (``InvalidInputError`` when a verified request is malformed)."""
        ...

    def parse(self, payload: Mapping[str, Any]) -> InboundMessage:
        """A journaled event's payload as an inbound message (``InvalidInputError``)."""
        ...


class StatusWebhookProvider(Protocol):
    """The delivery-status half of a provider: verify a status callback and turn it into one
    journal event (``journal_name`` names the journal rows, so the worker knows them),
    parse the journaled event later."""

    name: str
    journal_name: str

    def ready(self) -> bool:
        """Whether :meth:`accept_status` returns without waiting on I/O."""
        ...

    def accept_status(self, request: WebhookRequest, message_id: str) -> AcceptedWebhook:
        """Verify the callback (``SignatureError``) and return it as one event keyed by
        provider id and status (a repeat is a duplicate); ``InvalidInputError`` if malformed."""
        ...

    def parse_status(self, payload: Mapping[str, Any]) -> StatusUpdate:
        """A journaled status event's callback form (``payload["form"]``) as an update."""
        ...


class JournalAppend(Protocol):
    """The answer to an append: whether the event was journaled before (a repeat)."""

    @property
    def duplicate(self) -> bool: ...


class IngressJournal(Protocol):
    """Where verified events are made durable before the webhook is answered."""

    async def append_async(
        self,
        provider: str,
        event_id: str,
        payload: Mapping[str, Any],
        *,
        request_id: str | None = None,
        timeout: float = 30.0,
    ) -> JournalAppend:
        """Group-commit the event, awaited on the event loop (``StateStoreError`` if not
        committed within ``timeout`` seconds)."""
        ...


class JournalRow(Protocol):
    """A claimed journal row (``connector.state.journal_claims.JournalEntry``)."""

    @property
    def id(self) -> int: ...
    @property
    def provider(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...
    @property
    def received_at(self) -> float: ...
    @property
    def attempts(self) -> int: ...
    @property
    def request_id(self) -> str | None: ...


JOURNAL_PARKED = "error"
"""The status :meth:`JournalQueue.mark_failed` returns for a row parked for good (replayable)."""


class JournalQueue(Protocol):
    """The worker's side of the journal: claim due rows (leased), settle each one."""

    def claim(
        self, limit: int, *, lease_seconds: float, journals: Collection[str] | None = None
    ) -> Sequence[JournalRow]:
        """Lease up to ``limit`` due rows to this worker (only rows of ``journals``, when
        named: the rows of those providers or journal names)."""
        ...

    def mark_done_many(self, entries: Sequence[Any]) -> int:
        """Mark rows written (only rows this worker still holds)."""
        ...

    def mark_failed(
        self,
        entry: Any,
        error: Mapping[str, Any],
        *,
        transient: bool,
        retry_after: float | None = None,
    ) -> str:
        """Back a row off (transient) or park it; its new status."""
        ...

    def next_due(self) -> float | None:
        """When the earliest backed-off row is due (epoch seconds), if any."""
        ...


class SmsProvider(Protocol):
    """An SMS provider (Twilio, the local simulator, later ACS).

    Errors are :class:`~connector.errors.ProviderError` (and its subclasses) carrying a
    failure category, the raw provider code and message, and whether they are transient.
    """

    name: str

    def send(self, request: SendRequest) -> SendResult:
        """Hand one message to the provider; retries only what is safe to retry."""
        ...

    def find_sent(
        self, request: SendRequest, since: float, exclude: Collection[str]
    ) -> SendResult | None:
        """The message the provider already has for ``request`` (same sender, recipient and
        body, created since ``since``, its id not in ``exclude``), or None: asked after a
        worker died between "provider accepted" and "outbox marked"."""
        ...

    def parse_inbound(self, form: WebhookParams) -> InboundMessage:
        """An inbound-message webhook's fields; ``InvalidInputError`` when malformed."""
        ...

    def parse_status(self, form: WebhookParams) -> StatusUpdate:
        """A status callback's fields; ``InvalidInputError`` when malformed."""
        ...

    def verify_signature(
        self, url: str, params_or_body: WebhookParams | str | bytes, headers: Mapping[str, str]
    ) -> None:
        """Raise :class:`~connector.errors.SignatureError` unless the request is signed.

        ``url`` is the public URL the provider called (configured base URL, path, query),
        never the socket address.
        """
        ...

    def validate_credentials(self) -> CredentialReport:
        """Check the credentials work (and warn about trial accounts)."""
        ...


class SecretCipher(Protocol):
    """Encrypts provider secrets before they are stored (``connector.secret_box.SecretBox``)."""

    def encrypt(self, plain: str) -> str:
        """The stored form of ``plain``."""
        ...

    def reveal(self, stored: str) -> tuple[str, str | None]:
        """``(plain, rewrite)``: ``rewrite`` is what to store instead (a plain value typed by an
        admin, or a token under an old key), else None."""
        ...


class ConfigurationStore(Protocol):
    """Configuration, record type and keyword rows, written by their alternate keys.

    Every ``save_*`` is an upsert: saving the same object twice leaves one row. The returned
    object carries the row's id.
    """

    def find_configuration(self, sender_number: str) -> Configuration | None:
        """The configuration of sender ``sender_number`` (E.164), if there is one."""
        ...

    def save_configuration(self, config: Configuration) -> Configuration:
        """Create or update the configuration with ``config``'s sender number."""
        ...

    def record_types(self, configuration_id: str) -> list[RecordType]:
        """The record types of a configuration."""
        ...

    def save_record_type(self, record_type: RecordType) -> RecordType:
        """Create or update the record type of (configuration, table)."""
        ...

    def keywords(self, configuration_id: str) -> list[Keyword]:
        """The keywords of a configuration."""
        ...

    def save_keyword(self, keyword: Keyword) -> Keyword:
        """Create or update the keyword of (configuration, keyword)."""
        ...

    def save_secret(self, configuration_id: str, stored: str) -> None:
        """Replace the configuration's stored secret (re-encryption on first read)."""
        ...


class ConversationWriter(Protocol):
    """Writes conversations to Dataverse (``connector.crm.conversations``).

    ``write_inbound`` is ONE change set (session upsert, message upsert by its provider id,
    notifications, attachments): all or nothing, and safe to repeat.
    """

    def write_inbound(self, write: InboundWrite) -> None:
        """Store one inbound message with its session (and notifications, attachments)."""
        ...

    def write_inbound_many(self, writes: Sequence[InboundWrite]) -> list[Exception | None]:
        """Store several messages in ONE request (a change set each); the error of each."""
        ...

    def update_session(self, session: SessionState) -> None:
        """Write a session's owner, acceptance and counters after an agent acted."""
        ...

    def write_escalations(self, writes: Sequence[EscalationWrite]) -> list[Exception | None]:
        """Team alerts of waiting sessions in ONE request (a change set each, safe to
        repeat: derived ids); the error of each."""
        ...

    def close_sessions(self, sessions: Sequence[SessionState]) -> list[Exception | None]:
        """Closed sessions (timed out) in ONE ``$batch``, a change set each: the error of
        each (None: written)."""
        ...

    def block_number(self, configuration_id: str, phone: str, blocked_by: str | None) -> None:
        """Add ``phone`` to the configuration's blocked list (idempotent)."""
        ...


class ConfigurationDirectory(Protocol):
    """Where the inbound path reads configurations and blocked numbers from (cached)."""

    def active_configurations(self) -> Sequence[Configuration]:
        """Every active configuration."""
        ...

    def blocked_numbers(self) -> Mapping[str, frozenset[str]]:
        """Configuration id -> blocked numbers (E.164)."""
        ...

    def keywords(self) -> Sequence[Keyword]:
        """Every admin keyword (a row that cannot be read is left out)."""
        ...


class ConfigurationLookup(Protocol):
    """Cached configurations and blocked numbers (``connector.state.caches``)."""

    def by_sender(self, number: str) -> Configuration | None:
        """The active configuration of sender ``number`` (E.164)."""
        ...

    def is_blocked(self, configuration_id: str, phone: str) -> bool:
        """Whether ``phone`` is blocked for the configuration."""
        ...

    def note_blocked(self, configuration_id: str, phone: str) -> None:
        """Record a block made just now."""
        ...

    def keywords_for(self, configuration_id: str) -> Sequence[Keyword]:
        """The active admin keywords of the configuration and those of every sender."""
        ...

    def snapshot(self) -> Mapping[str, Configuration]:
        """Every active configuration, by sender number."""
        ...

    def ready(self) -> bool:
        """Whether the reads above answer from memory now (nothing to load first)."""
        ...


SessionChange: TypeAlias = tuple[SessionState, SessionState | None]
"""A session to store and the pair's latest session as it was read (None: there was none)."""


class SessionStore(Protocol):
    """The local mirror of conversation sessions
    (``connector.state.session_mirror.SessionCache``)."""

    def current(self, configuration_id: str, phone: str) -> SessionState | None:
        """The latest session of (configuration, phone), open or not."""
        ...

    def get(self, session_id: str) -> SessionState | None:
        """A session by id."""
        ...

    def save(self, session: SessionState, previous: SessionState | None) -> bool:
        """Store ``session`` if nothing changed since ``previous`` was read (False: re-read).

        ``previous`` is the pair's latest session as read (None: there was none); a session
        with a new id becomes the pair's latest.
        """
        ...

    def save_many(self, changes: Sequence[tuple[SessionState, SessionState | None]]) -> bool:
        """Several :meth:`save` calls, in order, that all happen or none (False: re-read)."""
        ...

    def current_many(self, configuration_id: str, phones: Sequence[str]) -> dict[str, SessionState]:
        """:meth:`current` of many phones with one configuration, by phone (a phone without
        a session is left out)."""
        ...

    def save_groups(
        self, groups: Sequence[Sequence[tuple[SessionState, SessionState | None]]]
    ) -> list[bool]:
        """:meth:`save_many` of each group (one conversation's changes), whether each was
        stored (False: re-read that one); a batch's worth at once."""
        ...

    def awaiting_escalation(
        self, configuration_id: str, waiting_since_before: float, limit: int
    ) -> list[SessionState]:
        """Sessions of the configuration whose unsettled wait began before the given time,
        oldest wait first (see ``SessionState.escalation_pending_since``), at most ``limit``."""
        ...


class ExpiringSessions(SessionStore, Protocol):
    """The session mirror as the timeout sweep reads it (``SessionCache``)."""

    def due_for_closing(self, now: float, limit: int) -> list[SessionState]:
        """Sessions not closed yet whose timeout is at or before ``now``, oldest first."""
        ...


class MediaFetcher(Protocol):
    """Downloads MMS media from the provider's own hosts, with its credentials."""

    def fetch(self, media: InboundMedia, account_id: str) -> MediaFile:
        """The attachment's bytes (``InvalidInputError`` for a host that is not allowed)."""
        ...


class ErrorLog(Protocol):
    """The error log admins read in Dataverse (``smsc_errorlog``)."""

    def record(self, key: str, code: str, message: str, details: Mapping[str, Any]) -> None:
        """Write (or rewrite, for the same ``key``) one error row; never raises."""
        ...


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One message as exported (``created``/``time``: UTC date and time of day)."""

    message_id: str
    thread_id: str
    created: str
    time: str
    full_name: str
    from_number: str
    to_number: str
    status: str
    message: str
    direction: str
    regarding_type: str
    regarding_id: str


class MessageArchive(Protocol):
    """Messages read back for exports (``connector.crm.message_export``)."""

    def messages(
        self, *, since: datetime | None = None, session_id: str | None = None
    ) -> Iterator[ExportRow]:
        """Messages created at or after ``since`` and/or of one session, oldest first."""
        ...


class TemplateCatalog(Protocol):
    """The ``smsc_template`` rows, cached (``connector.crm.templates``)."""

    def get(self, template_id: str) -> Template | None:
        """The template with this id (published or not); None when there is none."""
        ...

    def published(self) -> Sequence[Template]:
        """Every published template (for pickers and list operations)."""
        ...


@dataclass(frozen=True, slots=True)
class RegardingRecord:
    """A CRM record read for a send: who owns it, what it is called, and the values asked for.

    ``values`` maps each field asked for (``column`` or ``lookup.column``, lower case) to its
    display text (the formatted value for choices, dates and lookups), or None when the record
    has no value there. A lookup whose target is empty gives None for every ``lookup.column``.
    ``raw`` holds the plain columns' stored values (a yes/no column as a bool), for checks
    that must not read a label.
    """

    table: str
    id: str
    name: str | None = None
    owner_id: str | None = None
    owner_is_team: bool = False
    values: Mapping[str, str | None] = field(default_factory=dict)
    raw: Mapping[str, object] = field(default_factory=dict)


class RecordReader(Protocol):
    """Reads one CRM record's columns, following lookups one level (``connector.crm``)."""

    def read(self, table: str, record_id: str, fields: Sequence[str]) -> RegardingRecord | None:
        """The record with the display text of ``fields``; None when the record does not exist.

        Raises :class:`~connector.errors.InvalidInputError` (code ``unknown_column``) naming a
        field the table does not have, and a ``DataverseError`` when Dataverse fails.
        """
        ...


class SendRate(Protocol):
    """A per-sender sending rate shared by every thread and process of one state store."""

    def reserve(self, key: str, per_second: float, now: float) -> float:
        """Reserve the next sending slot of ``key`` at ``per_second``; the epoch time at which
        the caller may send (``now`` or later). Each call takes exactly one slot."""
        ...


@dataclass(frozen=True, slots=True)
class Added:
    """What :meth:`Outbox.add` did: the stored answer, and whether this call stored it.

    ``session_moved``: the session change given with the message no longer applies (another
    writer moved the pair's session since it was read); nothing was stored: place again."""

    answer: Mapping[str, Any]
    created: bool
    session_moved: bool = False


@dataclass(frozen=True, slots=True)
class ClaimedSend:
    """A message a worker holds for sending. ``uncertain``: an earlier attempt may have
    reached the provider (its worker died): ask the provider before sending again."""

    message: OutboundMessage
    token: str
    attempts: int
    uncertain: bool
    attempt_at: float | None


@dataclass(frozen=True, slots=True)
class ClaimedSync:
    """A message version a worker holds for writing to Dataverse. ``first``: Dataverse has
    no version of it yet."""

    message: OutboundMessage
    version: int
    first: bool
    token: str
    attempts: int


class ConsentStore(Protocol):
    """The local consent ledger (``connector.state.consent.ConsentLedger``)."""

    def apply(
        self, changes: Sequence[ConsentChange], *, synced: bool = False
    ) -> list[ConsentChange]:
        """Record changes durably (idempotent by id); the ones that were new."""
        ...

    def current(self, phone: str, configuration_id: str) -> dict[MessageCategory, ConsentChange]:
        """The current state per purpose of ``phone`` with one sender."""
        ...

    def everywhere(self, phone: str) -> list[ConsentChange]:
        """The current state of ``phone`` with every sender and purpose."""
        ...

    def history(self, phone: str) -> list[ConsentChange]:
        """Every change recorded for ``phone``, oldest first."""
        ...


class OutboxAdds(Protocol):
    """What the send path needs of the outbox: storing a message durably with its answer."""

    def add(
        self,
        message: OutboundMessage,
        answer: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        session: SessionChange | None = None,
    ) -> Added: ...

    def add_future(
        self,
        message: OutboundMessage,
        answer: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        session: SessionChange | None = None,
    ) -> Future[Added]: ...


class OutboxStore(OutboxAdds, Protocol):
    """The outbox (``connector.state.outbox.Outbox``): outbound messages until Dataverse
    has their latest state. See that module for the guarantees."""

    def get(self, message_id: str) -> OutboundMessage | None: ...

    def exists(self, message_id: str) -> bool: ...

    def last_error(self, message_id: str) -> str | None: ...

    def provider_ids_between(self, to_number: str, since: float) -> set[str]: ...

    def senders_due(self, now: float) -> list[str]: ...

    def next_send_due(self) -> float | None: ...

    def claim_sends(
        self, configuration_id: str, limit: int, *, lease_seconds: float, now: float | None = None
    ) -> list[ClaimedSend]: ...

    def start_attempt(self, claimed: ClaimedSend, *, lease_seconds: float, now: float) -> bool: ...

    def handed(self, claimed: ClaimedSend, message: OutboundMessage) -> bool: ...

    def retry_later(
        self, claimed: ClaimedSend, due_at: float, error: str, *, uncertain: bool
    ) -> bool: ...

    def apply(
        self,
        message_id: str,
        status: MessageStatus,
        at: float,
        *,
        provider_id: str | None = None,
        failure: Failure | None = None,
    ) -> OutboundMessage | None: ...

    def claim_unsynced(
        self, limit: int, *, lease_seconds: float = 60.0, now: float | None = None
    ) -> list[ClaimedSync]: ...

    def mark_synced(self, items: Sequence[ClaimedSync]) -> None: ...

    def sync_failed(
        self, items: Sequence[ClaimedSync], *, retry_after: float | None = None
    ) -> None: ...

    def next_sync_due(self) -> float | None: ...


class OutboundWriter(Protocol):
    """Writes outbound messages (and their sessions) to Dataverse (``connector.crm``)."""

    def write_outbound_many(
        self, writes: Sequence[tuple[OutboundMessage, SessionState | None]]
    ) -> list[Exception | None]:
        """ONE ``$batch``, a change set per message (with its session when given); the
        error of each (None: written)."""
        ...


class ConsentLedgerWriter(Protocol):
    """The consent ledger in Dataverse (``connector.crm.consent_rows``): the current row per
    (phone, configuration, purpose) and one history row per change, addressed by the change's
    id, so writing the same change again records it once."""

    def write(self, changes: Sequence[ConsentChange]) -> list[Exception | None]:
        """ONE ``$batch``, a change set per change (current row and history row together), in
        the order given (the order they happened); the error of each (None: written). A
        failure of the whole request is every change's, transient when the request's was."""
        ...

    def changed_since(self, since: datetime | None) -> list[ConsentChange]:
        """The current rows modified at or after ``since`` (None: all), oldest edit first,
        as changes whose id is derived from the row and its edit (admin edits, imports)."""
        ...


class CrmSendRows(Protocol):
    """Outbound message rows created in Dataverse (``connector.crm.send_rows``): sends that
    start in Dynamics, read from a journaled webhook event, by id, or by the poll."""

    def from_event(self, payload: Mapping[str, Any]) -> CrmSendRow | None:
        """The row a journaled webhook event carries (None: the context was trimmed)."""
        ...

    def read(self, row_id: str) -> CrmSendRow | None:
        """One row by id (None: it no longer exists)."""
        ...

    def queued_since(self, since: datetime | None, limit: int) -> Sequence[CrmSendRow]:
        """Up to ``limit`` rows waiting to be sent (outbound, queued, no provider id),
        modified at or after ``since``, oldest first: one request."""
        ...

    def mark_failed(self, row_id: str, failure: Failure) -> None:
        """The row ends failed with ``failure`` (category, code, reason) in Dataverse."""
        ...


class CrmSendLedger(Protocol):
    """What the connector remembers of rows created in Dataverse (``connector.state``): the
    rows it refused (so a repeated webhook does not refuse them again) and the poll's place."""

    def refused(self, row_id: str) -> bool:
        """Whether this row was refused (and marked failed in Dataverse) already."""
        ...

    def note_refused(self, row_id: str, code: str) -> None:
        """Remember that this row was refused with ``code``."""
        ...

    def poll_cursor(self) -> tuple[datetime | None, float | None]:
        """Where the poll stands: the ``modifiedon`` to read from, and when it last ran."""
        ...

    def save_poll_cursor(self, since: datetime | None, ran_at: float) -> None:
        """Record the poll's place and the time of this run."""


class ConversationReader(Protocol):
    """Conversations read back from Dataverse for agents (``connector.crm.inbox``): the
    messages page and the read API. Each call is ONE Dataverse request."""

    def conversations(
        self, folder: Folder, query: str | None, limit: int
    ) -> list[ConversationSummary]:
        """The folder's conversations, most recent activity first; ``query`` narrows them
        to a name or number containing it."""
        ...

    def thread(self, session_id: str) -> list[ThreadMessage]:
        """The session's messages, oldest first, with their attachments named."""
        ...

    def note(self, note_id: str) -> MediaFileContent | None:
        """An attachment of a message, with its bytes (None: not a message's attachment)."""
        ...


class RecordDirectory(Protocol):
    """CRM records an agent picks or creates from a conversation (``connector.crm.inbox``)."""

    def search(self, tables: Sequence[str], text: str, limit: int) -> list[RecordMatch]:
        """Records of ``tables`` whose name or phone contains ``text``."""
        ...

    def create(self, table: str, fields: Mapping[str, str], phone: str) -> RecordMatch:
        """Create a lead or contact carrying ``phone`` with ``fields`` (first name, last
        name, email); the new record."""
        ...


@dataclass(frozen=True, slots=True)
class PaceState:
    """One Dataverse user's request pacing, shared by every process of the fleet.

    Times are epoch seconds. ``rate`` is the fleet's paced requests per second (None: not
    paced); ``next_at`` the next free request slot; ``paused_until`` the end of the latest
    ``Retry-After``; ``learned`` whether a 429 has taught the rate; ``bucket`` and
    ``previous`` count the requests admitted in the current and the previous counting window
    (which began at ``bucket_start``); ``recent`` is the admission rate lately (a moving
    average, as of ``last_at``); ``version`` changes with every write (compare-and-set).
    """

    rate: float | None
    next_at: float
    paused_until: float
    learned: bool
    bucket_start: float
    counts: tuple[int, ...]
    recent: float = 0.0
    last_at: float = 0.0
    version: int = 0


class PacingStore(Protocol):
    """Where the fleet keeps each Dataverse user's :class:`PaceState` and who is using it."""

    def read(self, key: str) -> PaceState | None:
        """The stored state of ``key``; None before its first request."""
        ...

    def write(self, key: str, expected: PaceState | None, new: PaceState) -> bool:
        """Store ``new`` if ``key`` still holds ``expected`` (None: nothing yet); False when
        another writer came first (the caller reads again and recomputes)."""
        ...

    def join(self, key: str, member: str, now: float, ttl: float) -> int:
        """Count ``member`` (one process) among the users of ``key`` until ``now + ttl``; how
        many members are alive now (a killed process drops out when its time runs out)."""
        ...

    def part(self, key: str, member: str) -> None:
        """``member`` stops using ``key`` (its share goes to the others)."""
        ...
