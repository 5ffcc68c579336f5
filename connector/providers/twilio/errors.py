"""Twilio error codes explained: failure category, transient or not, reason and what to do.

The table follows sms-providers section 5. Codes come from two places: the REST API's
error body when a send is refused (``TwilioRestException.code``), and ``ErrorCode`` on
``failed``/``undelivered`` status callbacks. A code not in the table falls back to its HTTP
status (429 throttled, 5xx provider unavailable, 401 configuration) or ``unknown``.

:func:`error_for` builds the one connector exception for a refusal; whether it is transient
is decided here and nowhere else. Which errors are retried *at once* by the send call is a
narrower question (only ones Twilio never processed: 429/20429, 5xx, network), answered by
:func:`retry_now`.
"""

from __future__ import annotations

from connector.domain.status import FailureCategory, FailureInfo
from connector.errors import ProviderError, ProviderThrottledError, RecipientOptedOutError

C = FailureCategory


def _info(category: FailureCategory, transient: bool, reason: str, action: str) -> FailureInfo:
    return FailureInfo(category=category, transient=transient, reason=reason, action=action)


TWILIO_ERRORS: dict[int, FailureInfo] = {
    20003: _info(C.CONFIGURATION, False, "SMS provider credentials are invalid.",
                 "Check the account SID and auth token of this sender configuration."),
    20429: _info(C.THROTTLED, True, "Too many requests to the SMS provider at once.",
                 "Nothing to do: the connector retries automatically."),
    21211: _info(C.INVALID_RECIPIENT, False, "The number is not a valid phone number.",
                 "Store it in E.164, e.g. +14155550123."),
    21212: _info(C.CONFIGURATION, False, "The sending number is not valid.",
                 "Use a phone number or messaging service that belongs to the account."),
    21265: _info(C.INVALID_RECIPIENT, False, "The recipient number is a short code.",
                 "Send to a regular mobile number instead."),
    21266: _info(C.INVALID_PARAMETERS, False, "Sender and recipient are the same number.",
                 "Send to a different number than the sender."),
    21408: _info(C.CONFIGURATION, False, "Sending to this country is not enabled.",
                 "Enable the country in the provider's geographic permissions."),
    21603: _info(C.INVALID_PARAMETERS, False, "No sending number was given.",
                 "Set a sender number or messaging service on the configuration."),
    21604: _info(C.INVALID_PARAMETERS, False, "No recipient number was given.",
                 "Give the recipient's mobile number."),
    21606: _info(C.CONFIGURATION, False,
                 "The sending number cannot send SMS to this destination.",
                 "Use an SMS-capable number owned by the account for this country."),
    21608: _info(C.CONFIGURATION, False,
                 "Trial account: the recipient number is not verified.",
                 "Verify the number in the provider console or upgrade the account."),
    21610: _info(C.OPTED_OUT, False, "Recipient has opted out (replied STOP).",
                 "Do not message this number until they reply START."),
    21611: _info(C.THROTTLED, True, "The sender's message queue is full.",
                 "Send more slowly or add senders; the message is retried later."),
    21612: _info(C.INVALID_RECIPIENT, False, "The message cannot be routed to this number.",
                 "Check the number, or send from a sender that can reach it."),
    21614: _info(C.INVALID_RECIPIENT, False, "Number can't receive SMS (landline?).",
                 "Use a mobile number for this contact."),
    21617: _info(C.INVALID_PARAMETERS, False, "Message is too long.",
                 "Shorten the message to at most 1600 characters."),
    21635: _info(C.INVALID_RECIPIENT, False, "The recipient number is a landline.",
                 "Use a mobile number for this contact."),
    21658: _info(C.INVALID_PARAMETERS, False, "A message field exceeds its length limit.",
                 "Shorten the body or template variables."),
    30001: _info(C.THROTTLED, True, "The provider's queue overflowed.",
                 "Send more slowly; the message is retried later."),
    30002: _info(C.CONFIGURATION, False, "The SMS provider account is suspended.",
                 "Contact the provider to reactivate the account."),
    30003: _info(C.UNREACHABLE, True, "Phone unreachable (off, no signal or roaming).",
                 "Try again later."),
    30004: _info(C.CARRIER_FILTERED, False, "The message was blocked by the carrier or recipient.",
                 "Ask the recipient whether they block messages; do not resend as is."),
    30005: _info(C.INVALID_RECIPIENT, False, "Unknown or inactive destination number.",
                 "Check the number with the contact."),
    30006: _info(C.INVALID_RECIPIENT, False, "Landline or unreachable carrier.",
                 "Use a mobile number for this contact."),
    30007: _info(C.CARRIER_FILTERED, False, "Carrier filtered the message content.",
                 "Rewrite the message (links, spam-like wording) and check registration."),
    30008: _info(C.UNKNOWN, True, "Unknown delivery error.", "Try again once."),
    30034: _info(C.CONFIGURATION, False, "Sender number is not A2P-registered.",
                 "Register the number for US A2P 10DLC messaging."),
    30450: _info(C.FRAUD_BLOCKED, False, "SMS pumping protection blocked the message.",
                 "Review the destination; contact the provider if it is legitimate."),
    11200: _info(C.CONFIGURATION, False, "The provider could not fetch the connector webhook.",
                 "Check that the connector's public URL is reachable from the internet."),
    11205: _info(C.CONFIGURATION, False, "The provider could not connect to the connector.",
                 "Check that the connector's public URL is reachable from the internet."),
}  # fmt: skip

