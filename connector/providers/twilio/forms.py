"""Twilio webhook forms parsed into the port's dataclasses: inbound messages, status callbacks.

Pure functions over the decoded form fields (sms-providers sections 1.2 and 2.2). Input is
bounded and checked against what Twilio sends (SID shapes, a status whitelist, at most ten
media items, Body at most 1600 characters); anything else is an
:class:`~connector.errors.InvalidInputError`. Unknown extra fields are kept in ``raw``:
Twilio adds parameters without notice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from connector.domain.provider_messages import InboundMedia, InboundMessage, StatusUpdate
from connector.domain.status import parse_status
from connector.errors import InvalidInputError
from connector.providers.twilio.endpoints import PROVIDER
from connector.providers.twilio.errors import failure_for

MAX_BODY_CHARS = 1600
MAX_MEDIA = 10
MAX_FIELD_CHARS = 4096
MAX_FIELDS = 200
_MESSAGE_SID = re.compile(r"^(SM|MM|MG|SS)[0-9a-fA-F]{32}$")
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_ASCII_DIGITS = re.compile(r"[0-9]{1,9}")  # str.isdigit() also accepts "²" and other scripts
_OPT_OUT_TYPES = frozenset({"STOP", "START", "HELP"})

Form = Mapping[str, str] | Sequence[tuple[str, str]]


def flatten(form: Form) -> dict[str, str]:
    """One value per field (the first), with the size limits every webhook obeys."""
    pairs = form.items() if isinstance(form, Mapping) else form
    fields: dict[str, str] = {}
    for name, value in pairs:
        if len(value) > MAX_FIELD_CHARS or len(name) > 100:
            raise InvalidInputError(f"webhook field {name[:100]!r} is too long")
        fields.setdefault(name, value)
        if len(fields) > MAX_FIELDS:
            raise InvalidInputError("webhook has too many fields")
    return fields


def _required(fields: Mapping[str, str], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = fields.get(name, "").strip()
    if not value:
        raise InvalidInputError(f"webhook field {name} is missing")
    if pattern is not None and not pattern.match(value):
        raise InvalidInputError(f"webhook field {name} is not a Twilio id: {value[:40]!r}")
    return value


def _optional_sid(fields: Mapping[str, str], name: str, pattern: re.Pattern[str]) -> str | None:
    value = fields.get(name, "").strip()
    if not value:
        return None
    if not pattern.match(value):
        raise InvalidInputError(f"webhook field {name} is not a Twilio id: {value[:40]!r}")
    return value


def _count(fields: Mapping[str, str], name: str, upper: int) -> int | None:
    raw = fields.get(name)
    if raw is None or raw == "":
        return None
    if not _ASCII_DIGITS.fullmatch(raw) or int(raw) > upper:
        raise InvalidInputError(f"webhook field {name} must be a number 0..{upper}")
    return int(raw)


def _media(fields: Mapping[str, str]) -> tuple[InboundMedia, ...]:
    count = _count(fields, "NumMedia", MAX_MEDIA) or 0
    items = []
    for index in range(count):
        url = _required(fields, f"MediaUrl{index}")
        if not url.startswith("https://") and not url.startswith("http://"):
            raise InvalidInputError(f"MediaUrl{index} is not an http(s) URL")
        content_type = fields.get(f"MediaContentType{index}", "application/octet-stream")
        items.append(InboundMedia(url=url, content_type=content_type))
    return tuple(items)


def parse_inbound(form: Form) -> InboundMessage:
    """An inbound SMS/MMS webhook (``POST /webhooks/twilio/messages``)."""
    fields = flatten(form)
    body = fields.get("Body", "")
    if len(body) > MAX_BODY_CHARS:
        raise InvalidInputError(f"Body is longer than {MAX_BODY_CHARS} characters")
    opt_out = fields.get("OptOutType", "").strip().upper() or None
    if opt_out is not None and opt_out not in _OPT_OUT_TYPES:
        raise InvalidInputError(f"unknown OptOutType {opt_out[:20]!r}")
    return InboundMessage(
        provider=PROVIDER,
        provider_message_id=_required(fields, "MessageSid", _MESSAGE_SID),
        account_id=_required(fields, "AccountSid", _ACCOUNT_SID),
        from_number=_required(fields, "From"),
        to_number=_required(fields, "To"),
        body=body,
        media=_media(fields),
        num_segments=_count(fields, "NumSegments", 100),
        messaging_service_id=_optional_sid(fields, "MessagingServiceSid", _SERVICE_SID),
        opt_out_type=opt_out,
        raw=fields,
    )


def parse_status_callback(form: Form) -> StatusUpdate:
    """A delivery-status callback (``POST /webhooks/twilio/status/{message_id}``)."""
    fields = flatten(form)
    raw_status = fields.get("MessageStatus") or fields.get("SmsStatus") or ""
    if not raw_status:
        raise InvalidInputError("webhook field MessageStatus is missing")
    try:
        status = parse_status(raw_status)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc
    error_code = fields.get("ErrorCode", "").strip() or None
    if error_code is not None and not _ASCII_DIGITS.fullmatch(error_code):
        raise InvalidInputError(f"ErrorCode is not a number: {error_code[:20]!r}")
    error = failure_for(error_code) if error_code not in (None, "0") else None
    return StatusUpdate(
        provider=PROVIDER,
        provider_message_id=_required(fields, "MessageSid", _MESSAGE_SID),
        status=status,
        raw_status=raw_status,
        error_code=error_code,
        error=error,
        carrier_done_date=fields.get("RawDlrDoneDate") or None,
        from_number=fields.get("From") or None,
        to_number=fields.get("To") or None,
        raw=fields,
    )


def build_inbound_form(
    *,
    message_sid: str,
    account_sid: str,
    from_number: str,
    to_number: str,
    body: str,
    media: Sequence[tuple[str, str]] = (),
    messaging_service_sid: str | None = None,
    num_segments: int = 1,
) -> list[tuple[str, str]]:
    """The form Twilio posts for an inbound message (simulator, ``connector simulate``).

    ``media`` is (url, content type) pairs. Field names and order follow a real webhook.
    """
    fields = [
        ("ToCountry", "US"),
        ("SmsMessageSid", message_sid),
        ("NumMedia", str(len(media))),
        ("SmsSid", message_sid),
        ("SmsStatus", "received"),
        ("Body", body),
        ("FromCountry", "US"),
        ("To", to_number),
        ("NumSegments", str(num_segments)),
        ("MessageSid", message_sid),
        ("AccountSid", account_sid),
        ("From", from_number),
        ("ApiVersion", "2010-04-01"),
    ]
    if messaging_service_sid:
        fields.append(("MessagingServiceSid", messaging_service_sid))
    for index, (url, content_type) in enumerate(media):
        fields += [(f"MediaContentType{index}", content_type), (f"MediaUrl{index}", url)]
    return fields


def build_status_form(
    *,
    message_sid: str,
    account_sid: str,
    from_number: str,
    to_number: str,
    status: str,
    error_code: int | None = None,
    messaging_service_sid: str | None = None,
    carrier_done_date: str | None = None,
) -> list[tuple[str, str]]:
    """The form Twilio posts to a message's StatusCallback (simulator, test helpers)."""
    fields = [
        ("AccountSid", account_sid),
        ("ApiVersion", "2010-04-01"),
        ("From", from_number),
        ("MessageSid", message_sid),
        ("MessageStatus", status),
        ("SmsSid", message_sid),
        ("SmsStatus", status),
        ("To", to_number),
    ]
    if messaging_service_sid:
        fields.append(("MessagingServiceSid", messaging_service_sid))
    if error_code is not None:
        fields.append(("ErrorCode", str(error_code)))
    if carrier_done_date:
        fields.append(("RawDlrDoneDate", carrier_done_date))
    return fields
