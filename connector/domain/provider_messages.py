"""What crosses the SMS-provider port: send requests and results, inbound messages, status
updates and credential reports.

Pure dataclasses (no SDK), so services use them without knowing which provider is behind
the port. Provider-specific raw fields are kept in ``raw`` and the provider's own error
code and message are kept next to the neutral :class:`~connector.domain.status.FailureInfo`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from connector.domain.status import FailureInfo, MessageStatus


@dataclass(frozen=True, slots=True)
class SendRequest:
    """One outbound SMS/MMS. Exactly one of ``from_number`` and ``messaging_service_id``.

    ``message_id`` is the connector's own id; the provider puts it in the per-message status
    callback URL so callbacks match even when the create answer was lost. ``attempt`` counts
    tries of this message across retries and providers (Twilio's ``Attempt``).
    """

    message_id: str
    to: str
    body: str = ""
    from_number: str | None = None
    messaging_service_id: str | None = None
    media_urls: tuple[str, ...] = ()
    validity_period_s: int | None = None
    attempt: int = 1

    def __post_init__(self) -> None:
        if (self.from_number is None) == (self.messaging_service_id is None):
            raise ValueError("give exactly one of from_number and messaging_service_id")
        if not self.body and not self.media_urls:
            raise ValueError("a message needs a body or media")
        if self.validity_period_s is not None and not 1 <= self.validity_period_s <= 36000:
            raise ValueError("validity_period_s must be 1..36000 seconds")
        if len(self.media_urls) > 10:
            raise ValueError("at most 10 media items")


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider accepted a message: its id and initial status (no callback comes for it)."""

    provider_message_id: str
    status: MessageStatus
    raw_status: str
    num_segments: int | None = None
    num_media: int = 0
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class InboundMedia:
    """One media item of an inbound MMS (fetched later, with the provider's credentials)."""

    url: str
    content_type: str

    @property
    def stem(self) -> str:
        """A safe file-name stem: the media id, the URL's last path segment."""
        last = urlsplit(self.url).path.rstrip("/").rsplit("/", 1)[-1] or "media"
        return _UNSAFE_NAME.sub("_", last)[:80]


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a customer sent to one of our numbers, as the provider's webhook told it."""

    provider: str
    provider_message_id: str
    account_id: str
    from_number: str
    to_number: str
    body: str
    media: tuple[InboundMedia, ...] = ()
    num_segments: int | None = None
    messaging_service_id: str | None = None
    opt_out_type: str | None = None
    raw: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery-status callback. ``error`` explains ``error_code`` when there is one."""

    provider: str
    provider_message_id: str
    status: MessageStatus
    raw_status: str
    error_code: str | None = None
    error: FailureInfo | None = None
    carrier_done_date: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    raw: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CredentialReport:
    """The outcome of checking provider credentials (for ``config check`` and setup).

    ``ok`` is False when the credentials cannot send; ``problem`` then says why. ``warnings``
    are things that work but will surprise (a trial account only reaches verified numbers).
    """

    ok: bool
    account_id: str
    status: str | None = None
    account_type: str | None = None
    friendly_name: str | None = None
    problem: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IncomingNumber:
    """A phone number of the provider account, as the provider has it configured
    (``connector config check`` compares ``sms_url`` with our inbound webhook URL)."""

    phone_number: str
    id: str | None = None
    sms_url: str | None = None
