"""Shipped fakes for the inbound path: a conversation writer, a configuration directory and a
resolver that answers from a table (type-checked against :mod:`connector.ports`).

The writer keeps rows the way Dataverse would after the change sets it was given: one message
per provider id, one session per id (upserts), notifications (inbound and escalation) and
attachments by their derived ids. ``fail_next`` makes the next writes fail with a transient
error, like Dataverse being down.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from connector.domain.conversation import (
    EscalationWrite,
    InboundWrite,
    MediaFile,
    NewLead,
    SessionState,
    derived_id,
)
from connector.domain.model import Configuration, Keyword
from connector.domain.outbound import OutboundMessage
from connector.domain.provider_messages import InboundMedia
from connector.domain.routing import (
    NO_MATCH,
    ONLY_CANDIDATE,
    MatchTrace,
    RecordRef,
    Resolution,
    SenderContext,
)
from connector.errors import DataverseError, DataverseUnavailableError, InvalidInputError
from connector.providers.twilio.media import filename_for


@dataclass
class FakeConversationWriter:
    """Implements :class:`~connector.ports.ConversationWriter` in memory."""

    messages: dict[str, InboundWrite] = field(default_factory=dict)
    sessions: dict[str, SessionState] = field(default_factory=dict)
    notifications: dict[str, tuple[str, str]] = field(default_factory=dict)
    blocked: set[tuple[str, str]] = field(default_factory=set)
    change_sets: int = 0
    fail_next: int = 0
    refuse_attachments: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def write_inbound(self, write: InboundWrite) -> None:
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                raise DataverseUnavailableError("fake Dataverse is down", status=503)
            if self.refuse_attachments and write.attachments:
                raise DataverseError("fake Dataverse refuses notes", status=400)
            self.change_sets += 1
            self.sessions[write.session.id] = write.session
            self.messages[write.message.provider_id] = write
            for user in write.notify:
                key = derived_id("notification", write.message.provider_id, user)
                self.notifications[key] = (user, write.message.provider_id)

    def write_inbound_many(self, writes: Sequence[InboundWrite]) -> list[Exception | None]:
        errors: list[Exception | None] = []
        for write in writes:
            try:
                self.write_inbound(write)
                errors.append(None)
            except DataverseError as exc:
                errors.append(exc)
        return errors

    def write_escalations(self, writes: Sequence[EscalationWrite]) -> list[Exception | None]:
        errors: list[Exception | None] = []
        for write in writes:
            with self._lock:
                if self.fail_next > 0:
                    self.fail_next -= 1
                    errors.append(DataverseUnavailableError("fake Dataverse is down", status=503))
                    continue
                self.change_sets += 1
                for user in write.notify:
                    key = write.notification_id(user)
                    self.notifications[key] = (user, "escalation:" + write.session.id)
            errors.append(None)
        return errors

    def update_session(self, session: SessionState) -> None:
        with self._lock:
            self.sessions[session.id] = session

    def close_sessions(self, sessions: Sequence[SessionState]) -> list[Exception | None]:
        errors: list[Exception | None] = []
        for session in sessions:
            with self._lock:
                if self.fail_next > 0:
                    self.fail_next -= 1
                    errors.append(DataverseUnavailableError("fake Dataverse is down", status=503))
                    continue
                self.change_sets += 1
                self.sessions[session.id] = session
            errors.append(None)
        return errors

    def block_number(self, configuration_id: str, phone: str, blocked_by: str | None) -> None:
        with self._lock:
            self.blocked.add((configuration_id, phone))


@dataclass
class FakeConfigurationDirectory:
    """Implements :class:`~connector.ports.ConfigurationDirectory`; counts its loads."""

    configurations: list[Configuration] = field(default_factory=list)
    blocked: dict[str, set[str]] = field(default_factory=dict)
    keyword_rows: list[Keyword] = field(default_factory=list)
    loads: int = 0

    def active_configurations(self) -> Sequence[Configuration]:
        self.loads += 1
        return [c for c in self.configurations if c.active]

    def blocked_numbers(self) -> Mapping[str, frozenset[str]]:
        return {k: frozenset(v) for k, v in self.blocked.items()}

    def keywords(self) -> Sequence[Keyword]:
        return list(self.keyword_rows)


@dataclass
class TableResolver:
    """A :class:`~connector.ports.RecordResolver` answering from ``records`` (E.164 -> ref).

    An unknown number gets a lead ``lead:<digits>`` made up on the spot, as the real
    resolver would create one. ``calls`` counts resolutions.
    """

    records: dict[str, RecordRef] = field(default_factory=dict)
    calls: int = 0
    prefetched: list[tuple[str, ...]] = field(default_factory=list)
    written_leads: list[NewLead] = field(default_factory=list)

    def prefetch(self, phones: Sequence[str], sender: SenderContext) -> None:
        """Nothing to look up ahead (every answer is in ``records``): only noted."""
        self.prefetched.append(tuple(phones))

    def resolve(self, phone_e164: str, sender: SenderContext) -> Resolution:
        self.calls += 1
        record = self.records.get(phone_e164)
        if record is None:
            lead = RecordRef("lead", derived_id("lead", phone_e164))
            self.records[phone_e164] = lead
            trace = MatchTrace(phone_e164, NO_MATCH, lead, source="created")
            return Resolution(record=lead, trace=trace, created=True)
        trace = MatchTrace(phone_e164, ONLY_CANDIDATE, record, source="index")
        return Resolution(record=record, trace=trace)

    def note_conversation(self, phone_e164: str, record: RecordRef, at: object = None) -> None:
        self.records.setdefault(phone_e164, record)

    def new_lead(self, phone_e164: str, sender: SenderContext, record: RecordRef) -> NewLead | None:
        """Nothing to create: the made-up leads exist as far as the fakes are concerned."""
        return None

    def lead_written(self, lead: NewLead) -> None:
        """Only noted."""
        self.written_leads.append(lead)


@dataclass
class FakeMediaFetcher:
    """A :class:`~connector.ports.MediaFetcher` serving ``files`` (URL -> bytes); others refused.

    Files are named as the real fetcher names them (the URL's last segment and an extension
    for the content type).
    """

    files: dict[str, bytes] = field(default_factory=dict)

    def fetch(self, media: InboundMedia, account_id: str) -> MediaFile:
        if media.url not in self.files:
            raise InvalidInputError("media URL is not on the provider's own hosts")
        return MediaFile(filename_for(media), media.content_type, self.files[media.url])


@dataclass
class FakeErrorLog:
    """A :class:`~connector.ports.ErrorLog` keeping rows by key (rewrites replace)."""

    rows: dict[str, dict[str, object]] = field(default_factory=dict)

    def record(self, key: str, code: str, message: str, details: Mapping[str, object]) -> None:
        self.rows[key] = {"code": code, "message": message, "details": dict(details)}


@dataclass
class FakeOutboundWriter:
    """An :class:`~connector.ports.OutboundWriter` keeping the latest row of each message
    (``rows``), the sessions written with a first write, and how many batches it took.
    ``down`` makes every write fail as an unreachable Dataverse would."""

    rows: dict[str, OutboundMessage] = field(default_factory=dict)
    sessions: dict[str, SessionState] = field(default_factory=dict)
    batches: int = 0
    down: bool = False

    def write_outbound_many(
        self, writes: Sequence[tuple[OutboundMessage, SessionState | None]]
    ) -> list[Exception | None]:
        """Store each message version (and its session), or fail them all when down."""
        if self.down:
            return [DataverseUnavailableError("Dataverse is down")] * len(writes)
        self.batches += 1
        for message, session in writes:
            self.rows[message.id] = message
            if session is not None:
                self.sessions[session.id] = session
        return [None] * len(writes)
