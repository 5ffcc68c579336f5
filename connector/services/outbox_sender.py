"""Sending: due outbox messages handed to the provider, once each, at each sender's rate.

:meth:`OutboxSender.run_once` takes, for each sender with due messages, as many as its rate
allows in the next ``horizon`` seconds, reserves a sending slot for each from the shared
:class:`~connector.ports.SendRate` (so every thread and process of the fleet together keep the
sender's rate), and sends them in slot order, sleeping until each slot.

Exactly once: the attempt is recorded (durably) before the provider is called. A message
claimed with an attempt on record (its worker died mid-send, or a timeout left it unknown)
is first looked up at the provider (:meth:`~connector.ports.SmsProvider.find_sent`); only if
the provider does not have it is it sent again. A status callback for the message also
settles it (the outbox marks it handed), so a lost "accepted" answer never causes a resend.

Failures: transient ones (throttling, 5xx, network) wait with exponential backoff, honouring
Retry-After; permanent ones end the message ``failed`` with the provider's code, category
and plain reason. Twilio 21610 (the recipient replied STOP) ends ``failed`` with category
``opted_out`` and is handed to ``on_failed`` (the consent ledger records the opt-out).

Consent is checked again (``recheck``) just before a message goes to the provider: one that
waited (a send time, quiet hours, a backoff) while the recipient said STOP ends ``failed``
(``opted_out``) instead of going out.

A message this sender ends itself, refused by the provider or by the recheck before it ever
reached the provider, is told to ``on_status`` as stored (subscribers' ``message.status_changed``
events): no provider callback will ever report it. A failing ``on_status`` is logged and never
holds the send back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from connector.domain.model import Configuration
from connector.domain.outbound import Failure, OutboundMessage
from connector.domain.provider_messages import SendRequest, SendResult
from connector.domain.status import FailureCategory, MessageStatus
from connector.errors import ProviderError
from connector.log_config import correlation, get_logger
from connector.ports import ClaimedSend, ConfigurationLookup, OutboxStore, SendRate, SmsProvider

log = get_logger(__name__)

DEFAULT_RATE = 1.0
MAX_BACKOFF_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class SendCycle:
    """What one cycle did, and when the next message is due (epoch seconds) if any."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    next_due: float | None = None


