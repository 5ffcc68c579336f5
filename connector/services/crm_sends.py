"""Sends that start in Dynamics: outbound message rows created in Dataverse, sent exactly once.

A workflow, cloud flow or sequence step creates an ``smsc_message`` row (direction outbound,
status queued, regarding a record, with a body or a template). Two paths bring it here:

* the **Dataverse webhook** (``POST /webhooks/dataverse``, journaled by the web process):
  :meth:`CrmSends.take_events` gets the journaled events from the journal drain;
* the **poll**, the safety net for a webhook never registered or a delivery lost:
  :meth:`CrmSends.poll` reads waiting rows modified since its watermark, ONE request per
  interval, once per fleet (the run time is shared through the state store).

Both end in :meth:`CrmSends.take`, which sends the row through the one send path
(:class:`~connector.services.outbound.SendService`) with **the row's id as the message id**
and an idempotency key derived from it: the outbox holds a message once, so a row seen by the
webhook twice and by the poll is sent once, and the outbound writer updates the row in place
(status, provider id, segments, sent time) instead of creating another. The send path renders
a template against the regarding record, applies the blocked, consent, compliance and quiet
hour gates, and places the message in the conversation session of that number and sender.
A row it refuses ends ``failed`` in Dataverse with a failure category and reason
(:func:`~connector.domain.crm_sends.refusal_failure`; no phone: "no phone number"), and is
remembered so a repeated webhook does not refuse it twice. Transient failures (Dataverse or
the state store away) propagate: the journal retries the event, the next poll the row.
"""

from __future__ import annotations

import enum
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from connector.domain.crm_sends import CrmSendRow, refusal_failure
from connector.errors import ConnectorError, InvalidInputError, RefusedError, is_transient
from connector.log_config import get_logger
from connector.ports import CrmSendLedger, CrmSendRows
from connector.services.outbound import SendOrder

log = get_logger(__name__)

IDEMPOTENCY_PREFIX = "dataverse-row:"


class Outcome(enum.StrEnum):
    """What :meth:`CrmSends.take` did with a row."""

    QUEUED = "queued"  # in the outbox now: it will be sent and the row updated
    DUPLICATE = "duplicate"  # seen before (outbox or refused): nothing done
    SKIPPED = "skipped"  # not a send waiting for us (inbound, already sent, not queued)
    FAILED = "failed"  # refused: marked failed in Dataverse


class Sender(Protocol):
    """What this needs of the send path (``SendService.send``)."""

    def send(
        self, order: SendOrder, *, idempotency_key: str | None = None
    ) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one poll did: rows read, and each outcome's count (``errors``: left for later)."""

    read: int = 0
    outcomes: Mapping[str, int] = field(default_factory=dict)
    errors: int = 0


@dataclass
class CrmSends:
    """Rows created in Dataverse through the send path (see the module docstring).

    ``in_outbox`` is the outbox's ``exists``; ``interval`` the poll's period in seconds (a
    process skips its turn when another polled within 80 % of it); the first poll looks
    back ``lookback`` seconds, later ones from the newest row seen less ``overlap`` (the
    Dataverse clock is not ours).
    """

    sender: Sender
    rows: CrmSendRows
    ledger: CrmSendLedger
    in_outbox: Callable[[str], bool]
    interval: float = 60.0
    limit: int = 200
    lookback: float = 24 * 3600.0
    overlap: float = 300.0
    clock: Callable[[], float] = time.time

    def take(self, row: CrmSendRow) -> Outcome:
        """Send one row once (see the module docstring)."""
        if not row.waiting:
            return Outcome.SKIPPED
        if self.in_outbox(row.id) or self.ledger.refused(row.id):
            return Outcome.DUPLICATE
        try:
            self.sender.send(_order(row), idempotency_key=IDEMPOTENCY_PREFIX + row.id)
        except (RefusedError, InvalidInputError) as exc:
            if exc.code == "idempotency_conflict":  # the row changed between two deliveries
                return Outcome.DUPLICATE
            failure = refusal_failure(exc.code, exc.message)
            self.rows.mark_failed(row.id, failure)
            self.ledger.note_refused(row.id, exc.code)
            log.info("crm_send.refused", row_id=row.id, code=exc.code)
            return Outcome.FAILED
        log.info("crm_send.queued", row_id=row.id)
        return Outcome.QUEUED

    def take_events(
        self, events: Sequence[tuple[Mapping[str, Any], float]]
    ) -> list[Exception | None]:
        """Journaled webhook events ``(payload, received_at)``; an error per event (None:
        handled). A trimmed context (no ``Target``) is read back by id."""
        results: list[Exception | None] = []
        for payload, _received_at in events:
            try:
                row = self.rows.from_event(payload)
                if row is None:
                    row = self.rows.read(str(payload.get("row_id") or ""))
                if row is not None:
                    self.take(row)
            except Exception as exc:  # each event settles on its own
                results.append(exc)
            else:
                results.append(None)
        return results

    def poll(self, *, force: bool = False) -> PollReport | None:
        """One poll unless another process polled within the interval (then None)."""
        now = self.clock()
        since, ran_at = self.ledger.poll_cursor()
        if not force and ran_at is not None and 0 <= now - ran_at < self.interval * 0.8:
            return None
        start = since or datetime.fromtimestamp(now - self.lookback, UTC)
        rows = self.rows.queued_since(start, self.limit)
        outcomes: Counter[str] = Counter()
        stuck: datetime | None = None
        for row in rows:
            try:
                outcomes[self.take(row).value] += 1
            except ConnectorError as exc:
                log.warning("crm_send.poll_row_failed", row_id=row.id, code=exc.code)
                stuck = stuck or _modified(row)
                if not is_transient(exc):
                    continue
                break  # Dataverse or the store away: the next poll goes on from this row
        self.ledger.save_poll_cursor(self._next_since(start, rows, stuck), now)
        errors = len(rows) - sum(outcomes.values())
        report = PollReport(len(rows), dict(outcomes), errors)
        if rows:
            log.info("crm_send.polled", read=len(rows), errors=errors, **dict(outcomes))
        return report

    def _next_since(
        self, start: datetime, rows: Sequence[CrmSendRow], stuck: datetime | None
    ) -> datetime:
        newest = max((m for row in rows if (m := _modified(row)) is not None), default=None)
        if newest is None:
            return start
        if len(rows) < self.limit:
            newest -= timedelta(seconds=self.overlap)
        candidate = max(start, newest)
        return min(candidate, stuck) if stuck is not None else candidate


def _order(row: CrmSendRow) -> SendOrder:
    """The send order of a row: its body (else its template), recipient, sender, category."""
    template = None if row.body else row.template_id
    return SendOrder(
        body=row.body if template is None else None,
        to=row.to,
        from_number=None if row.configuration_id else row.from_number,
        configuration_id=row.configuration_id,
        regarding=row.regarding,
        template_id=template,
        category=row.category,
        message_id=row.id,
    )


def _modified(row: CrmSendRow) -> datetime | None:
    if not row.modified_at:
        return None
    try:
        parsed = datetime.fromisoformat(row.modified_at)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
