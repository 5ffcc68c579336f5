"""The simulator's fate table and segment count, and the shipped fake provider that uses the
same magic numbers (so service tests see the refusals the real provider raises)."""

from __future__ import annotations

import pytest

from connector.domain.provider_messages import SendRequest
from connector.domain.status import MessageStatus
from connector.emulators.twilio.numbers import async_outcome, new_sid, segments
from connector.errors import ProviderError, ProviderThrottledError, RecipientOptedOutError
from connector.testing.fake_sms import FakeSmsProvider
from connector.testing.signing import inbound_fields, signed_form


@pytest.mark.parametrize(
    ("to", "expected"),
    [("+14155550100", ("delivered", None)), ("+15005553003", ("undelivered", 30003)),
     ("+15005553005", ("undelivered", 30005)), ("+15005553001", ("failed", 30001)),
     ("+15005553034", ("failed", 30034)), ("+15005553450", ("failed", 30450)),
     ("+150055530031", ("delivered", None)), ("+15005550004", ("delivered", None))],
)  # fmt: skip
def test_async_outcome_by_number(to: str, expected: tuple[str, int | None]) -> None:
    assert async_outcome(to) == expected


@pytest.mark.parametrize(
    ("body", "count"),
    [("", 1), ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
     ("€" * 80, 1), ("€" * 81, 2), ("é" * 160, 1), ("ł" * 70, 1), ("ł" * 71, 2),
     ("😀" * 35, 1), ("😀" * 36, 2)],
)  # fmt: skip
def test_segments_follow_gsm7_and_ucs2_limits(body: str, count: int) -> None:
    assert segments(body) == count


def test_sids_have_twilio_shape() -> None:
    sid = new_sid("SM")
    assert len(sid) == 34 and sid.startswith("SM") and int(sid[2:], 16) >= 0
    assert new_sid("SM") != sid


def _req(to: str = "+14155550100", **kw: object) -> SendRequest:
    values: dict[str, object] = {"message_id": "m", "to": to, "body": "hi",
                                 "from_number": "+15005550006"}  # fmt: skip
    values.update(kw)
    return SendRequest(**values)  # type: ignore[arg-type]


def test_fake_records_what_it_sent() -> None:
    fake = FakeSmsProvider()
    result = fake.send(_req())
    assert fake.sent == [(_req(), result)]
    assert result.status is MessageStatus.QUEUED and result.provider_message_id.startswith("SM")


def test_fake_refuses_magic_numbers_like_the_real_provider() -> None:
    fake = FakeSmsProvider()
    with pytest.raises(RecipientOptedOutError):
        fake.send(_req("+15005550004"))
    with pytest.raises(ProviderError) as caught:
        fake.send(_req("+15005550001"))
    assert caught.value.category == "invalid_recipient"
    assert fake.sent == []


def test_fake_refuses_scripted_codes_in_order() -> None:
    fake = FakeSmsProvider(refuse_next=[20429, 30001])
    with pytest.raises(ProviderThrottledError):
        fake.send(_req())
    with pytest.raises(ProviderError) as caught:
        fake.send(_req())
    assert caught.value.transient
    fake.send(_req())
    assert len(fake.sent) == 1


def test_fake_verifies_and_parses_signed_webhooks() -> None:
    fake = FakeSmsProvider()
    url = "https://sms.example.com/webhooks/twilio/messages"
    fields = inbound_fields("+14155550199", "+15005550006", "STOP")
    request = signed_form(url, fields)
    fake.verify_signature(url, fields, request.headers)
    assert fake.parse_inbound(fields).body == "STOP"