@dataclass
class OutboxSender:
    """Hands due outbox messages to the provider (see the module docstring)."""

    outbox: OutboxStore
    provider: SmsProvider
    configurations: ConfigurationLookup
    rate: SendRate
    horizon: float = 1.0
    lease_margin: float = 30.0
    on_change: Callable[[], None] = field(default=lambda: None)
    recheck: Callable[[OutboundMessage], Failure | None] = field(default=lambda _m: None)
    on_failed: Callable[[OutboundMessage, Failure], None] = field(default=lambda _m, _f: None)
    """Told of each provider refusal (the consent ledger records an opt-out it means)."""
    on_status: Callable[[Sequence[OutboundMessage]], None] = field(default=lambda _m: None)
    """Told of the messages this sender ended (events for subscribers)."""
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def run_once(self) -> SendCycle:
        """Claim what the senders may send in the next ``horizon`` and send it in slot order."""
        now = self.clock()
        plan: list[tuple[float, ClaimedSend, Configuration]] = []
        by_id = {c.id: c for c in self.configurations.snapshot().values() if c.id}
        for configuration_id in self.outbox.senders_due(now):
            config = by_id.get(configuration_id)
            if config is None:
                continue  # inactive or removed: its messages wait (and show queued)
            per_second = config.rate_per_second or DEFAULT_RATE
            limit = max(1, math.ceil(per_second * self.horizon))
            lease = self.horizon + self.lease_margin + limit / per_second
            claims = self.outbox.claim_sends(configuration_id, limit, lease_seconds=lease, now=now)
            for claimed in claims:
                slot = self.rate.reserve(configuration_id, per_second, self.clock())
                plan.append((slot, claimed, config))
        plan.sort(key=lambda item: item[0])
        sent = failed = retried = 0
        for slot, claimed, config in plan:
            wait = slot - self.clock()
            per_second = config.rate_per_second or DEFAULT_RATE
            if wait < -0.5 / per_second:  # woke late: a new slot, never a catch-up burst
                assert config.id is not None
                wait = self.rate.reserve(config.id, per_second, self.clock()) - self.clock()
            if wait > 0:
                self.sleep(wait)
            with correlation(message_id=claimed.message.id):
                outcome = self._send(claimed, config)
            sent += outcome == "sent"
            failed += outcome == "failed"
            retried += outcome == "retry"
        if plan:
            self.on_change()
        return SendCycle(sent, failed, retried, self.outbox.next_send_due())

    def _send(self, claimed: ClaimedSend, config: Configuration) -> str:
        message = claimed.message
        request = _request(message, claimed.attempts + 1)
        if claimed.uncertain and claimed.attempt_at is not None:
            try:
                found = self.provider.find_sent(
                    request,
                    claimed.attempt_at,
                    self.outbox.provider_ids_between(message.to_number, message.created_at),
                )
            except ProviderError as exc:
                return self._failed(claimed, exc)
            if found is not None:
                log.info("outbound.recovered", provider_id=found.provider_message_id)
                self.outbox.handed(claimed, _accepted(message, found, self.clock()))
                return "sent"
        refused = self.recheck(message)
        if refused is not None:
            ended = message.with_status(MessageStatus.FAILED, self.clock(), failure=refused)
            if self.outbox.handed(claimed, ended or message):
                self._ended(ended)
            log.info("outbound.refused_before_sending", code=refused.code)
            return "failed"
        now = self.clock()
        lease = self.lease_margin + self.horizon
        if not self.outbox.start_attempt(claimed, lease_seconds=lease, now=now):
            return "lost"  # another worker holds it now
        try:
            result = self.provider.send(request)
        except ProviderError as exc:
            return self._failed(claimed, exc)
        self.outbox.handed(claimed, _accepted(message, result, self.clock()))
        log.info("outbound.sent", provider_id=result.provider_message_id, to=message.to_number)
        return "sent"

    def _failed(self, claimed: ClaimedSend, exc: ProviderError) -> str:
        message = claimed.message
        if exc.transient:
            delay = min(MAX_BACKOFF_SECONDS, 2.0 ** min(claimed.attempts, 10))
            delay = max(delay, exc.retry_after or 0.0)
            uncertain = bool(exc.details.get("network")) or (exc.http_status or 0) >= 500
            self.outbox.retry_later(
                claimed, self.clock() + delay, f"{exc.code}: {exc.message}", uncertain=uncertain
            )
            log.warning("outbound.retry", code=exc.provider_code, delay=delay)
            return "retry"
        failure = failure_of(exc)
        ended = message.with_status(MessageStatus.FAILED, self.clock(), failure=failure)
        handed = self.outbox.handed(claimed, ended or message)
        log.warning("outbound.failed", code=exc.provider_code, category=failure.category.value)
        self.on_failed(message, failure)
        if handed:
            self._ended(ended)
        return "failed"

    def _ended(self, ended: OutboundMessage | None) -> None:
        """Tell ``on_status`` of a message this sender ended (None: its status did not move)."""
        if ended is None:
            return
        try:
            self.on_status([ended])
        except Exception as exc:  # subscribers' events never hold the send back
            log.error("outbound.status_events_failed", error=type(exc).__name__)


def failure_of(exc: ProviderError) -> Failure:
    """The failure a provider refusal means for the message."""
    try:
        category = FailureCategory(exc.category or FailureCategory.UNKNOWN.value)
    except ValueError:
        category = FailureCategory.UNKNOWN
    action = str(exc.details.get("action") or "")
    reason = f"{exc.message} {action}".strip()
    code = None if exc.provider_code is None else str(exc.provider_code)
    return Failure(category, reason, code)


def _request(message: OutboundMessage, attempt: int) -> SendRequest:
    return SendRequest(
        message_id=message.id,
        to=message.to_number,
        body=message.body,
        from_number=message.from_number,
        messaging_service_id=None if message.from_number else message.messaging_service_id,
        media_urls=message.media_urls,
        attempt=attempt,
    )


def _accepted(message: OutboundMessage, result: SendResult, at: float) -> OutboundMessage:
    """The message once the provider has it."""
    status = result.status
    if status in (MessageStatus.ACCEPTED, MessageStatus.SCHEDULED):
        status = MessageStatus.QUEUED
    moved = message.with_status(status, at, provider_id=result.provider_message_id)
    moved = moved or message
    if result.num_segments:
        moved = replace(moved, segments=result.num_segments)
    return moved
