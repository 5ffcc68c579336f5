"""Conversation sessions and inbound messages as the core sees them (pure, no I/O).

A session is one conversation between a customer number and a sender configuration. It is open
from its first message until ``started_at`` + the configuration's session timeout; a message
after that opens a new one. Its owner is a user or a team; a number nobody has accepted yet
gets a session with acceptance *pending*. An inbound message notifies the owner; once nobody
has acted on the session for the idle timeout, every member of the configuration's team is
notified, once per wait: by the periodic escalation sweep, or by the next message if it comes
first (``escalated_at`` records it; an action ends the wait and resets it). A session is closed
when it times out (the periodic sweep) or an agent closes it; a message after that opens a new
one. Identifiers of new rows are derived (uuid5) from the provider message id that caused them,
so a retried write addresses the same rows and duplicates nothing; the unread count is the
number of distinct provider message ids counted into the session (``counted``), so a retried
message never counts twice.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from connector.domain.provider_messages import InboundMedia

_NAMESPACE = uuid.UUID("5f0e4c1e-8a0b-4b59-9d1e-6f2a7c3b9e10")


class Acceptance(enum.StrEnum):
    """Whether an agent has taken the conversation."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"
    BLOCKED = "blocked"


def derived_id(kind: str, *parts: str) -> str:
    """A stable GUID for a row caused by ``parts`` (a retry gets the same id)."""
    return str(uuid.uuid5(_NAMESPACE, kind + ":" + "|".join(parts)))


