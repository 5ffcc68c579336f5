"""An in-memory :class:`~connector.ports.SmsProvider` (shipped fake for tests and demos).

Records every message handed to it, answers Twilio's magic test numbers with the same
refusals (and the same connector exceptions) the real provider raises, can be told to
refuse the next sends with any Twilio code, parses Twilio webhook forms and verifies
Twilio signatures with its auth token. Services are tested by asserting on ``sent``.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from connector.domain.provider_messages import (
    CredentialReport,
    InboundMessage,
    SendRequest,
    SendResult,
    StatusUpdate,
)
from connector.domain.status import MessageStatus
from connector.emulators.twilio.numbers import (
    SYNC_FROM_ERRORS,
    SYNC_TO_ERRORS,
    new_sid,
    segments,
)
from connector.ports import SmsProvider, WebhookParams
from connector.providers.twilio import forms as twilio_forms
from connector.providers.twilio import signature
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from connector.providers.twilio.errors import error_for


@dataclass
class FakeSmsProvider:
    """What a provider would have sent, kept in ``sent`` (request, result) in order.

    ``refuse_next`` holds Twilio error codes: each send pops one and raises it (20429 as a
    429, anything else as a 400) before the magic numbers are looked at.
    """

    name: str = "fake"
    account_sid: str = LOCAL_ACCOUNT_SID
    auth_token: str = LOCAL_AUTH_TOKEN
    account_type: str = "Full"
    sent: list[tuple[SendRequest, SendResult]] = field(default_factory=list)
    refuse_next: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, request: SendRequest) -> SendResult:
        """Record the message, or raise the refusal Twilio would give."""
        with self._lock:
            code = self.refuse_next.pop(0) if self.refuse_next else None
        if code is None:
            code = SYNC_FROM_ERRORS.get(request.from_number or "") or SYNC_TO_ERRORS.get(request.to)
        if code is not None:
            raise error_for(code, f"Twilio error {code}", 429 if code == 20429 else 400)
        result = SendResult(
            provider_message_id=new_sid("MM" if request.media_urls else "SM"),
            status=MessageStatus.ACCEPTED if request.messaging_service_id else MessageStatus.QUEUED,
            raw_status="accepted" if request.messaging_service_id else "queued",
            num_segments=segments(request.body),
            num_media=len(request.media_urls),
        )
        with self._lock:
            self.sent.append((request, result))
        return result

    def find_sent(
        self, request: SendRequest, since: float, exclude: Collection[str]
    ) -> SendResult | None:
        """The first recorded send with the request's sender, recipient and body whose id is
        not excluded (the fake keeps no times: ``since`` is ignored)."""
        with self._lock:
            for sent, result in self.sent:
                same = (sent.to, sent.from_number, sent.body) == (
                    request.to,
                    request.from_number,
                    request.body,
                )
                if same and result.provider_message_id not in exclude:
                    return result
        return None

    def parse_inbound(self, form: WebhookParams) -> InboundMessage:
        """Twilio's inbound form, parsed like the real provider parses it."""
        return twilio_forms.parse_inbound(form)

    def parse_status(self, form: WebhookParams) -> StatusUpdate:
        """Twilio's status callback, parsed like the real provider parses it."""
        return twilio_forms.parse_status_callback(form)

    def verify_signature(
        self, url: str, params_or_body: WebhookParams | str | bytes, headers: Mapping[str, str]
    ) -> None:
        """Twilio's signature check with this fake's auth token."""
        signature.verify(url, params_or_body, signature.signature_from(headers), [self.auth_token])

    def validate_credentials(self) -> CredentialReport:
        """Always valid; a trial account type is reported with its warning."""
        warnings = ("trial account",) if self.account_type.lower() == "trial" else ()
        return CredentialReport(
            ok=True,
            account_id=self.account_sid,
            status="active",
            account_type=self.account_type,
            friendly_name="Fake SMS provider",
            warnings=warnings,
        )


def _conforms(fake: FakeSmsProvider) -> SmsProvider:
    """mypy checks the fake against the port here."""
    return fake
