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


def _subclasses(cls: type[errors.ConnectorError]) -> list[type[errors.ConnectorError]]:
    return [sub for child in cls.__subclasses__() for sub in (child, *_subclasses(child))]


def test_data_is_declared_once_on_the_base() -> None:
    kinds = [k for k in _subclasses(errors.ConnectorError) if k.__module__ == errors.__name__]
    assert len(kinds) >= 17
    assert not [k.__name__ for k in kinds if "__init__" in vars(k)]


def test_each_error_reports_its_data_in_details_before_the_callers() -> None:
    phone = errors.InvalidPhoneNumberError("bad", raw="12", reason="too_short", details={"x": 1})
    assert phone.details == {"input": "12", "reason": "too_short", "x": 1}
    assert (phone.raw, phone.reason) == ("12", "too_short")
    provider = errors.ProviderError("refused", provider_code=21211, http_status=400)
    assert list(provider.details) == [
        "category",
        "provider_code",
        "provider_message",
        "http_status",
        "retry_after",
    ]
    assert provider.category == "unknown" and provider.details["provider_code"] == 21211
    dataverse = errors.DataverseError("odd", details={"status": "the caller's"})
    assert dataverse.status == 0 and dataverse.details["status"] == "the caller's"
    assert errors.ConfigurationError("missing").details == {}


def test_an_unknown_datum_is_refused() -> None:
    with pytest.raises(TypeError, match="bogus"):
        errors.StateStoreError("disk full", bogus=1)  # type: ignore[call-arg]


def test_the_stand_ins_refusals_are_not_connector_errors() -> None:
    from connector.emulators.dataverse.errors import EmulatorRequestError
    from connector.emulators.twilio.errors import SimulatorRefusalError

    fault = EmulatorRequestError(429, "0x80072322", "slow down", headers={"Retry-After": "3"})
    refusal = SimulatorRefusalError(400, 21211, "invalid 'To' number")
    assert not isinstance(fault, errors.ConnectorError)
    assert not isinstance(refusal, errors.ConnectorError)
    assert (fault.status, fault.service_code, fault.message, fault.headers) == (
        429,
        "0x80072322",
        "slow down",
        {"Retry-After": "3"},
    )
    assert refusal.twilio_body()["code"] == 21211 and str(refusal) == "invalid 'To' number"