def utc(seconds: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A downloaded attachment, ready to be stored as a note on the message."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One received message, numbers normalized to E.164, with the time the webhook came."""

    provider_id: str
    account_id: str
    from_number: str
    to_number: str
    body: str
    received_at: float
    media: tuple[InboundMedia, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionState:
    """What the connector remembers of a conversation (mirrored to the session activity)."""

    id: str
    configuration_id: str
    phone: str
    started_at: float
    expires_at: float
    regarding_table: str | None = None
    regarding_id: str | None = None
    owner_id: str | None = None
    owner_is_team: bool = False
    acceptance: Acceptance = Acceptance.PENDING
    unread: int = 0
    last_message_at: float = 0.0
    last_action_at: float | None = None
    awaiting_since: float | None = None
    match_trace: str = ""
    dismissed_by: frozenset[str] = field(default_factory=frozenset)
    escalated_at: float | None = None
    escalation_claim: str | None = None
    escalated_by: str | None = None
    counted: frozenset[str] = field(default_factory=frozenset)
    """Provider ids of the messages counted in ``unread`` (a retry finds its id here)."""
    archived: bool = False
    """In the Archived folder (an inbound message brings it back to the inbox, unread)."""
    closed_at: float | None = None
    """When the session was closed (its activity completed): by an agent, or by the sweep
    once it timed out (then ``expires_at``). None while it is open."""
    version: int = 0

    def is_open(self, now: float) -> bool:
        """Whether a message at ``now`` still belongs to this session (not timed out, not
        closed by then)."""
        return now < self.expires_at and (self.closed_at is None or now < self.closed_at)

    def closed(self, at: float) -> SessionState:
        """The session closed at ``at`` (a message after that opens a new one); a closed
        session keeps the time it was first closed."""
        if self.closed_at is not None:
            return self
        return replace(self, closed_at=at)

    @property
    def close_due_at(self) -> float | None:
        """When the timeout sweep must close it (None: closed already)."""
        return self.expires_at if self.closed_at is None else None

    def with_inbound(self, at: float, provider_id: str) -> SessionState:
        """The session after one more unread inbound message at ``at`` (a new wait starts
        with no escalation when nobody was waiting); unchanged when ``provider_id`` was
        already counted (a retried write of the same message)."""
        if provider_id in self.counted:
            return self
        latest = max(self.last_message_at, at)
        counted = replace(
            self,
            unread=self.unread + 1,
            last_message_at=latest,
            counted=self.counted | {provider_id},
            archived=False,
        )
        if self.awaiting_since is not None:
            return counted
        return replace(counted, awaiting_since=at).escalated(None)

    def marked(self, *, unread: int | None = None, archived: bool | None = None) -> SessionState:
        """The session with its unread count and/or folder set by an agent (reading, marking
        unread, archiving); the wait for a reply is not ended by it."""
        return replace(
            self,
            unread=self.unread if unread is None else max(unread, 0),
            archived=self.archived if archived is None else archived,
        )

    def acted(self, at: float) -> SessionState:
        """Someone acted on the session at ``at``: the wait, and its escalation, end."""
        return replace(self, last_action_at=at, awaiting_since=None).escalated(None)

    def escalated(
        self, at: float | None, *, claim: str | None = None, by: str | None = None
    ) -> SessionState:
        """The team's alert for the current wait recorded at ``at`` (None: not yet).

        ``claim`` marks a sweep's alert as not yet confirmed written (another sweep may
        retake it after a lease); ``by`` names the message whose change set carried it.
        """
        return replace(self, escalated_at=at, escalation_claim=claim, escalated_by=by)

    def escalation_due(self, now: float, idle_timeout_minutes: int, claim_lease: float) -> bool:
        """Whether the team must be alerted now: idle, not blocked, and not alerted for this
        wait yet (or a sweep claimed it ``claim_lease`` seconds ago and never confirmed)."""
        if self.acceptance is Acceptance.BLOCKED or not self.idle(now, idle_timeout_minutes):
            return False
        if self.escalated_at is None:
            return True
        return self.escalation_claim is not None and now - self.escalated_at >= claim_lease

    @property
    def escalation_pending_since(self) -> float | None:
        """The start of a wait whose escalation is not settled (what the sweep searches by;
        None when nobody waits, the number is blocked, or the team was alerted)."""
        if self.awaiting_since is None or self.acceptance is Acceptance.BLOCKED:
            return None
        if self.escalated_at is not None and self.escalation_claim is None:
            return None
        return self.awaiting_since

    def idle(self, now: float, idle_timeout_minutes: int) -> bool:
        """Nobody acted on the waiting message(s) within the idle timeout."""
        if self.awaiting_since is None:
            return False
        return now - self.awaiting_since >= idle_timeout_minutes * 60


def open_session(
    message: ReceivedMessage,
    configuration_id: str,
    timeout_minutes: int,
    previous: SessionState | None,
    default_owner: tuple[str | None, bool],
) -> SessionState:
    """A new session for ``message``: the owner carries over from an accepted earlier one."""
    owner_id, owner_is_team = default_owner
    acceptance = Acceptance.PENDING
    if previous is not None and previous.acceptance is Acceptance.ACCEPTED:
        owner_id, owner_is_team = previous.owner_id, previous.owner_is_team
        acceptance = Acceptance.ACCEPTED
    if previous is not None and previous.acceptance is Acceptance.BLOCKED:
        acceptance = Acceptance.BLOCKED
    return SessionState(
        id=derived_id("session", configuration_id, message.from_number, message.provider_id),
        configuration_id=configuration_id,
        phone=message.from_number,
        started_at=message.received_at,
        expires_at=message.received_at + timeout_minutes * 60,
        owner_id=owner_id,
        owner_is_team=owner_is_team,
        acceptance=acceptance,
    )


def lead_id(configuration_id: str, phone_e164: str) -> str:
    """The id of the lead made for an unknown number texting a configuration: derived, so the
    lead can be written in the same change set as the message that binds to it, and racing
    or retried writers of the first message all name the same row."""
    return derived_id("lead", configuration_id, phone_e164)


@dataclass(frozen=True, slots=True)
class NewLead:
    """A lead still to be created with the message that needs it (create-only: a lead that
    exists already is never written over)."""

    lead_id: str
    phone: str
    owner_id: str | None = None


@dataclass(frozen=True, slots=True)
class InboundWrite:
    """Everything one inbound message writes to Dataverse, as ONE change set.

    ``notify`` lists the users who get an in-app notification (empty for a blocked number);
    ``blocked`` marks the message as from a blocked number (stored, flagged, silent).
    ``keyword`` is the keyword the message was read as (STOP, HELP, an admin keyword), and
    ``review_reason`` says why a person should look at it (it mentions "stop" without being
    the keyword: recorded and flagged, never applied).
    """

    session: SessionState
    message: ReceivedMessage
    regarding_table: str | None
    regarding_id: str | None
    notify: tuple[str, ...] = ()
    blocked: bool = False
    attachments: tuple[MediaFile, ...] = ()
    keyword: str | None = None
    review_reason: str | None = None
    recipient_user: str | None = None
    """The configuration's owner: the message's To party (the sender number otherwise)."""
    new_lead: NewLead | None = None
    """The regarding lead when it is not known to exist yet: created first, in the same
    change set (``If-None-Match: *``)."""

    @property
    def message_id(self) -> str:
        """The message activity's id (derived from the provider id)."""
        return derived_id("message", self.message.provider_id)


@dataclass(frozen=True, slots=True)
class EscalationWrite:
    """The team's alert for one waiting session: a notification per member, as ONE change set.

    Notification ids are derived from the session and the start of its wait, so a retry
    (after a lost answer, or by another sweep retaking a stale claim) rewrites the same rows.
    """

    session: SessionState
    notify: tuple[str, ...]

    def notification_id(self, user: str) -> str:
        """The derived id of ``user``'s notification for this wait."""
        waiting = f"{self.session.awaiting_since or 0.0:.6f}"
        return derived_id("escalation", self.session.id, waiting, user)
