"""The inbound use case's coordinator: one claimed batch of journal rows into Dataverse.

:class:`JournalDrain` claims due journal rows (leased, so a killed worker's rows come back),
parses each raw event with the provider that journaled it (the row names it), prepares them
with :class:`~connector.services.inbound.InboundService`, writes the batch in ONE ``$batch``
request (a change set per message, continuing past a failed one), and marks each row done
only after its change set was confirmed. When the journal is shallow (fewer due rows than a
batch), the drain first lingers a short window (``linger_seconds`` from the oldest due row's
arrival) or until a full batch is due, so messages arriving in a trickle share one ``$batch``;
it claims nothing while it waits, so a worker killed then leaves every row pending. Only
inbound messages linger: status callbacks and other journals' events (nothing to batch with
the messages' change sets) are claimed and applied at once, alone, while the messages go on
waiting for their batch. A
transient failure backs the row off (honouring Retry-After); a permanent one parks it
(replayable) and records it in the error log.
Scheduling (when to drain, periodic sweeps) belongs to ``connector.worker``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.domain.conversation import InboundWrite
from connector.domain.provider_messages import InboundMessage
from connector.errors import ConnectorError, StateStoreError, is_transient
from connector.log_config import correlation, get_logger
from connector.ports import JOURNAL_PARKED, ErrorLog, JournalQueue, JournalRow, WebhookProvider
from connector.services.inbound import InboundService, PreparedInbound

log = get_logger(__name__)
DepthProbe = Callable[[int, frozenset[str]], tuple[int, float | None, int]]
"""``probe(limit, urgent)``: how many journal rows are due (up to ``limit``), the oldest one's
arrival (epoch seconds) and how many of them belong to the ``urgent`` journals, without
claiming them."""
StatusSink = Callable[[Sequence[tuple[Mapping[str, Any], float]]], list[Exception | None]]
"""Applies journaled status callbacks ``(payload, received_at)``; an error per event."""


class NotEnabledError(ConnectorError):
    """This worker was built without the service an event needs (retried later)."""

    code = "not_enabled"
    default_transient = True


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What one drain did, and when the next backed-off row is due (epoch seconds)."""

    done: int = 0
    failed: int = 0
    next_due: float | None = None


