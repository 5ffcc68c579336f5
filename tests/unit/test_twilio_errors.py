"""Every Twilio error code of the reference table (sms-providers section 5) maps to the right
failure category, transient or not, with a reason and an action; refusals become the right
connector exception; only what Twilio never processed is retried at once."""

from __future__ import annotations

import pytest

from connector.domain.status import FailureCategory as C
from connector.errors import ProviderError, ProviderThrottledError, RecipientOptedOutError
from connector.providers.twilio.errors import (
    TWILIO_ERRORS,
    error_for,
    failure_for,
    retry_now,
    unreachable_error,
)

# code -> (category, transient), written from the reference table's classification column
REFERENCE_TABLE = {
    20003: (C.CONFIGURATION, False),
    20429: (C.THROTTLED, True),
    21211: (C.INVALID_RECIPIENT, False),
    21212: (C.CONFIGURATION, False),
    21265: (C.INVALID_RECIPIENT, False),
    21266: (C.INVALID_PARAMETERS, False),
    21408: (C.CONFIGURATION, False),
    21603: (C.INVALID_PARAMETERS, False),
    21604: (C.INVALID_PARAMETERS, False),
    21606: (C.CONFIGURATION, False),
    21608: (C.CONFIGURATION, False),
    21610: (C.OPTED_OUT, False),
    21611: (C.THROTTLED, True),
    21612: (C.INVALID_RECIPIENT, False),
    21614: (C.INVALID_RECIPIENT, False),
    21617: (C.INVALID_PARAMETERS, False),
    21635: (C.INVALID_RECIPIENT, False),
    21658: (C.INVALID_PARAMETERS, False),
    30001: (C.THROTTLED, True),
    30002: (C.CONFIGURATION, False),
    30003: (C.UNREACHABLE, True),
    30004: (C.CARRIER_FILTERED, False),
    30005: (C.INVALID_RECIPIENT, False),
    30006: (C.INVALID_RECIPIENT, False),
    30007: (C.CARRIER_FILTERED, False),
    30008: (C.UNKNOWN, True),
    30034: (C.CONFIGURATION, False),
    30450: (C.FRAUD_BLOCKED, False),
    11200: (C.CONFIGURATION, False),
    11205: (C.CONFIGURATION, False),
}


@pytest.mark.parametrize(("code", "expected"), sorted(REFERENCE_TABLE.items()))
def test_reference_code_maps_to_its_category(code: int, expected: tuple[C, bool]) -> None:
    info = failure_for(code)
    assert (info.category, info.transient) == expected
    assert info.reason.endswith(".") and info.action.endswith(".")


def test_table_covers_exactly_the_reference_codes() -> None:
    assert set(TWILIO_ERRORS) == set(REFERENCE_TABLE)


@pytest.mark.parametrize("code", ["21211", 21211])
def test_code_given_as_text_or_number(code: str | int) -> None:
    assert failure_for(code).category is C.INVALID_RECIPIENT


@pytest.mark.parametrize(
    ("code", "status", "category", "transient"),
    [(99999, 429, C.THROTTLED, True), (99999, 503, C.PROVIDER_UNAVAILABLE, True),
     (None, 500, C.PROVIDER_UNAVAILABLE, True), (None, 401, C.CONFIGURATION, False),
     (99999, 400, C.UNKNOWN, False), ("junk", None, C.UNKNOWN, False)],
)  # fmt: skip
def test_unknown_codes_fall_back_to_http_status(
    code: int | str | None, status: int | None, category: C, transient: bool
) -> None:
    info = failure_for(code, status)
    assert (info.category, info.transient) == (category, transient)


def test_opted_out_refusal_is_a_recipient_opted_out_error_keeping_raw_values() -> None:
    exc = error_for(21610, "Attempt to send to unsubscribed recipient", 400)
    assert isinstance(exc, RecipientOptedOutError)
    assert exc.category == "opted_out" and not exc.transient
    assert exc.provider_code == 21610
    assert exc.provider_message == "Attempt to send to unsubscribed recipient"
    assert exc.details["action"].startswith("Do not message")


def test_too_many_requests_is_a_throttled_error_with_retry_after() -> None:
    exc = error_for(20429, "Too Many Requests", 429, retry_after=3.0)
    assert isinstance(exc, ProviderThrottledError)
    assert exc.transient and exc.retry_after == 3.0


def test_full_sender_queue_is_transient_but_not_a_rate_limit() -> None:
    exc = error_for(21611, "queue full", 400)
    assert type(exc) is ProviderError
    assert exc.transient and exc.category == "throttled"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [(error_for(20429, "x", 429), True), (error_for(None, "x", 503), True),
     (error_for(20500, "x", 500), True), (unreachable_error(ConnectionError("refused")), True),
     (error_for(21211, "x", 400), False), (error_for(21610, "x", 400), False),
     (error_for(21611, "x", 400), False), (error_for(20003, "x", 401), False),
     (ValueError("not ours"), False)],
)  # fmt: skip
def test_only_requests_twilio_never_processed_are_retried_at_once(
    exc: BaseException, expected: bool
) -> None:
    assert retry_now(exc) is expected
