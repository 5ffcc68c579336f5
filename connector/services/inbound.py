"""Inbound use case: one journaled provider message becomes a message activity in Dataverse.

For each message: normalize From/To, find the configuration by the receiving number, check
the blocked list, resolve the CRM record (only when no session is open: an open session
keeps its record), find or open the conversation session, pick who is notified, fetch MMS
media, and hand everything to the :class:`~connector.ports.ConversationWriter` as ONE change
set. The local session mirror is updated first (optimistically, so racing workers converge),
and the written rows have ids derived from the provider message id, so a retry after a crash
rewrites the same rows instead of adding new ones. Errors decide their own transience: the
caller (the worker) retries transient ones and parks the rest in the journal's error state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from connector.domain import phone
from connector.domain.conversation import (
    InboundWrite,
    MediaFile,
    ReceivedMessage,
    SessionState,
    derived_id,
    open_session,
)
from connector.domain.model import Configuration
from connector.domain.provider_messages import InboundMessage
from connector.domain.routing import SenderContext
from connector.errors import (
    ConfigurationError,
    InvalidInputError,
    StateStoreError,
    is_transient,
)
from connector.log_config import get_logger
from connector.ports import (
    ConfigurationLookup,
    ConversationWriter,
    MediaFetcher,
    RecordResolver,
    SessionStore,
)

log = get_logger(__name__)
_SAVE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class InboundOutcome:
    """What happened to one message (for logs, metrics and tests)."""

    message_id: str
    session_id: str
    new_session: bool
    blocked: bool
    notified: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PreparedInbound:
    """A message ready to be written, and what writing it will mean."""

    write: InboundWrite
    outcome: InboundOutcome


class InboundService:
    """Processes journaled inbound messages (see the module docstring)."""

    def __init__(
        self,
        configurations: ConfigurationLookup,
        sessions: SessionStore,
        resolver: RecordResolver,
        writer: ConversationWriter,
        *,
        media: MediaFetcher | None = None,
        team_members: Callable[[str], frozenset[str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._configs = configurations
        self._sessions = sessions
        self._resolver = resolver
        self._writer = writer
        self._media = media
        self._team_members = team_members
        self._clock = clock

    def handle(self, inbound: InboundMessage, received_at: float) -> InboundOutcome:
        """Write one message (idempotent: calling it again for the same message is safe)."""
        prepared = self.prepare(inbound, received_at)
        error = self.write_many([prepared.write])[0]
        if error is not None:
            raise error
        return prepared.outcome

    def prepare(self, inbound: InboundMessage, received_at: float) -> PreparedInbound:
        """Everything but the Dataverse write: configuration, session, recipients, media."""
        to_number = phone.normalize(inbound.to_number)
        config = self._configs.by_sender(to_number)
        if config is None or config.id is None:
            raise ConfigurationError(
                f"no active configuration for sender {to_number}",
                details={"to": to_number, "provider_message_id": inbound.provider_message_id},
            )
        message = ReceivedMessage(
            provider_id=inbound.provider_message_id,
            account_id=inbound.account_id,
            from_number=phone.normalize(inbound.from_number, (config.default_country,)),
            to_number=to_number,
            body=inbound.body,
            received_at=received_at,
            media=inbound.media,
        )
        blocked = self._configs.is_blocked(config.id, message.from_number)
        session, new = self._session_for(message, config)
        notify = () if blocked else self._recipients(session, config)
        write = InboundWrite(
            session=session,
            message=message,
            regarding_table=session.regarding_table,
            regarding_id=session.regarding_id,
            notify=notify,
            blocked=blocked,
            attachments=self._attachments(message),
        )
        outcome = InboundOutcome(write.message_id, session.id, new, blocked, notify)
        return PreparedInbound(write, outcome)

    def write_many(self, writes: Sequence[InboundWrite]) -> list[Exception | None]:
        """Write prepared messages (one ``$batch``, a change set each); an error per write.

        A write whose notes Dataverse refuses (non-transient) is written again without them:
        the message matters more than its attachments.
        """
        errors = self._writer.write_inbound_many(writes)
        for index, (write, error) in enumerate(zip(writes, errors, strict=True)):
            if error is None:
                log.info(
                    "inbound.written",
                    provider_message_id=write.message.provider_id,
                    session=write.session.id,
                    blocked=write.blocked,
                    notified=len(write.notify),
                )
            elif write.attachments and not is_transient(error):
                log.warning(
                    "inbound.attachments_refused",
                    provider_message_id=write.message.provider_id,
                    reason=str(error)[:200],
                )
                errors[index] = self.write_many([replace(write, attachments=())])[0]
        return errors

    def _session_for(
        self, message: ReceivedMessage, config: Configuration
    ) -> tuple[SessionState, bool]:
        """The open session with this message counted, or a new one (race-safe)."""
        assert config.id is not None
        for _ in range(_SAVE_ATTEMPTS):
            current = self._sessions.current(config.id, message.from_number)
            opened_here = derived_id("session", config.id, message.from_number, message.provider_id)
            if current is not None and current.id == opened_here:
                return current, True  # a retry of the message that opened it
            if current is not None and current.is_open(message.received_at):
                updated = current.with_inbound(message.received_at)
                if self._sessions.save(updated, current):
                    return updated, False
                continue
            session = self._new_session(message, config, current)
            if self._sessions.save(session, current):
                return session, True
        raise StateStoreError(
            "the session kept changing under this message", details={"id": message.provider_id}
        )

    def _new_session(
        self, message: ReceivedMessage, config: Configuration, previous: SessionState | None
    ) -> SessionState:
        assert config.id is not None
        owner = (config.owner_id, False)
        if config.owning_team_id:
            owner = (config.owning_team_id, True)
        session = open_session(
            message, config.id, config.session_timeout_minutes, previous, owner
        ).with_inbound(message.received_at)
        sender = SenderContext(
            configuration_id=config.id,
            owner_id=config.owner_id,
            team_id=config.owning_team_id,
            default_country=config.default_country,
        )
        resolution = self._resolver.resolve(message.from_number, sender)
        record = resolution.record
        return replace(
            session,
            regarding_table=record.table if record else None,
            regarding_id=record.id if record else None,
            match_trace=resolution.trace.to_json(),
        )

    def _recipients(self, session: SessionState, config: Configuration) -> tuple[str, ...]:
        """The owner; the configuration's team once the session sat idle too long."""
        now = self._clock()
        team = config.owning_team_id
        if team and self._team_members and session.idle(now, config.idle_timeout_minutes):
            return tuple(sorted(self._team_members(team)))
        if session.owner_id and not session.owner_is_team:
            return (session.owner_id,)
        if session.owner_is_team and session.owner_id and self._team_members:
            return tuple(sorted(self._team_members(session.owner_id)))
        return ()

    def _attachments(self, message: ReceivedMessage) -> tuple[MediaFile, ...]:
        if not message.media or self._media is None:
            return ()
        files = []
        for item in message.media:
            try:
                files.append(self._media.fetch(item, message.account_id))
            except InvalidInputError as exc:  # stored without it; transient errors retry
                log.warning(
                    "inbound.media_skipped",
                    provider_message_id=message.provider_id,
                    reason=exc.message,
                )
        return tuple(files)
