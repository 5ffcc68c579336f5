"""Consent use cases: keywords on inbound, double opt-in, opt-outs from elsewhere, the check a
send must pass.

Every change goes to the local ledger first (:class:`~connector.ports.ConsentStore`, durable,
what sends are checked against) and reaches Dataverse's ledger later
(:mod:`connector.services.consent_sync`). Change ids derive from their cause (the inbound
message, the request), and the automatic replies are sent through the one send path with an
idempotency key derived from the same cause: a webhook delivered three times changes consent
once and answers once.

Keywords (whole body, see :mod:`connector.domain.keywords`):

- **STOP family** and admin opt-out keywords: every purpose of that sender opted out; one
  confirmation.
- **START family** (and YES with nothing pending): opted back in where the person was opted
  in before the opt-out (transactional always was: it needs only "not opted out"; commercial
  only when an explicit opt-in preceded the opt-out); a confirmation when something changed.
- **YES with a pending double opt-in** (or an admin confirm keyword): the pending purposes
  opted in with the YES message as evidence. A YES after the request expired changes nothing
  and the message is flagged for review with that reason.
- **HELP family**: the configuration's help text. Admin **auto-reply** keywords: their text.
- Where the provider already answered (Twilio Advanced Opt-Out sets ``OptOutType``), the
  change is recorded with method *provider* and nothing is sent.

A body that merely mentions an opt-out ("please stop texting me") changes nothing: the
message is stored and flagged for review. Replies are marked automatic, skip quiet hours and
the consent gate (a STOP must be confirmed; HELP must be answered), but never go to a blocked
number.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from connector.domain import keywords as keyword_rules
from connector.domain import phone
from connector.domain.consent import (
    PURPOSES,
    ConsentChange,
    ConsentMethod,
    ConsentStatus,
    Evidence,
    change_id,
    pending_confirmations,
    refusal,
)
from connector.domain.conversation import ReceivedMessage
from connector.domain.model import Configuration, Keyword, KeywordAction, MessageCategory
from connector.domain.outbound import Failure, OutboundMessage
from connector.domain.status import FailureCategory
from connector.errors import RefusedError, UnprocessableError
from connector.log_config import get_logger
from connector.ports import ConfigurationLookup, ConsentStore

log = get_logger(__name__)

_STOP_REPLY = (
    "{name}: you are unsubscribed and will receive no more messages from this number. "
    "Reply START to resubscribe."
)
_START_REPLY = "{name}: you are subscribed again. Reply STOP to unsubscribe."
_CONFIRMED_REPLY = (
    "{name}: thanks, you are subscribed. Msg & data rates may apply. Reply HELP for help, "
    "STOP to unsubscribe."
)
_HELP_REPLY = "{name}: reply STOP to unsubscribe, START to resubscribe. Msg & data rates may apply."
_OPT_IN_REQUEST = (
    "{name}: reply YES to receive {purpose} messages from us. Msg & data rates may apply. "
    "Reply HELP for help, STOP to opt out."
)
_PURPOSE_WORDS = {MessageCategory.TRANSACTIONAL: "service", MessageCategory.COMMERCIAL: "marketing"}
_EVIDENCE_TEXT = 2000


class Sender(Protocol):
    """The one send path (``SendService.send``), as consent uses it."""

    def send_automatic(self, to: str, config: Configuration, body: str, *, key: str) -> Any:
        """Send an automatic reply once per ``key``."""
        ...


@dataclass(frozen=True, slots=True)
class KeywordOutcome:
    """What an inbound message was read as: the keyword, or why a person should look."""

    keyword: str | None = None
    review_reason: str | None = None


@dataclass
class ConsentService:
    """Consent changes and checks (see the module docstring)."""

    ledger: ConsentStore
    configurations: ConfigurationLookup
    keywords: Callable[[str], Sequence[Keyword]]
    sender: Sender | None = None
    on_change: Callable[[], None] = lambda: None
    clock: Callable[[], float] = time.time

    # -- the send path's check ------------------------------------------------------------
    def refused(
        self, phone_e164: str, configuration_id: str, category: MessageCategory
    ) -> str | None:
        """The problem code refusing a send of ``category``, or None (one local read)."""
        return refusal(self.ledger.current(phone_e164, configuration_id), category)

    def still_allowed(self, message: OutboundMessage) -> Failure | None:
        """Checked again just before a queued message goes to the provider: a STOP (or a
        block) that came while it waited ends it here."""
        if message.automatic:
            return None
        if self.configurations.is_blocked(message.configuration_id, message.to_number):
            return Failure(
                FailureCategory.OPTED_OUT,
                "The number was blocked for this sender before the message went out.",
                "number_blocked",
            )
        code = self.refused(message.to_number, message.configuration_id, message.category)
        if code is None:
            return None
        category = FailureCategory.OPTED_OUT
        reason = "The recipient opted out (replied STOP) before the message went out."
        if code == "consent_missing":
            category = FailureCategory.CONSENT_MISSING
            reason = "The recipient has not opted in to commercial messages from this sender."
        return Failure(category, reason, code)

    # -- inbound keywords -------------------------------------------------------------------
    def on_received(
        self, config: Configuration, message: ReceivedMessage, provider_handled: str | None
    ) -> KeywordOutcome:
        """Apply what ``message`` says (idempotent: the same message again changes nothing
        new and answers nothing new). ``provider_handled`` is the provider's own reading
        (Twilio ``OptOutType``), when it already answered."""
        assert config.id is not None
        phone_e164 = message.from_number
        current = self.ledger.current(phone_e164, config.id)
        pending = pending_confirmations(current.values(), message.received_at)
        expired = [
            c for c in current.values() if c.status is ConsentStatus.PENDING and c not in pending
        ]
        found = keyword_rules.match(
            message.body,
            self.keywords(config.id),
            configuration_id=config.id,
            pending_opt_in=bool(pending),
        )
        if found is None:
            return KeywordOutcome(review_reason=keyword_rules.mentions_opt_out(message.body))
        method = ConsentMethod.PROVIDER if provider_handled else ConsentMethod.KEYWORD
        source = "provider opt-out handling" if provider_handled else "inbound SMS keyword"
        evidence = Evidence(
            at=message.received_at,
            source=source,
            message_id=message.provider_id,
            text=message.body[:_EVIDENCE_TEXT],
        )
        cause = _Cause(f"inbound:{message.provider_id}", phone_e164, config.id, method, evidence)
        action = found.action
        changes: list[ConsentChange] = []
        review = None
        if action is KeywordAction.OPT_OUT:
            changes = cause.everything(ConsentStatus.OPTED_OUT)
        elif action is KeywordAction.OPT_IN:
            changes = self._restart(cause, current)
            if expired and not changes and found.word == "YES":
                review = "YES came after the opt-in request expired: consent not changed"
        elif action is KeywordAction.CONFIRM:
            changes = [cause.change(c.purpose, ConsentStatus.OPTED_IN) for c in pending]
        new = self.ledger.apply(changes)
        if new:
            log.info("consent.changed", keyword=found.word, changes=len(new), method=method.value)
            self.on_change()
        if provider_handled is None:
            reply = self._reply(found, config, bool(changes), self.keywords(config.id))
            if reply:
                self._send(phone_e164, config, reply, f"keyword-reply:{message.provider_id}")
        return KeywordOutcome(keyword=found.word, review_reason=review)

    def _restart(
        self, cause: _Cause, current: Mapping[MessageCategory, ConsentChange]
    ) -> list[ConsentChange]:
        """START: opted in again where the person was before the opt-out."""
        history: list[ConsentChange] | None = None
        changes = []
        for purpose in PURPOSES:
            held = current.get(purpose)
            if held is None or held.status is not ConsentStatus.OPTED_OUT:
                continue
            if purpose is MessageCategory.COMMERCIAL:
                history = history if history is not None else self.ledger.history(cause.phone)
                if not any(
                    c.configuration_id == cause.configuration_id
                    and c.purpose is purpose
                    and c.status is ConsentStatus.OPTED_IN
                    and c.evidence.at <= held.evidence.at
                    for c in history
                ):
                    continue
            changes.append(cause.change(purpose, ConsentStatus.OPTED_IN))
        return changes

    @staticmethod
    def _reply(
        found: keyword_rules.KeywordMatch,
        config: Configuration,
        changed: bool,
        admin: Sequence[Keyword],
    ) -> str | None:
        name = config.name
        action = found.action
        if action is KeywordAction.CONFIRM:  # YES's own row is a START reply: not this one
            own = next((k for k in admin if k.id and k.id == found.keyword_id), None)
            text = own.reply_text if own and own.action is KeywordAction.CONFIRM else None
            return (text or _CONFIRMED_REPLY.format(name=name)) if changed else None
        if action is KeywordAction.OPT_OUT:
            return found.reply_text or _STOP_REPLY.format(name=name)
        if action is KeywordAction.OPT_IN:
            return (found.reply_text or _START_REPLY.format(name=name)) if changed else None
        if action is KeywordAction.HELP:
            return config.help_text or found.reply_text or _HELP_REPLY.format(name=name)
        return found.reply_text  # auto-reply

    def _send(self, to: str, config: Configuration, body: str, key: str) -> None:
        if self.sender is None:
            return
        try:
            self.sender.send_automatic(to, config, body, key=key)
        except RefusedError as exc:  # a blocked number: no reply
            log.info("consent.reply_refused", code=exc.code)
        except UnprocessableError as exc:
            if exc.code != "idempotency_conflict":  # answered already (another reading)
                raise

    # -- requests from other channels ---------------------------------------------------------
    def request_opt_in(
        self,
        phone_raw: str,
        configuration_id: str,
        purpose: MessageCategory,
        source: str,
        *,
        method: ConsentMethod = ConsentMethod.API,
        request_key: str | None = None,
        expires_in_minutes: int | None = None,
    ) -> dict[str, Any]:
        """Double opt-in: *pending* and a confirmation asking for YES (none when already
        opted in, or when an unexpired request is pending: it is not sent twice). The YES
        must come within ``expires_in_minutes`` (default: the configuration's expiry)."""
        config = self._configuration(configuration_id)
        assert config.id is not None
        to = _phone(phone_raw, config)
        now = self.clock()
        held = self.ledger.current(to, config.id).get(purpose)
        if held is not None and held.status is ConsentStatus.OPTED_IN:
            return self._state(to, config.id, purpose, confirmation_sent=False)
        if (
            held is not None
            and held.status is ConsentStatus.PENDING
            and (held.expires_at is None or held.expires_at > now)
        ):
            return self._state(to, config.id, purpose, confirmation_sent=False)
        evidence = Evidence(at=now, source=source[:200], text=f"opt-in request ({method.value})")
        cause = _Cause(f"opt-in:{request_key or now}", to, config.id, method, evidence)
        minutes = expires_in_minutes or config.opt_in_expiry_hours * 60
        expires = now + minutes * 60
        change = cause.change(purpose, ConsentStatus.PENDING, expires)
        if self.ledger.apply([change]):
            self.on_change()
        body = (config.opt_in_text or _OPT_IN_REQUEST).replace("{name}", config.name)
        body = body.replace("{purpose}", _PURPOSE_WORDS[purpose])
        self._send(to, config, body, f"opt-in-request:{change.id}")
        return self._state(to, config.id, purpose, confirmation_sent=True)

    def record_opt_out(
        self,
        phone_raw: str,
        configuration_id: str,
        purpose: MessageCategory | None,
        source: str,
        *,
        method: ConsentMethod = ConsentMethod.API,
        request_key: str | None = None,
    ) -> dict[str, Any]:
        """An opt-out given elsewhere (a call, a form): one purpose, or every one."""
        config = self._configuration(configuration_id)
        assert config.id is not None
        to = _phone(phone_raw, config)
        now = self.clock()
        evidence = Evidence(at=now, source=source[:200], text=f"opt-out ({method.value})")
        cause = _Cause(f"opt-out:{request_key or now}", to, config.id, method, evidence)
        if purpose is None:
            changes = cause.everything(ConsentStatus.OPTED_OUT)
        else:
            changes = [cause.change(purpose, ConsentStatus.OPTED_OUT)]
        if self.ledger.apply(changes):
            self.on_change()
        return self.status(to)

    def provider_refused(self, message: OutboundMessage, failure: Failure) -> None:
        """A send the provider refused because the recipient opted out (Twilio 21610):
        the number is opted out of every purpose of that sender, with that evidence."""
        if failure.category is not FailureCategory.OPTED_OUT or failure.code in (
            None,
            "consent_opted_out",
            "consent_missing",
            "number_blocked",
        ):
            return
        evidence = Evidence(
            at=self.clock(),
            source=f"provider refused the send (error {failure.code})",
            message_id=message.id,
            text=failure.reason[:_EVIDENCE_TEXT],
        )
        cause = _Cause(
            f"refused:{message.id}",
            message.to_number,
            message.configuration_id,
            ConsentMethod.PROVIDER,
            evidence,
        )
        changes = cause.everything(ConsentStatus.OPTED_OUT)
        if self.ledger.apply(changes):
            log.info("consent.provider_opt_out", message_id=message.id, code=failure.code)
            self.on_change()

    # -- reading ------------------------------------------------------------------------------
    def status(self, phone_raw: str) -> dict[str, Any]:
        """Where ``phone`` stands with every sender and purpose, with the whole history."""
        regions = tuple(
            dict.fromkeys(
                c.default_country for c in self.configurations.snapshot().values()
                if c.default_country
            )
        )  # fmt: skip
        to = _normalized(phone_raw, regions)
        now = self.clock()
        return {
            "phone": to,
            "consents": [_view(c, now) for c in self.ledger.everywhere(to)],
            "history": [
                {**c.to_dict(), "configuration_id": c.configuration_id}
                for c in self.ledger.history(to)
            ],
        }

    def _state(
        self, to: str, configuration_id: str, purpose: MessageCategory, *, confirmation_sent: bool
    ) -> dict[str, Any]:
        held = self.ledger.current(to, configuration_id).get(purpose)
        view = _view(held, self.clock()) if held else {}
        return {**view, "phone": to, "confirmation_sent": confirmation_sent}

    def _configuration(self, configuration_id: str) -> Configuration:
        for config in self.configurations.snapshot().values():
            if config.id == configuration_id and config.active:
                return config
        raise UnprocessableError(
            f"no active sender configuration {configuration_id}",
            code="unknown_configuration",
            details={"configuration_id": configuration_id[:64]},
        )


def _phone(raw: str, config: Configuration) -> str:
    return _normalized(raw, (config.default_country,) if config.default_country else ())


def _normalized(raw: str, regions: Sequence[str]) -> str:
    return phone.normalize(raw, regions)


@dataclass(frozen=True, slots=True)
class _Cause:
    """What causes changes to one (phone, sender): their ids derive from ``cause``."""

    cause: str
    phone: str
    configuration_id: str
    method: ConsentMethod
    evidence: Evidence

    def change(
        self, purpose: MessageCategory, status: ConsentStatus, expires_at: float | None = None
    ) -> ConsentChange:
        return ConsentChange(
            id=change_id(self.cause, self.phone, self.configuration_id, purpose),
            phone=self.phone,
            configuration_id=self.configuration_id,
            purpose=purpose,
            status=status,
            method=self.method,
            evidence=self.evidence,
            expires_at=expires_at,
        )

    def everything(self, status: ConsentStatus) -> list[ConsentChange]:
        return [self.change(purpose, status) for purpose in PURPOSES]


def _view(change: ConsentChange, now: float) -> dict[str, Any]:
    """The API's view of a current state (a pending one past its expiry says so)."""
    expired = (
        change.status is ConsentStatus.PENDING
        and change.expires_at is not None
        and change.expires_at < now
    )
    return {
        "configuration_id": change.configuration_id,
        "purpose": change.purpose.value,
        "status": change.status.value,
        "expired": expired,
        "method": change.method.value,
        "since": change.evidence.at,
        "expires_at": change.expires_at,
        "evidence": change.evidence.to_dict(),
    }
