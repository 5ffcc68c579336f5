"""The state and behaviour behind the Twilio-compatible simulator (no HTTP routing here).

It keeps the messages "sent", decides each message's fate from Twilio's magic test numbers
(sms-providers section 4.5), and delivers signed status callbacks from a background thread,
optionally out of order and duplicated, exactly as Twilio signs them. It also injects
inbound messages: a Twilio-shaped form, signed, posted to the configured webhook URL.
Posting and the delivery thread are in :mod:`connector.emulators.twilio.delivery`.

The fate of each number (magic test numbers, asynchronous failures) is in
:mod:`connector.emulators.twilio.numbers`. As with Twilio no callback is sent for the
initial ``queued`` status unless ``initial_callback`` is set. With ``sender_rate_limit_mps``
set, a ``From`` number sending faster than that is refused with 429 / 20429 and counted per
sender in :meth:`SimulatorEngine.snapshot` (``throttled``; the token bucket is in
:mod:`connector.emulators.twilio.throttle`).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from connector.domain.status import parse_status, supersedes
from connector.emulators.twilio.delivery import Callback, SignedPoster
from connector.emulators.twilio.errors import SimulatorRefusalError
from connector.emulators.twilio.numbers import (
    API_VERSION,
    ERROR_TEXT,
    SYNC_FROM_ERRORS,
    SYNC_TO_ERRORS,
    async_outcome,
    new_sid,
    segments,
)
from connector.emulators.twilio.throttle import SenderThrottle
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from connector.providers.twilio.forms import build_status_form


@dataclass
class SimulatorOptions:
    """How the simulator behaves; most can be changed while it runs (``/_simulator/options``)."""

    account_sid: str = LOCAL_ACCOUNT_SID
    auth_token: str = LOCAL_AUTH_TOKEN
    account_type: str = "Full"
    account_status: str = "active"
    inbound_url: str | None = None
    deliver: bool = True
    out_of_order: bool = False
    duplicate: bool = False
    initial_callback: bool = False
    throttle_next: int = 0
    fail_next: int = 0
    callback_timeout_s: float = 10.0
    sender_rate_limit_mps: float | None = None
    sender_rate_limits: dict[str, float] = field(default_factory=dict)
    """Per ``From`` number, in place of ``sender_rate_limit_mps`` for that number."""
    numbers: dict[str, str | None] = field(default_factory=dict)
    """The account's phone numbers (E.164) and each one's inbound webhook URL (``SmsUrl``);
    None means ``inbound_url`` (listed by ``GET IncomingPhoneNumbers.json``)."""


def _now() -> str:
    return format_datetime(datetime.now(UTC))


def _callback_form(message: dict[str, Any], status: str, code: int | None) -> list[tuple[str, str]]:
    return build_status_form(
        message_sid=message["sid"],
        account_sid=message["account_sid"],
        from_number=message["from"] or "+15005550006",
        to_number=message["to"],
        status=status,
        error_code=code,
        messaging_service_sid=message["messaging_service_sid"],
        carrier_done_date=(
            datetime.now(UTC).strftime("%y%m%d%H%M")
            if status in ("delivered", "undelivered")
            else None
        ),
    )


@dataclass
class SimulatorEngine:
    """Messages, callbacks and inbound injections of one simulator instance."""

    options: SimulatorOptions = field(default_factory=SimulatorOptions)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.throttle = SenderThrottle(clock=self.clock)
        self._messages: dict[str, dict[str, Any]] = {}
        self._callbacks: dict[str, str] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.inbound: list[dict[str, Any]] = []
        self._media: dict[str, tuple[str, bytes]] = {}
        self.poster = SignedPoster(
            token=lambda: self.options.auth_token,
            timeout=lambda: self.options.callback_timeout_s,
            on_posted=self._posted,
        )

    # -- REST API -------------------------------------------------------------------------
    def check_auth(self, username: str | None, password: str | None, account_sid: str) -> None:
        """Basic auth as Twilio checks it: the account's SID and auth token."""
        good = secrets.compare_digest((username or "").encode(), self.options.account_sid.encode())
        good &= secrets.compare_digest((password or "").encode(), self.options.auth_token.encode())
        if not good or account_sid != self.options.account_sid:
            raise SimulatorRefusalError(401, 20003, "Authenticate")

    def create_message(self, form: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """``POST Messages.json``: validate like Twilio, store, schedule the callbacks."""
        fields = dict(form)
        media = [value for name, value in form if name == "MediaUrl"]
        to, from_ = fields.get("To", ""), fields.get("From", "")
        service = fields.get("MessagingServiceSid")
        body = fields.get("Body", "")
        self._refuse_if_asked()
        self._refuse_if_too_fast(from_)
        self._validate(to, from_, service, body, media)
        sid = new_sid("MM" if media else "SM")
        now = _now()
        account = self.options.account_sid
        uri = f"/{API_VERSION}/Accounts/{account}/Messages/{sid}"
        message = {
            "account_sid": account,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_ or None,
            "messaging_service_sid": service,
            "num_media": str(len(media)),
            "num_segments": "0" if service and not from_ else str(segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": to,
            "uri": f"{uri}.json",
        }  # fmt: skip
        answer = dict(message)
        with self._lock:
            self._messages[sid] = message
            if fields.get("StatusCallback"):
                self._callbacks[sid] = fields["StatusCallback"]
        self._schedule(sid, fields.get("StatusCallback"))
        return answer

    def _refuse_if_asked(self) -> None:
        with self._lock:
            if self.options.throttle_next > 0:
                self.options.throttle_next -= 1
                raise SimulatorRefusalError(429, 20429, "Too Many Requests")
            if self.options.fail_next > 0:
                self.options.fail_next -= 1
                raise SimulatorRefusalError(500, 20500, "Internal Server Error")

    def _refuse_if_too_fast(self, from_: str) -> None:
        limit = self.options.sender_rate_limits.get(from_, self.options.sender_rate_limit_mps)
        if limit is not None and from_ and not self.throttle.admit(from_, limit):
            raise SimulatorRefusalError(429, 20429, "Too Many Requests")

    def _validate(
        self, to: str, from_: str, service: str | None, body: str, media: list[str]
    ) -> None:
        if not to:
            raise SimulatorRefusalError(400, 21604, "A 'To' phone number is required.")
        if not from_ and not service:
            raise SimulatorRefusalError(400, 21603, "A 'From' phone number is required.")
        if not body and not media:
            raise SimulatorRefusalError(400, 21602, "Message body is required.")
        if len(body) > 1600:
            raise SimulatorRefusalError(400, 21617, ERROR_TEXT[21617])
        if to == from_:
            raise SimulatorRefusalError(400, 21266, "'To' and 'From' number cannot be the same")
        code = SYNC_FROM_ERRORS.get(from_) or SYNC_TO_ERRORS.get(to)
        if code is not None:
            raise SimulatorRefusalError(400, code, ERROR_TEXT[code].format(to=to, from_=from_))

    def fetch_message(self, sid: str) -> dict[str, Any]:
        """``GET Messages/{sid}.json``."""
        with self._lock:
            message = self._messages.get(sid)
            if message is None:
                raise SimulatorRefusalError(
                    404, 20404, f"The requested resource {sid} was not found"
                )
            return dict(message)

    def list_messages(
        self, to: str | None = None, from_: str | None = None
    ) -> list[dict[str, Any]]:
        """Messages, newest first, optionally filtered like Twilio's ``To``/``From``."""
        with self._lock:
            found = [
                dict(m)
                for m in reversed(self._messages.values())
                if (to is None or m["to"] == to) and (from_ is None or m["from"] == from_)
            ]
        return found

    def account(self) -> dict[str, Any]:
        """``GET Accounts/{sid}.json``."""
        sid = self.options.account_sid
        return {
            "sid": sid,
            "owner_account_sid": sid,
            "friendly_name": "Connector simulator",
            "status": self.options.account_status,
            "type": self.options.account_type,
            "date_created": _now(),
            "date_updated": _now(),
            "uri": f"/{API_VERSION}/Accounts/{sid}.json",
        }

    def incoming_numbers(self, phone_number: str | None = None) -> list[dict[str, Any]]:
        """``GET IncomingPhoneNumbers.json``: the configured numbers, filtered as Twilio's
        ``PhoneNumber`` parameter does (a number or a part of one)."""
        sid = self.options.account_sid
        wanted = (phone_number or "").strip()
        found = []
        for number, sms_url in sorted(self.options.numbers.items()):
            if wanted and wanted not in number:
                continue
            number_sid = "PN" + hashlib.sha256(number.encode()).hexdigest()[:32]
            found.append(
                {
                    "sid": number_sid,
                    "account_sid": sid,
                    "phone_number": number,
                    "friendly_name": number,
                    "sms_url": sms_url if sms_url is not None else self.options.inbound_url,
                    "sms_method": "POST",
                    "capabilities": {"sms": True, "mms": True, "voice": False, "fax": False},
                    "status": "in-use",
                    "date_created": _now(),
                    "date_updated": _now(),
                    "uri": f"/{API_VERSION}/Accounts/{sid}/IncomingPhoneNumbers/{number_sid}.json",
                }
            )
        return found

    # -- callbacks ------------------------------------------------------------------------
    def _plan(self, sid: str) -> list[tuple[str, int | None]]:
        message = self._messages[sid]
        final, code = async_outcome(message["to"])
        steps: list[tuple[str, int | None]] = []
        if self.options.initial_callback:
            steps.append((message["status"], None))
        if final == "failed":
            steps.append(("failed", code))
        else:
            steps += [("sent", None), (final, code)]
        return steps

    def _schedule(self, sid: str, url: str | None) -> None:
        with self._lock:
            steps = self._plan(sid)
            message = self._messages[sid]
            message["date_sent"] = message["date_created"]
            if not url or not self.options.deliver:
                # No callback will tell it: Twilio still knows the outcome (fetch shows it).
                self._set_status(sid, *steps[-1])
                return
            if self.options.out_of_order:
                steps.reverse()
            if self.options.duplicate:
                steps = [step for step in steps for _ in (0, 1)]
            jobs = [
                Callback(url, _callback_form(message, status, code), sid, status, code)
                for status, code in steps
            ]
        self.poster.enqueue(jobs)

    def _set_status(self, sid: str, status: str, code: int | None) -> None:
        """Move the stored message forward (never back), as callbacks go out."""
        message = self._messages[sid]
        if supersedes(parse_status(message["status"]), parse_status(status)):
            message.update(
                status=status,
                error_code=code,
                error_message=None if code is None else ERROR_TEXT.get(code, f"Error {code}"),
                date_updated=_now(),
            )

    def _posted(self, job: Callback, record: dict[str, Any]) -> None:
        with self._lock:
            self._set_status(job.message_sid, job.status, job.error_code)
            self.deliveries.append(record)

    def reset(self) -> None:
        """Forget messages, deliveries, inbound injections and throttling (options stay)."""
        self.wait_idle(10.0)
        with self._lock:
            self._messages.clear()
            self._callbacks.clear()
            self.deliveries.clear()
            self.inbound.clear()
            self._media.clear()
        self.throttle.reset()

    def host_media(self, path: str, content_type: str, data: bytes) -> None:
        """Serve ``data`` at ``path`` (inbound MMS media, behind Basic auth)."""
        with self._lock:
            self._media[path] = (content_type, data)

    def hosted_media(self, path: str) -> tuple[str, bytes]:
        """Content type and bytes of hosted media; 404 (20404) when unknown."""
        with self._lock:
            found = self._media.get(path)
        if found is None:
            raise SimulatorRefusalError(404, 20404, f"The requested resource {path} was not found")
        return found

    def record_inbound(self, record: dict[str, Any]) -> None:
        """Remember an injected inbound message (read back through :meth:`snapshot`)."""
        with self._lock:
            self.inbound.append(record)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every scheduled callback was posted; False on timeout."""
        return self.poster.wait_idle(timeout)

    def close(self) -> None:
        """Stop the delivery thread (callbacks still queued are dropped)."""
        self.poster.close()

    def snapshot(self) -> dict[str, Any]:
        """What tests read: messages sent, callbacks posted, inbound injected, refusals for
        sending too fast per ``From`` number (``throttled``), options."""
        with self._lock:
            return {
                "messages": [dict(m) for m in self._messages.values()],
                "callbacks": {sid: url for sid, url in self._callbacks.items()},
                "deliveries": list(self.deliveries),
                "inbound": list(self.inbound),
                "throttled": self.throttle.counts(),
                "options": {k: v for k, v in asdict(self.options).items() if k != "auth_token"},
            }
