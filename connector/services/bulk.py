"""Bulk sends: one body or template to up to 10,000 recipients, through the one send path.

:meth:`BulkService.submit` checks the request, stores the job with every recipient (later
copies of a number or record are settled ``duplicate`` at once) and answers with the job id;
nothing is sent yet. The worker then runs :meth:`BulkService.run_once` again and again: it
leases the job, hands the next recipients to :class:`~connector.services.outbound.SendService`
(every gate applies: blocked numbers, consent, compliance, quiet hours) and records each
one's outcome. A refusal is that recipient's outcome, never the job's end.

Pace: the job keeps at most ``lead_seconds`` of the sender's rate waiting in the outbox, so it
feeds the outbox as fast as the outbox sender drains it (the sender's rate, shared by every
process) and a person's reply on the same number never queues behind 10,000 bulk messages.

Crashes: each recipient's message id and ``Idempotency-Key`` come from the job id and its
index, and a recipient whose message is already in the outbox is not sent again, so a job
resumed by another worker (the lease ran out) sends nobody twice.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from connector.domain.bulk import (
    MAX_RECIPIENTS,
    BulkJob,
    Outcome,
    Recipient,
    RecipientState,
    estimated_finish,
    idempotency_key,
    mark_duplicates,
    message_id,
    refusal_outcome,
)
from connector.domain.model import MessageCategory
from connector.domain.routing import RecordRef
from connector.errors import ConnectorError, InvalidInputError, NotFoundError, UnprocessableError
from connector.log_config import correlation, get_logger
from connector.ports import ConfigurationLookup, TemplateCatalog
from connector.services.outbound import SendOrder, SendOrigin
from connector.services.outbox_sender import DEFAULT_RATE

log = get_logger(__name__)

RECORD_EVERY = 50
"""Outcomes are stored after this many recipients (a crash resends none of them anyway)."""


class BulkStore(Protocol):
    """Where jobs and recipients are kept (``connector.state.bulk.BulkJobs``)."""

    def create(
        self,
        job_id: str,
        request: Mapping[str, Any],
        recipients: Sequence[Recipient],
        duplicates: Sequence[bool],
        now: float,
    ) -> None: ...

    def claim(self, *, lease_seconds: float, now: float | None = None) -> BulkJob | None: ...

    def pending(self, job_id: str, limit: int) -> list[RecipientState]: ...

    def record(self, job_id: str, results: Sequence[RecipientState]) -> None: ...

    def release(self, job: BulkJob, *, due_at: float, done: bool, attempts: int = 0) -> bool: ...

    def waiting(self, job_id: str) -> int: ...

    def next_due(self) -> float | None: ...

    def get(self, job_id: str) -> BulkJob | None: ...

    def outcomes(self, job_id: str) -> dict[Outcome, int]: ...

    def recipients(self, job_id: str, offset: int, limit: int) -> list[RecipientState]: ...


class Sender(Protocol):
    """The send path (``SendService``)."""

    def send(self, order: SendOrder, *, idempotency_key: str | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class BulkOrder:
    """What every recipient of a job gets: a body or a template, a sender, a category."""

    body: str | None = None
    template_id: str | None = None
    category: MessageCategory | None = None
    from_number: str | None = None
    configuration_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "body": self.body,
            "template_id": self.template_id,
            "category": self.category.value if self.category else None,
            "from": self.from_number,
            "configuration_id": self.configuration_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BulkOrder:
        """From the stored form."""
        category = data.get("category")
        return cls(
            body=data.get("body"),
            template_id=data.get("template_id"),
            category=MessageCategory(category) if category else None,
            from_number=data.get("from"),
            configuration_id=data.get("configuration_id"),
        )

    def send_order(self, recipient: Recipient, message: str) -> SendOrder:
        """The send order for one recipient (``message``: its derived message id)."""
        regarding = None
        if recipient.regarding_table and recipient.regarding_id:
            regarding = RecordRef(recipient.regarding_table, recipient.regarding_id)
        return SendOrder(
            body=self.body,
            to=recipient.to,
            from_number=self.from_number,
            configuration_id=self.configuration_id,
            regarding=regarding,
            template_id=self.template_id,
            category=self.category,
            origin=SendOrigin.AUTOMATION,
            message_id=message,
        )


@dataclass
class BulkService:
    """Bulk jobs: submitted by the API, run by the worker (see the module docstring)."""

    jobs: BulkStore
    sender: Sender
    configurations: ConfigurationLookup
    templates: TemplateCatalog
    in_outbox: Callable[[str], bool]
    nudge: Callable[[], None] = field(default=lambda: None)
    lease_seconds: float = 60.0
    lead_seconds: float = 10.0
    max_attempts: int = 5
    clock: Callable[[], float] = time.time
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))

    # -- submitting ---------------------------------------------------------------------
    def submit(self, order: BulkOrder, recipients: Sequence[Recipient]) -> dict[str, Any]:
        """Store a job (durable on return) and wake the worker; the ``202`` answer."""
        self._check(order, recipients)
        job_id = self.new_id()
        duplicates = mark_duplicates(list(recipients))
        self.jobs.create(job_id, order.to_dict(), recipients, duplicates, self.clock())
        log.info("bulk.submitted", job_id=job_id, recipients=len(recipients))
        self.nudge()
        return {
            "id": job_id,
            "status": "running",
            "total": len(recipients),
            "duplicates": sum(duplicates),
        }

    def _check(self, order: BulkOrder, recipients: Sequence[Recipient]) -> None:
        if not 1 <= len(recipients) <= MAX_RECIPIENTS:
            raise InvalidInputError(
                f"give 1 to {MAX_RECIPIENTS} recipients", code="recipients_out_of_range"
            )
        if (order.body is None) == (order.template_id is None):
            raise InvalidInputError("give either 'body' or 'template_id'", code="body_or_template")
        if order.body is not None and not order.body.strip():
            raise InvalidInputError("the message body is empty", code="body_empty")
        if order.template_id is not None and self.templates.get(order.template_id) is None:
            raise UnprocessableError(
                f"no published template {order.template_id}",
                code="unknown_template",
                details={"template_id": order.template_id},
            )
        if order.configuration_id is not None and not any(
            c.id == order.configuration_id and c.active
            for c in self.configurations.snapshot().values()
        ):
            raise UnprocessableError(
                f"no active sender configuration {order.configuration_id}",
                code="unknown_sender",
                details={"sender": order.configuration_id},
            )

    # -- running ------------------------------------------------------------------------
    def run_once(self) -> float | None:
        """Hand the next recipients of one due job to the send path; when a job is next
        due (epoch seconds), or None when no job is unfinished."""
        job = self.jobs.claim(lease_seconds=self.lease_seconds, now=self.clock())
        if job is None:
            return self.jobs.next_due()
        with correlation(bulk_job=job.id):
            self._run(job)
        return self.jobs.next_due()

    def _run(self, job: BulkJob) -> None:
        order = BulkOrder.from_dict(job.request)
        window = max(10, math.ceil(self.rate(order) * self.lead_seconds))
        room = window - self.jobs.waiting(job.id)
        if room <= 0:  # the outbox has enough of this job waiting: come back when it drained
            self.jobs.release(job, due_at=self.clock() + self.lead_seconds / 2, done=False)
            return
        batch = self.jobs.pending(job.id, room)
        results: list[RecipientState] = []
        stalled = False
        for state in batch:
            result = self._send_one(job, order, state)
            results.append(result)
            if result.outcome is Outcome.PENDING:
                stalled = True  # a transient failure: the job backs off, then resumes here
                break
            if len(results) >= RECORD_EVERY:
                self.jobs.record(job.id, results)
                results = []
        self.jobs.record(job.id, results)
        if stalled:
            attempts = job.attempts + 1
            delay = min(300.0, 2.0**attempts)
            self.jobs.release(job, due_at=self.clock() + delay, done=False, attempts=attempts)
            return
        done = len(batch) < room
        if done:
            log.info("bulk.handed_over", job_id=job.id, recipients=job.total)
        self.jobs.release(job, due_at=self.clock(), done=done)

    def _send_one(self, job: BulkJob, order: BulkOrder, state: RecipientState) -> RecipientState:
        message = message_id(job.id, state.index)
        if self.in_outbox(message):  # handed on before a crash: never sent twice
            return replace(state, outcome=Outcome.QUEUED, message_id=message)
        try:
            answer = self.sender.send(
                order.send_order(state.recipient, message),
                idempotency_key=idempotency_key(job.id, state.index),
            )
        except ConnectorError as exc:
            attempts = state.attempts + 1
            if exc.transient and attempts < self.max_attempts:
                log.warning("bulk.recipient_retry", index=state.index, code=exc.code)
                return replace(state, attempts=attempts)
            return replace(
                state, outcome=refusal_outcome(exc.code), code=exc.code, attempts=attempts
            )
        except Exception as exc:  # one bad recipient never stops the job
            log.exception("bulk.recipient_failed", index=state.index, error=type(exc).__name__)
            return replace(state, outcome=Outcome.FAILED, code="unexpected")
        return replace(state, outcome=Outcome.QUEUED, message_id=str(answer["id"]))

    def rate(self, order: BulkOrder) -> float:
        """The sending rate the job goes at: its sender's, else the slowest active one's."""
        active = [c for c in self.configurations.snapshot().values() if c.active and c.id]
        chosen = [
            c
            for c in active
            if c.id == order.configuration_id
            or (order.from_number and c.sender_number == order.from_number)
        ]
        rates = [c.rate_per_second or DEFAULT_RATE for c in (chosen or active)]
        return min(rates) if rates else DEFAULT_RATE

    # -- showing ------------------------------------------------------------------------
    def view(self, job_id: str, *, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """Progress, counts per outcome, the estimated finish and a page of recipients."""
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no bulk job {job_id}", details={"id": job_id})
        counts = self.jobs.outcomes(job_id)
        pending = counts.get(Outcome.PENDING, 0)
        unsent = pending + self.jobs.waiting(job_id)
        now = self.clock()
        rate = self.rate(BulkOrder.from_dict(job.request))
        running = bool(pending or counts.get(Outcome.QUEUED, 0))
        page = self.jobs.recipients(job_id, offset, limit)
        return {
            "id": job.id,
            "status": "running" if running else "completed",
            "total": job.total,
            "processed": job.total - pending,
            "counts": {o.value: counts.get(o, 0) for o in Outcome if counts.get(o, 0)},
            "rate_per_second": rate,
            "created_at": _iso(job.created_at),
            "handed_over_at": _iso(job.finished_at),
            "estimated_finish": _iso(estimated_finish(now, unsent, rate) if running else now),
            "recipients": [_recipient_view(r) for r in page],
            "next_offset": offset + len(page) if offset + len(page) < job.total else None,
        }


def _recipient_view(state: RecipientState) -> dict[str, Any]:
    r = state.recipient
    regarding = None
    if r.regarding_table and r.regarding_id:
        regarding = {"table": r.regarding_table, "id": r.regarding_id}
    return {
        "index": state.index,
        "to": r.to,
        "regarding": regarding,
        "outcome": state.outcome.value,
        "code": state.code,
        "message_id": state.message_id,
    }


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")
