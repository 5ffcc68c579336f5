"""Build webhook requests signed exactly as Twilio signs them, for the tests of every area.

``signed_form(url, fields, token)`` gives the body and headers of a form POST Twilio would
send to ``url``; ``signed_json(url, body, token)`` the URL (with ``bodySHA256``), body and
headers of a JSON webhook. ``inbound_fields(...)`` / ``status_fields(...)`` give realistic
Twilio fields for an inbound message and a status callback. Post them with any HTTP client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from connector.emulators.twilio.numbers import new_sid
from connector.providers.twilio.endpoints import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from connector.providers.twilio.forms import build_inbound_form, build_status_form
from connector.providers.twilio.signature import SIGNATURE_HEADER, compute_signature, with_body_hash

Fields = Mapping[str, str] | Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A webhook request ready to POST: ``requests.post(r.url, data=r.body, headers=r.headers)``."""

    url: str
    body: bytes
    headers: dict[str, str]


def _pairs(fields: Fields) -> list[tuple[str, str]]:
    return list(fields.items()) if isinstance(fields, Mapping) else list(fields)


def signed_form(url: str, fields: Fields, auth_token: str = LOCAL_AUTH_TOKEN) -> SignedRequest:
    """A form POST to ``url`` with Twilio's signature over ``url`` and every field."""
    pairs = _pairs(fields)
    return SignedRequest(
        url=url,
        body=urlencode(pairs).encode("ascii"),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            SIGNATURE_HEADER: compute_signature(url, pairs, auth_token),
        },
    )


def signed_json(url: str, body: str | bytes, auth_token: str = LOCAL_AUTH_TOKEN) -> SignedRequest:
    """A JSON webhook: ``bodySHA256`` added to ``url``, the URL alone signed."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    full_url = with_body_hash(url, raw)
    return SignedRequest(
        url=full_url,
        body=raw,
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: compute_signature(full_url, None, auth_token),
        },
    )


def inbound_fields(
    from_number: str,
    to_number: str,
    body: str,
    *,
    account_sid: str = LOCAL_ACCOUNT_SID,
    media: Sequence[tuple[str, str]] = (),
    message_sid: str | None = None,
) -> list[tuple[str, str]]:
    """The fields of an inbound-message webhook, as Twilio sends them."""
    return build_inbound_form(
        message_sid=message_sid or new_sid("MM" if media else "SM"),
        account_sid=account_sid,
        from_number=from_number,
        to_number=to_number,
        body=body,
        media=media,
    )


def status_fields(
    message_sid: str,
    status: str,
    *,
    error_code: int | None = None,
    from_number: str = "+15005550006",
    to_number: str = "+14155550100",
    account_sid: str = LOCAL_ACCOUNT_SID,
) -> list[tuple[str, str]]:
    """The fields of a status callback, as Twilio sends them."""
    return build_status_form(
        message_sid=message_sid,
        account_sid=account_sid,
        from_number=from_number,
        to_number=to_number,
        status=status,
        error_code=error_code,
    )
