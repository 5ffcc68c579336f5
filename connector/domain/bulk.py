"""Bulk sends, the pure part: recipients, their outcomes, ids and the estimated finish.

A bulk job sends one body (or one template) to up to :data:`MAX_RECIPIENTS` recipients, each a
number or a regarding record. Every recipient ends with one :class:`Outcome`; a refusal of the
send path (a blocked number, an opt-out, a record without a number) becomes that recipient's
outcome instead of stopping the job. Each recipient's message id and ``Idempotency-Key`` are
derived from the job id and the recipient's index, so a job resumed after a crash hands the
outbox the same message again and nobody gets it twice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from connector.domain import phone
from connector.domain.conversation import derived_id
from connector.domain.status import FailureCategory, MessageStatus
from connector.errors import InvalidPhoneNumberError

MAX_RECIPIENTS = 10_000


class Outcome(enum.StrEnum):
    """Where one recipient of a bulk job stands (``pending``: not handed to the send path)."""

    PENDING = "pending"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    OPTED_OUT = "opted_out"
    CONSENT_MISSING = "consent_missing"
    BLOCKED = "blocked"
    NO_NUMBER = "no_number"
    INVALID_NUMBER = "invalid_number"
    DUPLICATE = "duplicate"
    PROVIDER_ERROR = "provider_error"
    FAILED = "failed"
    """Refused for another reason (a template value missing, an unknown record): see ``code``."""


REFUSALS: dict[str, Outcome] = {
    "number_blocked": Outcome.BLOCKED,
    "compliance_blocked": Outcome.BLOCKED,
    "consent_opted_out": Outcome.OPTED_OUT,
    "consent_missing": Outcome.CONSENT_MISSING,
    "regarding_without_phone": Outcome.NO_NUMBER,
    "recipient_missing": Outcome.NO_NUMBER,
    "invalid_phone_number": Outcome.INVALID_NUMBER,
    "number_not_mobile": Outcome.INVALID_NUMBER,
}
"""The send path's refusal codes, as a recipient's outcome (any other code: ``failed``)."""

FINAL = frozenset(Outcome) - {Outcome.PENDING, Outcome.QUEUED, Outcome.SENT}
"""Outcomes that will not change any more (``sent`` may still become ``delivered``)."""


def refusal_outcome(code: str) -> Outcome:
    """The outcome of a recipient the send path refused with ``code``."""
    return REFUSALS.get(code, Outcome.FAILED)


def message_outcome(status: MessageStatus, failure: FailureCategory | None) -> Outcome:
    """The outcome of a recipient whose message is in the outbox with ``status``."""
    if status in (MessageStatus.DELIVERED, MessageStatus.READ):
        return Outcome.DELIVERED
    if status is MessageStatus.SENT:
        return Outcome.SENT
    if status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED, MessageStatus.CANCELED):
        if failure is FailureCategory.OPTED_OUT:
            return Outcome.OPTED_OUT
        return Outcome.PROVIDER_ERROR
    return Outcome.QUEUED


@dataclass(frozen=True, slots=True)
class Recipient:
    """One recipient as asked for: a number, or a regarding record (``table``, ``id``)."""

    to: str | None = None
    regarding_table: str | None = None
    regarding_id: str | None = None

    def dedupe_key(self) -> str:
        """What makes two recipients the same: the number in E.164 (as typed when it does not
        parse: the send path refuses it later), else the record."""
        if self.to is not None:
            try:
                return "to:" + phone.normalize(self.to)
            except InvalidPhoneNumberError:
                return "to:" + self.to.strip()
        return f"record:{self.regarding_table}:{self.regarding_id}"


def mark_duplicates(recipients: list[Recipient]) -> list[bool]:
    """For each recipient, whether an earlier one in the list is the same."""
    seen: set[str] = set()
    flags: list[bool] = []
    for recipient in recipients:
        key = recipient.dedupe_key()
        flags.append(key in seen)
        seen.add(key)
    return flags


def message_id(job_id: str, index: int) -> str:
    """The message id of recipient ``index`` of a job (the same on every attempt)."""
    return derived_id("bulk", job_id, str(index))


def idempotency_key(job_id: str, index: int) -> str:
    """The outbox ``Idempotency-Key`` of recipient ``index`` of a job."""
    return f"bulk:{job_id}:{index}"


def estimated_finish(now: float, remaining: int, per_second: float) -> float:
    """When the last of ``remaining`` messages goes out at ``per_second`` (epoch seconds)."""
    return now + remaining / max(per_second, 0.001)


@dataclass(frozen=True, slots=True)
class BulkJob:
    """A job as stored: what to send (``request``: body or template, sender, category), how
    many recipients, and the lease a worker holds it with (``token``)."""

    id: str
    request: dict[str, object]
    total: int
    created_at: float
    done: bool = False
    finished_at: float | None = None
    token: str | None = None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class RecipientState:
    """One recipient of a job and where it stands (``code``: the refusal's stable code)."""

    index: int
    recipient: Recipient
    outcome: Outcome = Outcome.PENDING
    code: str | None = None
    message_id: str | None = None
    attempts: int = 0