_THROTTLED = _info(C.THROTTLED, True, "Too many requests to the SMS provider.",
                   "Nothing to do: the connector retries automatically.")  # fmt: skip
_UNAVAILABLE = _info(C.PROVIDER_UNAVAILABLE, True, "The SMS provider is unavailable.",
                     "Nothing to do: the connector retries automatically.")  # fmt: skip
_UNAUTHORIZED = TWILIO_ERRORS[20003]
_UNKNOWN = _info(C.UNKNOWN, False, "The SMS provider refused the message.",
                 "See the provider's error code and message.")  # fmt: skip


def failure_for(code: int | str | None, http_status: int | None = None) -> FailureInfo:
    """The explanation of a Twilio error code (with the HTTP status as a fallback)."""
    try:
        known = TWILIO_ERRORS.get(int(code)) if code is not None else None
    except ValueError:
        known = None
    if known is not None:
        return known
    if http_status == 429:
        return _THROTTLED
    if http_status is not None and http_status >= 500:
        return _UNAVAILABLE
    if http_status == 401:
        return _UNAUTHORIZED
    return _UNKNOWN


def error_for(
    code: int | None,
    provider_message: str | None,
    http_status: int | None,
    *,
    retry_after: float | None = None,
) -> ProviderError:
    """The connector exception for a refusal: opted out, throttled, or a provider error."""
    info = failure_for(code, http_status)
    cls: type[ProviderError] = ProviderError
    if info.category is FailureCategory.OPTED_OUT:
        cls = RecipientOptedOutError
    elif info.category is FailureCategory.THROTTLED and (http_status == 429 or code == 20429):
        cls = ProviderThrottledError
    return cls(
        info.reason,
        category=info.category.value,
        provider_code=code,
        provider_message=provider_message,
        http_status=http_status,
        retry_after=retry_after,
        transient=info.transient,
        details={"action": info.action},
    )


def unreachable_error(exc: BaseException) -> ProviderError:
    """A network failure (connection refused, timeout): transient, retried at once."""
    info = _UNAVAILABLE
    return ProviderError(
        info.reason,
        category=info.category.value,
        provider_message=f"{type(exc).__name__}: {exc}",
        transient=True,
        details={"action": info.action, "network": True},
    )


def retry_now(exc: BaseException) -> bool:
    """Whether the send call may retry ``exc`` immediately: Twilio never processed it.

    429/20429 requests are "never processed and always safe to retry"; 5xx and network
    failures are retried too. Everything else (21211, 21610, 21611, ...) is answered at once.
    """
    if not isinstance(exc, ProviderError):
        return False
    if exc.details.get("network"):
        return True
    status = exc.http_status or 0
    return status == 429 or exc.provider_code == 20429 or status >= 500