class JournalDrain:
    """Processes due journal rows with the inbound service."""

    def __init__(
        self,
        journal: JournalQueue,
        service: InboundService,
        providers: Mapping[str, WebhookProvider],
        *,
        batch_size: int = 50,
        lease_seconds: float = 60.0,
        time_budget: float = 20.0,
        on_done: Callable[[JournalRow], None] = lambda _entry: None,
        error_log: ErrorLog | None = None,
        status_news: StatusSink | None = None,
        status_journals: frozenset[str] = frozenset(),
        sinks: Mapping[str, StatusSink] | None = None,
        on_written: Callable[[Sequence[InboundWrite]], None] | None = None,
        linger_seconds: float = 0.0,
        depth: DepthProbe | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        self.service = service
        self.providers = providers
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.time_budget = time_budget
        self.on_done = on_done
        self.error_log = error_log
        self.status_news = status_news
        self.status_journals = status_journals
        self.sinks = dict(sinks or {})
        """Other journals' events, by journal name, each to its own sink (``dataverse``)."""
        self.on_written = on_written
        """Told of messages written to Dataverse before their rows are marked done (events
        for subscribers: a failure leaves the rows to be retried, the writes are idempotent)."""
        self.linger_seconds = linger_seconds
        """How long after the oldest due row's arrival a shallow journal is left to fill (0:
        claim at once); only with a ``depth`` probe."""
        self.depth = depth
        self.sleep = sleep
        self.clock = clock
        self.poll_seconds = 0.025
        self._lingering = threading.Lock()
        """Held by the worker thread whose drain is lingering (see :meth:`drain`)."""
        self._held: list[JournalRow] = []
        self._held_lock = threading.Lock()
        """Rows of a batch cut short by the state store failing: still leased to this worker,
        settled as a failed attempt once the store answers again (see :meth:`drain`)."""

    def drain(self) -> DrainResult:
        """Claim and process batches until nothing is due or the time budget is spent.

        When the state store fails mid-batch (a PostgreSQL restart), the batch's rows stay
        leased with nothing recorded. Rather than leave them until their lease ends (a minute
        by default), the next drain first gives them back as a failed attempt, due after the
        usual backoff; rows already settled are untouched (a settle needs the claim's token),
        and rows written meanwhile are written again idempotently. Raises
        :class:`StateStoreError` while the store is still unreachable.

        With a linger window, one worker thread lingers at a time: a drain that finds another
        lingering returns at once, with nothing done and no follow-up; the lingering one
        claims after its wait, so it takes every row committed before then (and keeps
        draining until none is due). Two lingering drains split a batch in two and polled the
        depth twice as often.
        """
        self._give_back_held()
        done = failed = 0
        started = time.monotonic()
        while time.monotonic() - started < self.time_budget:
            urgent_only = self._linger_alone()
            if urgent_only is None:
                return DrainResult(done, failed, None)  # the lingering drain goes on
            only = self._urgent if urgent_only else None
            batch = self.journal.claim(
                self.batch_size, lease_seconds=self.lease_seconds, journals=only
            )
            if not batch:
                break
            try:
                ok, bad = self.process(batch)
            except StateStoreError:
                with self._held_lock:
                    self._held.extend(batch)
                raise
            done, failed = done + ok, failed + bad
            if bad:
                break  # something is failing: let the backoff decide when to try again
        return DrainResult(done, failed, self.journal.next_due())

    def _give_back_held(self) -> None:
        """Settle the rows a state-store failure left leased to this worker (see drain);
        worker threads share the drain, so one of them does it under the lock."""
        problem = {"code": StateStoreError.code, "message": "the state store was unreachable"}
        with self._held_lock:
            while self._held:
                self.journal.mark_failed(self._held[0], problem, transient=True)
                self._held.pop(0)

    @property
    def _urgent(self) -> frozenset[str]:
        """The journals whose rows never linger (status callbacks, other journals' events)."""
        return self.status_journals | frozenset(self.sinks)

    def _linger_alone(self) -> bool | None:
        """:meth:`linger`, unless another worker thread is lingering already: None then.
        Without a linger window there is nothing to wait for, and no guard."""
        if self.depth is None or self.linger_seconds <= 0:
            return False
        if not self._lingering.acquire(blocking=False):
            return None
        try:
            return self.linger()
        finally:
            self._lingering.release()

    def linger(self) -> bool:
        """While fewer rows than a batch are due, wait until ``linger_seconds`` after the
        oldest one's arrival (polling the depth); return at once when none or a full batch is
        due. Nothing is claimed meanwhile. True when it stopped early because urgent rows
        are due beside inbound messages still in their window: claim only the urgent ones."""
        if self.depth is None or self.linger_seconds <= 0:
            return False
        urgent = self._urgent
        while True:
            count, oldest, pressing = self.depth(self.batch_size, urgent)
            if count == 0 or count >= self.batch_size or oldest is None:
                return False
            left = oldest + self.linger_seconds - self.clock()  # read once: it keeps moving
            if left <= 0:
                return False
            if pressing:
                return pressing < count  # all urgent: a plain claim takes the same rows
            self.sleep(min(left, self.poll_seconds))

    def process(self, batch: Sequence[JournalRow]) -> tuple[int, int]:
        """Parse and prepare every row, write them in ONE request, settle each; (done, failed).

        Status callbacks (rows of a ``status_journals`` name) go to ``status_news`` instead.
        """
        statuses = [entry for entry in batch if entry.provider in self.status_journals]
        done, failed = self._apply_statuses(statuses) if statuses else (0, 0)
        for name, sink in self.sinks.items():
            routed = [entry for entry in batch if entry.provider == name]
            ok, bad = self._apply_statuses(routed, sink) if routed else (0, 0)
            done, failed = done + ok, failed + bad
        parsed: list[tuple[JournalRow, InboundMessage]] = []
        for entry in batch:
            if entry.provider in self.status_journals or entry.provider in self.sinks:
                continue
            try:
                parsed.append((entry, self.providers[entry.provider].parse(entry.payload)))
            except Exception as exc:  # every failure is recorded on its row
                self._failed(entry, exc)
                failed += 1
        with correlation(
            request_ids=",".join(e.request_id or "-" for e, _ in parsed),
            provider_message_ids=",".join(e.event_id for e, _ in parsed),
        ):
            ok, bad = self._write(parsed, failed) if parsed else (0, failed)
        return done + ok, bad

    def _apply_statuses(
        self, entries: Sequence[JournalRow], sink: StatusSink | None = None
    ) -> tuple[int, int]:
        """Apply journaled status callbacks (or another journal's events, with ``sink``);
        (done, failed)."""
        if sink is not None:
            errors: list[Exception | None] = sink([(e.payload, e.received_at) for e in entries])
        elif self.status_news is None:
            off = NotEnabledError("status callbacks are not applied by this worker")
            errors = [off] * len(entries)
        else:
            errors = self.status_news([(e.payload, e.received_at) for e in entries])
        done = [e for e, problem in zip(entries, errors, strict=True) if problem is None]
        self.journal.mark_done_many(done)
        for entry, problem in zip(entries, errors, strict=True):
            if problem is not None:
                self._failed(entry, problem)
        return len(done), len(entries) - len(done)

    def _write(
        self, parsed: Sequence[tuple[JournalRow, InboundMessage]], failed: int
    ) -> tuple[int, int]:
        """Prepare the parsed rows, write them in one request and settle each one."""
        ready: list[tuple[JournalRow, PreparedInbound, InboundMessage]] = []
        items = [(message, entry.received_at) for entry, message in parsed]
        attempts = [entry.attempts for entry, _ in parsed]
        for (entry, message), prepared in zip(
            parsed, self.service.prepare_many(items, attempts), strict=True
        ):
            if isinstance(prepared, Exception):
                self._failed(entry, prepared, message)
                failed += 1
            else:
                ready.append((entry, prepared, message))
        if not ready:
            return 0, failed
        errors = self.service.write_many([prepared.write for _, prepared, _ in ready])
        written = [entry for (entry, _, _), error in zip(ready, errors, strict=True) if not error]
        if written and self.on_written is not None:
            try:
                self.on_written(
                    [p.write for (_, p, _), error in zip(ready, errors, strict=True) if not error]
                )
            except Exception as exc:  # the rows stay due; written again, told again
                for entry in written:
                    self._failed(entry, exc)
                return 0, failed + len(written)
        self.journal.mark_done_many(written)
        for entry in written:
            self.on_done(entry)
        for (entry, _, message), error in zip(ready, errors, strict=True):
            if error is not None:
                self._failed(entry, error, message)
                failed += 1
        return len(written), failed

    def _failed(
        self, entry: JournalRow, exc: BaseException, message: InboundMessage | None = None
    ) -> None:
        with correlation(
            entry.request_id, provider_message_id=entry.event_id, journal_id=str(entry.id)
        ):
            self._settle_failed(entry, exc, message)

    def _settle_failed(
        self, entry: JournalRow, exc: BaseException, message: InboundMessage | None
    ) -> None:
        transient = is_transient(exc)
        details: dict[str, Any] = (
            exc.to_dict()
            if isinstance(exc, ConnectorError)
            else {"code": "unexpected", "message": f"{type(exc).__name__}: {exc}"}
        )
        retry_after = getattr(exc, "retry_after", None)
        status = self.journal.mark_failed(
            entry, details, transient=transient, retry_after=retry_after
        )
        if status == JOURNAL_PARKED and self.error_log is not None:
            self.error_log.record(
                f"journal:{entry.id}",
                str(details.get("code", "error")),
                f"Inbound message {entry.event_id} could not be stored: "
                f"{details.get('message', '')}"[:400],
                {
                    "journal_id": entry.id,
                    "provider": entry.provider,
                    "provider_message_id": entry.event_id,
                    "request_id": entry.request_id,
                    "from": message.from_number if message else None,
                    "to": message.to_number if message else None,
                    "error": details,
                    "replay": f"connector journal replay {entry.id}",
                },
            )
        level = log.error if status == JOURNAL_PARKED else log.warning
        level(
            "journal.failed",
            journal_id=entry.id,
            attempt=entry.attempts + 1,
            status=status,
            code=details.get("code"),
        )
