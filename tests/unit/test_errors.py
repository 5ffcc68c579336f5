"""The exception tree: errors carry data, transience is decided where they are made."""

from __future__ import annotations

import pytest

from connector import errors


def test_throttling_and_unavailability_are_transient() -> None:
    assert errors.is_transient(errors.DataverseThrottledError("slow down", status=429))
    assert errors.is_transient(errors.DataverseUnavailableError("down", status=503))
    assert errors.is_transient(errors.ProviderThrottledError("rate", provider_code=20429))
    assert errors.is_transient(TimeoutError())
    assert errors.is_transient(ConnectionResetError())


def test_caller_mistakes_are_permanent() -> None:
    assert not errors.is_transient(errors.DataverseNotFoundError("gone", status=404))
    assert not errors.is_transient(errors.RecipientOptedOutError("stop", provider_code=21610))
    assert not errors.is_transient(
        errors.InvalidPhoneNumberError("bad", raw="abc", reason="not_a_number")
    )
    assert not errors.is_transient(ValueError("x"))


def test_transience_can_be_decided_at_the_raise_site() -> None:
    assert errors.is_transient(errors.DataverseError("odd", status=500, transient=True))
    assert not errors.is_transient(errors.StateStoreError("disk full", transient=False))


def test_dataverse_error_carries_its_wire_data() -> None:
    exc = errors.DataverseThrottledError(
        "Number of requests exceeded",
        status=429,
        service_code="0x80072322",
        request_id="req-1",
        retry_after=7.0,
    )
    data = exc.to_dict()
    assert data["code"] == "dataverse_throttled"
    assert data["details"]["retry_after"] == 7.0
    assert data["details"]["service_code"] == "0x80072322"
    assert exc.request_id == "req-1"
    assert isinstance(exc, errors.DataverseError)


@pytest.mark.parametrize(
    "kind",
    [
        errors.SignatureError,
        errors.ConfigurationError,
        errors.NotFoundError,
        errors.StateStoreError,
    ],
)
def test_every_error_is_a_connector_error_with_a_code(kind: type[errors.ConnectorError]) -> None:
    exc = kind("message")
    assert isinstance(exc, errors.ConnectorError)
    assert exc.code and exc.code != "connector_error"
