"""Twilio webhook forms parsed into the port's dataclasses, and malformed forms refused."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from connector.domain.status import FailureCategory, MessageStatus
from connector.errors import InvalidInputError
from connector.providers.twilio.forms import (
    build_inbound_form,
    parse_inbound,
    parse_status_callback,
)
from tests.unit.test_signature_twilio import INBOUND_STOP, STATUS_UNDELIVERED

SM = "SM" + "1" * 32
AC = "AC" + "2" * 32


def test_parses_the_inbound_stop_fixture() -> None:
    message = parse_inbound(parse_qsl(INBOUND_STOP))
    assert message.provider_message_id == "SM1234567890abcdef1234567890abcdef"
    assert (message.from_number, message.to_number) == ("+14155550199", "+14155550100")
    assert message.body == "STOP" and message.opt_out_type == "STOP"
    assert message.messaging_service_id == "MG1234567890abcdef1234567890abcdef"
    assert message.media == () and message.num_segments == 1
    assert message.raw["FromCity"] == "SAN FRANCISCO"


MEDIA = [("https://api.twilio.com/m/0", "image/jpeg"), ("https://api.twilio.com/m/1", "image/png")]


def test_parses_mms_media_in_order_and_keeps_unicode() -> None:
    form = build_inbound_form(
        message_sid="MM" + "3" * 32, account_sid=AC, from_number="+14155550199",
        to_number="+14155550100", body="Voilà 📷", media=MEDIA,
    )  # fmt: skip
    message = parse_inbound(form)
    assert message.body == "Voilà 📷"
    assert [(m.url, m.content_type) for m in message.media] == MEDIA


def test_unknown_extra_fields_are_kept() -> None:
    form = [*build_inbound_form(message_sid=SM, account_sid=AC, from_number="+1", to_number="+2",
                                body="hi"), ("BrandNewParam", "x")]  # fmt: skip
    assert parse_inbound(form).raw["BrandNewParam"] == "x"


def _inbound(**changes: str) -> list[tuple[str, str]]:
    fields = dict(build_inbound_form(message_sid=SM, account_sid=AC, from_number="+14155550199",
                                     to_number="+14155550100", body="hi"))  # fmt: skip
    fields.update(changes)
    return [(k, v) for k, v in fields.items() if v != "<drop>"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"MessageSid": "<drop>"}, "MessageSid is missing"),
     ({"MessageSid": "SM123"}, "not a Twilio id"),
     ({"AccountSid": "XX" + "2" * 32}, "not a Twilio id"),
     ({"From": "<drop>"}, "From is missing"),
     ({"Body": "x" * 1601}, "longer than 1600"),
     ({"NumMedia": "11"}, "NumMedia must be"),
     ({"NumMedia": "-1"}, "NumMedia must be"),
     ({"NumMedia": "1"}, "MediaUrl0 is missing"),
     ({"NumMedia": "1", "MediaUrl0": "file:///etc/passwd"}, "not an http"),
     ({"OptOutType": "MAYBE"}, "unknown OptOutType"),
     ({"MessagingServiceSid": "MGxyz"}, "not a Twilio id"),
     ({"Junk": "y" * 5000}, "too long")],
)  # fmt: skip
def test_rejects_malformed_inbound(changes: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_inbound(_inbound(**changes))


@pytest.mark.parametrize("field", ["NumSegments", "NumMedia"])
@pytest.mark.parametrize("value", ["\u00b2", "\u0661", "\uff11", "1\n", " 1", "+1", "1_0"])
def test_rejects_counts_that_are_not_ascii_digits(field: str, value: str) -> None:
    # "²".isdigit() is True but int("²") raises ValueError: that was a 500, not a 400
    with pytest.raises(InvalidInputError, match=f"{field} must be"):
        parse_inbound(_inbound(**{field: value}))


@pytest.mark.parametrize("code", ["\u00b2", "\u0663\u0660\u0660\u0660\u0663"])
def test_rejects_status_error_codes_that_are_not_ascii_digits(code: str) -> None:
    with pytest.raises(InvalidInputError, match="ErrorCode"):
        parse_status_callback(
            [("MessageSid", SM), ("MessageStatus", "failed"), ("ErrorCode", code)]
        )


def test_rejects_too_many_fields() -> None:
    with pytest.raises(InvalidInputError, match="too many"):
        parse_inbound(_inbound() + [(f"F{i}", "v") for i in range(300)])


def test_parses_the_undelivered_status_fixture() -> None:
    update = parse_status_callback(parse_qsl(STATUS_UNDELIVERED))
    assert update.provider_message_id == "SM" + "a" * 32
    assert update.status is MessageStatus.UNDELIVERED
    assert update.error_code == "30003"
    assert update.error is not None and update.error.category is FailureCategory.UNREACHABLE
    assert update.carrier_done_date == "2508121430"


def test_status_without_error_has_no_failure() -> None:
    update = parse_status_callback([("MessageSid", SM), ("MessageStatus", "delivered"),
                                    ("ErrorCode", "0")])  # fmt: skip
    assert update.status is MessageStatus.DELIVERED and update.error is None


def test_status_falls_back_to_sms_status() -> None:
    assert parse_status_callback([("MessageSid", SM), ("SmsStatus", "sent")]).status is (
        MessageStatus.SENT
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [([("MessageSid", SM)], "MessageStatus is missing"),
     ([("MessageSid", SM), ("MessageStatus", "exploded")], "unknown message status"),
     ([("MessageStatus", "sent")], "MessageSid is missing"),
     ([("MessageSid", SM), ("MessageStatus", "failed"), ("ErrorCode", "3O003")], "ErrorCode")],
)  # fmt: skip
def test_rejects_malformed_status(fields: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_status_callback(fields)
