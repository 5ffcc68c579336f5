"""Outbound messages into Dataverse, batched across messages, and status news applied.

:class:`OutboundSync` takes the outbox rows whose latest version Dataverse lacks and writes
them in ONE ``$batch`` (a change set per message; a message's first write also upserts its
session). Only the latest state of each message is written, so a message's row and its
status changes share requests with other messages', and changes that came close together
collapse into one write of the highest status. The worker runs it a short, configurable
moment after a change (``linger``), so a steady stream of sends costs a fraction of a request
per message. A failed write backs off (honouring Retry-After) and is written later; sending
never waits for it (Dataverse down: sends still go out, Dataverse catches up).

:class:`StatusNews` applies provider status callbacks (journaled by the web process) to the
outbox: a status only moves forward, so repeated and out-of-order callbacks change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.domain.outbound import Failure, OutboundMessage
from connector.domain.provider_messages import StatusUpdate
from connector.errors import InvalidInputError
from connector.log_config import get_logger
from connector.ports import OutboundWriter, OutboxStore, SessionStore

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one sync wrote, and when the next unsynced version is due (epoch seconds)."""

    written: int = 0
    failed: int = 0
    next_due: float | None = None


@dataclass
class OutboundSync:
    """Writes outbox changes to Dataverse (see the module docstring)."""

    outbox: OutboxStore
    writer: OutboundWriter
    sessions: SessionStore
    batch_size: int = 200
    linger: float = 1.0

    def run_once(self) -> SyncResult:
        """Write up to ``batch_size`` message versions in one request."""
        claimed = self.outbox.claim_unsynced(self.batch_size)
        if not claimed:
            return SyncResult(next_due=self.outbox.next_sync_due())
        writes = [
            (item.message, self.sessions.get(item.message.session_id) if item.first else None)
            for item in claimed
        ]
        errors = self.writer.write_outbound_many(writes)
        done = [item for item, error in zip(claimed, errors, strict=True) if error is None]
        failed = [item for item, error in zip(claimed, errors, strict=True) if error is not None]
        if done:
            self.outbox.mark_synced(done)
        if failed:
            first = next(error for error in errors if error is not None)
            retry_after = getattr(first, "retry_after", None)
            self.outbox.sync_failed(failed, retry_after=retry_after)
            log.warning(
                "outbound.sync_failed",
                count=len(failed),
                code=getattr(first, "code", type(first).__name__),
            )
        return SyncResult(len(done), len(failed), self.outbox.next_sync_due())


@dataclass
class StatusNews:
    """Applies journaled status callbacks to the outbox."""

    outbox: OutboxStore
    parse: Callable[[Mapping[str, Any]], StatusUpdate]
    on_change: Callable[[], None] = field(default=lambda: None)
    on_status: Callable[[Sequence[OutboundMessage]], None] = field(default=lambda _m: None)
    """Told of the messages whose status moved (events for subscribers)."""

    def apply_many(
        self, events: Sequence[tuple[Mapping[str, Any], float]]
    ) -> list[Exception | None]:
        """Apply each ``(payload, received_at)``; an error per event (None: applied or
        stale). A payload is ``{"message_id": ..., "form": {...}}``."""
        results: list[Exception | None] = []
        moved: list[OutboundMessage] = []
        for payload, received_at in events:
            try:
                after = self._apply(payload, received_at)
            except Exception as exc:  # each event settles on its own
                results.append(exc)
            else:
                results.append(None)
                if after is not None:
                    moved.append(after)
        if moved:
            self.on_change()
            try:
                self.on_status(moved)
            except Exception as exc:  # subscribers' events never hold the status back
                log.error("outbound.status_events_failed", error=type(exc).__name__)
        return results

    def _apply(self, payload: Mapping[str, Any], received_at: float) -> OutboundMessage | None:
        message_id = str(payload.get("message_id") or "")
        if not message_id:
            raise InvalidInputError("a journaled status event without a message id")
        update = self.parse(payload)
        failure = None
        if update.error is not None:
            reason = f"{update.error.reason} {update.error.action}".strip()
            failure = Failure(update.error.category, reason, update.error_code)
        after = self.outbox.apply(
            message_id,
            update.status,
            received_at,
            provider_id=update.provider_message_id,
            failure=failure,
        )
        log.info(
            "outbound.status",
            message_id=message_id,
            status=update.status.value,
            applied=after is not None,
        )
        return after
