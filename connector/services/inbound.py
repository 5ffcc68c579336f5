"""Inbound use case: one journaled provider message becomes a message activity in Dataverse.

For each message: normalize From/To, find the configuration by the receiving number, check
the blocked list, read keywords (STOP, START, HELP, YES, admin keywords: consent changes and
automatic replies through :mod:`connector.services.consent`, which records the keyword on the
message or flags one that only mentions an opt-out for review), resolve the CRM record (only
when no session is open: an open session keeps its record), find or open the conversation
session (:mod:`connector.services.conversation_placement`), pick who is notified (the
owner; the configuration's team when this message is the first to find the wait idle: the
escalation is recorded on the session in the same optimistic save, so the periodic sweep of
:mod:`connector.services.escalation` never alerts the team again for that wait), fetch MMS
media, and hand everything to the :class:`~connector.ports.ConversationWriter` as ONE change
set. The local session mirror is updated first (optimistically, so racing workers converge),
and the written rows have ids derived from the provider message id, so a retry after a crash
rewrites the same rows instead of adding new ones. Errors decide their own transience: the
caller (the worker) retries transient ones and parks the rest in the journal's error state.

An attachment whose download keeps failing (a media host answering 500, a TLS error) does
not hold the message back for ever: on the message's ``media_attempts``-th attempt (the
journal row's count) the text is written with a small text note in the attachment's place
saying it could not be fetched and why, and the error log records the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from connector.domain import phone
from connector.domain.conversation import (
    InboundWrite,
    MediaFile,
    NewLead,
    ReceivedMessage,
    SessionState,
)
from connector.domain.model import Configuration
from connector.domain.provider_messages import InboundMedia, InboundMessage
from connector.domain.routing import RecordRef, SenderContext
from connector.errors import (
    ConfigurationError,
    ConnectorError,
    InvalidInputError,
    StateStoreError,
    is_transient,
)
from connector.log_config import get_logger
from connector.ports import (
    ConfigurationLookup,
    ConversationWriter,
    ErrorLog,
    MediaFetcher,
    RecordResolver,
    SessionStore,
)
from connector.services.consent import KeywordOutcome
from connector.services.conversation_placement import ConversationPlacer

log = get_logger(__name__)
MEDIA_ATTEMPTS = 3  # attempts of a message before a failing attachment is given up
_NOT_YET = StateStoreError("not prepared")  # a placeholder every path below replaces
KeywordReader = Callable[[Configuration, ReceivedMessage, str | None], KeywordOutcome]


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
        error_log: ErrorLog | None = None,
        media_attempts: int = MEDIA_ATTEMPTS,
        keywords: KeywordReader | None = None,
    ) -> None:
        self._placer = ConversationPlacer(
            configurations, sessions, resolver, team_members=team_members, clock=clock
        )
        self._keywords = keywords
        self._error_log = error_log
        self._media_attempts = media_attempts
        self._configs = configurations
        self._resolver = resolver
        self._writer = writer
        self._media = media
        self._team_members = team_members

    def handle(self, inbound: InboundMessage, received_at: float) -> InboundOutcome:
        """Write one message (idempotent: calling it again for the same message is safe)."""
        prepared = self.prepare(inbound, received_at)
        error = self.write_many([prepared.write])[0]
        if error is not None:
            raise error
        return prepared.outcome

    def prepare(self, inbound: InboundMessage, received_at: float) -> PreparedInbound:
        """Everything but the Dataverse write: configuration, session, recipients, media."""
        prepared = self.prepare_many([(inbound, received_at)])[0]
        if isinstance(prepared, Exception):
            raise prepared
        return prepared

    def prepare_many(
        self,
        items: Sequence[tuple[InboundMessage, float]],
        attempts: Sequence[int] | None = None,
    ) -> list[PreparedInbound | Exception]:
        """:meth:`prepare` for a claimed batch, in order; an error in place of a message
        that cannot be prepared. ``attempts`` says how often each message failed before
        (the journal row's count): it decides when a failing attachment is given up.

        The batch's sessions are read in ONE query per configuration and stored in ONE
        transaction; the messages of one conversation (configuration and phone) are counted
        on its session in arrival order.
        """
        results: list[PreparedInbound | Exception] = []
        received: dict[int, tuple[ReceivedMessage, Configuration, bool]] = {}
        provider_readings = [inbound.opt_out_type for inbound, _ in items]
        conversations: dict[tuple[str, str], list[int]] = {}
        for index, (inbound, received_at) in enumerate(items):
            try:
                config, message = self._receive(inbound, received_at)
                blocked = self._configs.is_blocked(str(config.id), message.from_number)
            except Exception as exc:  # this message fails; the others go on
                results.append(exc)
                continue
            results.append(_NOT_YET)
            received[index] = (message, config, blocked)
            conversations.setdefault((str(config.id), message.from_number), []).append(index)
        self._placer.prefetch(conversations, received)
        for indexes, sessions in self._placer.place_batch(conversations, received):
            _, config, _ = received[indexes[0]]
            if isinstance(sessions, Exception):
                for i in indexes:
                    results[i] = sessions
                continue
            for i, (session, new) in zip(indexes, sessions, strict=True):
                message, _, blocked = received[i]
                earlier = attempts[i] if attempts is not None else 0
                try:
                    reading = self._read_keywords(config, message, provider_readings[i])
                    results[i] = self._prepared(
                        message, config, blocked, session, new, earlier_attempts=earlier,
                        reading=reading,
                    )  # fmt: skip
                except Exception as exc:
                    results[i] = exc
        return results

    def _receive(
        self, inbound: InboundMessage, received_at: float
    ) -> tuple[Configuration, ReceivedMessage]:
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
        return config, message

    def _read_keywords(
        self, config: Configuration, message: ReceivedMessage, provider_reading: str | None
    ) -> KeywordOutcome:
        """What the message says about consent (applied now, before it is written)."""
        if self._keywords is None:
            return KeywordOutcome()
        return self._keywords(config, message, provider_reading)

    def _prepared(
        self,
        message: ReceivedMessage,
        config: Configuration,
        blocked: bool,
        session: SessionState,
        new: bool,
        *,
        earlier_attempts: int = 0,
        reading: KeywordOutcome | None = None,
    ) -> PreparedInbound:
        notify = () if blocked else self._recipients(session, config, message)
        reading = reading or KeywordOutcome()
        write = InboundWrite(
            session=session,
            message=message,
            regarding_table=session.regarding_table,
            regarding_id=session.regarding_id,
            notify=notify,
            blocked=blocked,
            attachments=self._attachments(message, earlier_attempts),
            keyword=reading.keyword,
            review_reason=reading.review_reason,
            recipient_user=config.owner_id,
            new_lead=self._new_lead(session, message.from_number, config),
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
            if error is None and write.new_lead is not None:
                self._lead_written(write.new_lead)
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

    def _lead_written(self, lead: NewLead) -> None:
        """Tell the resolver; a failure only means the next message from the number creates
        the lead again (a 412, then written without it)."""
        try:
            self._resolver.lead_written(lead)
        except Exception as exc:
            log.warning("inbound.lead_not_indexed", lead=lead.lead_id, error=type(exc).__name__)

    def _new_lead(
        self, session: SessionState, phone_e164: str, config: Configuration
    ) -> NewLead | None:
        """The lead this message creates first: the session's derived lead, until the phone
        index learns it (a retry after a failed or unconfirmed write creates it again)."""
        if session.regarding_table is None or session.regarding_id is None:
            return None
        record = RecordRef(session.regarding_table, session.regarding_id)
        return self._resolver.new_lead(phone_e164, SenderContext.of(config), record)

    def _recipients(
        self, session: SessionState, config: Configuration, message: ReceivedMessage
    ) -> tuple[str, ...]:
        """The owner; the configuration's team when this message escalated the wait."""
        team = config.owning_team_id
        if team and self._team_members and session.escalated_by == message.provider_id:
            return tuple(sorted(self._team_members(team)))
        if session.owner_id and not session.owner_is_team:
            return (session.owner_id,)
        if session.owner_is_team and session.owner_id and self._team_members:
            return tuple(sorted(self._team_members(session.owner_id)))
        return ()

    def _attachments(
        self, message: ReceivedMessage, earlier_attempts: int = 0
    ) -> tuple[MediaFile, ...]:
        if not message.media or self._media is None:
            return ()
        last_try = earlier_attempts + 1 >= self._media_attempts
        files = []
        for index, item in enumerate(message.media):
            try:
                files.append(self._media.fetch(item, message.account_id))
            except InvalidInputError as exc:  # stored without it; transient errors retry
                log.warning(
                    "inbound.media_skipped",
                    provider_message_id=message.provider_id,
                    reason=exc.message,
                )
            except ConnectorError as exc:
                if not (is_transient(exc) and last_try):
                    raise
                files.append(self._given_up(message, index, item, exc, earlier_attempts + 1))
        return tuple(files)

    def _given_up(
        self,
        message: ReceivedMessage,
        index: int,
        item: InboundMedia,
        exc: ConnectorError,
        attempts: int,
    ) -> MediaFile:
        """The note written in place of an attachment that could not be fetched."""
        reason = exc.message[:300]
        stem = item.stem
        log.error(
            "inbound.media_given_up",
            provider_message_id=message.provider_id,
            media=stem,
            attempts=attempts,
            reason=reason,
        )
        if self._error_log is not None:
            self._error_log.record(
                f"media:{message.provider_id}:{index}",
                "media_not_fetched",
                f"Attachment {stem} of message {message.provider_id} could not be fetched "
                f"after {attempts} attempts: {reason}"[:400],
                {"provider_message_id": message.provider_id, "media_url": item.url[:500],
                 "content_type": item.content_type, "attempts": attempts, "error": exc.to_dict()},
            )  # fmt: skip
        text = (
            f"The attachment {stem} ({item.content_type}) could not be fetched from the "
            f"provider after {attempts} attempts: {reason}\n"
        )
        return MediaFile(f"{stem}-not-fetched.txt", "text/plain", text.encode("utf-8"))
