"""How the simulator decides a message's fate: Twilio's magic test numbers and a few of ours.

* Synchronous refusals (HTTP 400 with Twilio's error body), Twilio's own magic numbers
  (sms-providers section 4.5): From ``+15005550001`` 21212, ``+15005550007`` 21606,
  ``+15005550008`` 21611; To ``+15005550001`` 21211, ``+15005550002`` 21612,
  ``+15005550003`` 21408, ``+15005550004`` 21610, ``+15005550009`` 21614.
* Asynchronous failures (the simulator's own; Twilio has no magic numbers for them): To
  ``+1500555`` followed by ``3NNN`` ends with error ``30NNN``: ``+15005553003`` is
  undelivered with 30003, ``+15005553034`` failed with 30034, ``+15005553450`` fails 30450.
  30001, 30002, 30034 and 30450 end ``failed`` (Twilio never sent it); the rest
  ``undelivered`` (the carrier reported it).
* Any other number is delivered.

Also the segment count Twilio reports (GSM-7 160/153 per segment, otherwise UCS-2 70/67).
"""

from __future__ import annotations

import secrets

API_VERSION = "2010-04-01"
SYNC_FROM_ERRORS = {"+15005550001": 21212, "+15005550007": 21606, "+15005550008": 21611}
SYNC_TO_ERRORS = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
ASYNC_PREFIX = "+15005553"
FAILED_CODES = frozenset({30001, 30002, 30034, 30450})
ERROR_TEXT = {
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric "
    "sender ID.",
    21606: "The 'From' phone number provided ({from_}) is not a valid message-capable Twilio "
    "phone number for this destination.",
    21611: "This 'From' number has exceeded the maximum number of queued messages.",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone "
    "number: {from_} via SMS.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the "
    "'To' number: {to}.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


def new_sid(prefix: str) -> str:
    """A Twilio-shaped id: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def segments(body: str) -> int:
    """Segments Twilio bills for ``body`` (GSM-7 160/153, otherwise UCS-2 70/67)."""
    if not body:
        return 1
    if all(ch in _GSM7 for ch in body):
        units = len(body) + sum(1 for ch in body if ch in "^{}\\[~]|€")
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else -(-units // multi)


def async_outcome(to: str) -> tuple[str, int | None]:
    """Final status and error code the carrier reports for ``to``."""
    tail = to[len(ASYNC_PREFIX) - 1 :] if to.startswith(ASYNC_PREFIX) else ""
    if len(tail) == 4 and tail.isdigit():
        code = 30000 + int(tail[1:])
        return ("failed" if code in FAILED_CODES else "undelivered"), code
    return "delivered", None
