"""Transport rules: retries in one place, Retry-After, 401 refresh, concurrency cap, no leaks."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
import responses
from pydantic import SecretStr
from urllib3.exceptions import MaxRetryError, NewConnectionError

from connector.dataverse.auth import MsalTokenProvider
from connector.dataverse.client import DataverseClient
from connector.dataverse.failures import error_for, parse_retry_after
from connector.dataverse.retry import RetryPolicy
from connector.dataverse.transport import WebApi
from connector.errors import (
    DataverseError,
    DataverseThrottledError,
    DataverseUnavailableError,
)
from connector.log_config import configure_logging

ORG = "https://org.crm.dynamics.com"
API = f"{ORG}/api/data/v9.2/"
ID = "7eb682f1-ca75-e511-80d4-00155d2a68d1"
THROTTLED = {
    "error": {
        "code": "0x80072322",
        "message": "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
    }
}


class CountingTokens:
    """A token provider that hands out numbered tokens and counts refreshes."""

    def __init__(self) -> None:
        self.issued = 0
        self.refreshes = 0

    def token(self, *, refresh: bool = False) -> str:
        if refresh or self.issued == 0:
            self.refreshes += int(refresh)
            self.issued += 1
        return f"token-{self.issued}"


class FakeTime:
    """A clock that only moves when the code under test sleeps; records the sleeps."""

    def __init__(self, waits: list[float]) -> None:
        self.now = 1000.0
        self.waits = waits

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def _client(
    waits: list[float], tokens: object = None, attempts: int = 4, concurrency: int = 16
) -> DataverseClient:
    fake = FakeTime(waits)
    api = WebApi(
        ORG,
        tokens or CountingTokens(),  # type: ignore[arg-type]
        requests.Session(),
        max_concurrency=concurrency,
        retry=RetryPolicy(max_attempts=attempts, sleep=fake.sleep, clock=fake.clock),
    )
    return DataverseClient(api)


def test_429_waits_exactly_retry_after_then_finishes(rsps: responses.RequestsMock) -> None:
    waits: list[float] = []
    rsps.post(API + "tasks", status=429, json=THROTTLED, headers={"Retry-After": "7"})
    rsps.post(API + "tasks", status=204, headers={"OData-EntityId": f"{API}tasks({ID})"})
    assert _client(waits).create("tasks", {"subject": "x"}) == ID
    assert waits == [7.0]
    assert len(rsps.calls) == 2


def test_a_retry_after_pauses_the_other_requests_of_the_client(
    rsps: responses.RequestsMock,
) -> None:
    waits: list[float] = []
    rsps.get(API + "WhoAmI", status=429, json=THROTTLED, headers={"Retry-After": "5"})
    client = _client(waits, attempts=1)
    with pytest.raises(DataverseThrottledError):
        client.who_am_i()
    rsps.get(API + f"contacts({ID})", json={"contactid": ID})
    client.retrieve("contacts", ID)  # another request: waits out the pause before sending
    assert waits == [5.0]


def test_throttling_that_never_ends_fails_after_bounded_attempts(
    rsps: responses.RequestsMock,
) -> None:
    waits: list[float] = []
    for _ in range(3):
        rsps.get(API + "WhoAmI", status=429, json=THROTTLED, headers={"Retry-After": "2"})
    with pytest.raises(DataverseThrottledError) as caught:
        _client(waits, attempts=3).who_am_i()
    assert caught.value.retry_after == 2.0 and caught.value.service_code == "0x80072322"
    assert caught.value.transient
    assert waits == [2.0, 2.0] and len(rsps.calls) == 3


def test_503_backs_off_with_jitter_and_retries(rsps: responses.RequestsMock) -> None:
    waits: list[float] = []
    rsps.get(API + "WhoAmI", status=503)
    rsps.get(API + "WhoAmI", status=502)
    rsps.get(API + "WhoAmI", json={"UserId": ID})
    assert _client(waits).who_am_i() == {"UserId": ID}
    assert len(waits) == 2 and all(0 <= w <= 30 for w in waits)


def test_a_create_that_may_have_been_applied_is_not_repeated(
    rsps: responses.RequestsMock,
) -> None:
    waits: list[float] = []
    rsps.post(API + "tasks", status=504)
    with pytest.raises(DataverseUnavailableError) as caught:
        _client(waits).create("tasks", {"subject": "x"})
    assert caught.value.details["maybe_applied"] is True
    assert waits == [] and len(rsps.calls) == 1


def test_an_idempotent_write_is_retried_after_a_gateway_timeout(
    rsps: responses.RequestsMock,
) -> None:
    waits: list[float] = []
    url = API + "csms_smses(csms_providermessageid='SM1')"
    rsps.patch(url, status=504)
    rsps.patch(url, status=412, json={"error": {"code": "0x80040237", "message": "exists"}})
    created = _client(waits).create_only("csms_smses", {"csms_providermessageid": "SM1"}, {})
    assert created is False  # the first attempt did create it: no duplicate, no error
    assert len(rsps.calls) == 2


def test_connection_refused_is_retried_even_for_a_create(rsps: responses.RequestsMock) -> None:
    waits: list[float] = []
    refused = requests.ConnectionError(
        MaxRetryError(None, API, reason=NewConnectionError(None, "refused"))  # type: ignore[arg-type]
    )
    rsps.post(API + "tasks", body=refused)
    rsps.post(API + "tasks", status=204, headers={"OData-EntityId": f"{API}tasks({ID})"})
    assert _client(waits).create("tasks", {}) == ID
    assert len(waits) == 1


def test_a_connection_dropped_after_sending_is_not_repeated_for_a_create(
    rsps: responses.RequestsMock,
) -> None:
    rsps.post(API + "tasks", body=requests.ConnectionError("Connection reset by peer"))
    with pytest.raises(DataverseUnavailableError) as caught:
        _client([]).create("tasks", {})
    assert caught.value.status == 0 and isinstance(caught.value.__cause__, requests.ConnectionError)


def test_401_refreshes_the_token_once_then_succeeds(rsps: responses.RequestsMock) -> None:
    tokens = CountingTokens()
    rsps.get(API + "WhoAmI", status=401, json={"error": {"code": "", "message": "expired"}})
    rsps.get(API + "WhoAmI", json={"UserId": ID})
    assert _client([], tokens).who_am_i() == {"UserId": ID}
    assert tokens.refreshes == 1
    assert [c.request.headers["Authorization"] for c in rsps.calls] == [
        "Bearer token-1",
        "Bearer token-2",
    ]


def test_a_second_401_fails_without_looping(rsps: responses.RequestsMock) -> None:
    tokens = CountingTokens()
    for _ in range(2):
        rsps.get(API + "WhoAmI", status=401, json={"error": {"code": "", "message": "no user"}})
    with pytest.raises(DataverseError) as caught:
        _client([], tokens).who_am_i()
    assert caught.value.status == 401 and caught.value.code == "dataverse_unauthorized"
    assert not caught.value.transient and tokens.refreshes == 1 and len(rsps.calls) == 2


def test_requests_in_flight_never_exceed_the_cap(rsps: responses.RequestsMock) -> None:
    lock = threading.Lock()
    in_flight = [0, 0]  # current, highest
    pair = threading.Barrier(2, timeout=10)

    def answer(_request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        pair.wait()  # two requests must be in flight together for either to finish
        with lock:
            in_flight[0] -= 1
        return 200, {}, '{"UserId": "x"}'

    rsps.add_callback(responses.GET, API + "WhoAmI", callback=answer)
    client = _client([], concurrency=2)
    threads = [threading.Thread(target=client.who_am_i) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(rsps.calls) == 8
    assert in_flight[1] == 2


def test_logs_never_contain_the_token_or_the_secret(rsps: responses.RequestsMock) -> None:
    tenant, client_id, secret = "t-1", "c-1", "very-secret-value"
    authority = f"https://login.microsoftonline.com/{tenant}"
    rsps.get(
        f"{authority}/v2.0/.well-known/openid-configuration",
        json={
            "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
            "token_endpoint": f"{authority}/oauth2/v2.0/token",
            "issuer": f"{authority}/v2.0",
        },
    )
    for value in ("access-token-one", "access-token-two"):
        rsps.post(
            f"{authority}/oauth2/v2.0/token",
            json={"token_type": "Bearer", "expires_in": 3599, "access_token": value},
        )
    rsps.get(API + "WhoAmI", status=401, json={"error": {"code": "", "message": "expired"}})
    rsps.get(API + "WhoAmI", status=429, json=THROTTLED, headers={"Retry-After": "1"})
    rsps.get(API + "WhoAmI", json={"UserId": ID})
    rsps.get(API + f"contacts({ID})", status=404, json={"error": {"code": "0x80040217"}})
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream)
    tokens = MsalTokenProvider(
        org_url=ORG,
        tenant_id=tenant,
        client_id=client_id,
        client_secret=SecretStr(secret),
        instance_discovery=False,
    )
    client = _client([], tokens)
    client.who_am_i()
    assert client.retrieve_or_none("contacts", ID) is None
    logged = stream.getvalue()
    assert "dataverse.request" in logged and "dataverse.retry" in logged
    for leak in (secret, "access-token-one", "access-token-two", "Bearer access"):
        assert leak not in logged


def test_retry_after_accepts_seconds_and_http_dates_and_is_capped() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now) == 30.0
    assert parse_retry_after("100000") == 300.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_status_mapping_keeps_envelope_and_request_id() -> None:
    error = error_for(
        403,
        {"X-MS-Service-Request-Id": "r-9"},
        b'{"error":{"code":"0x80040220","message":"Principal user is missing privilege"}}',
        method="GET",
        path="/api/data/v9.2/contacts",
    )
    assert type(error) is DataverseError and error.code == "dataverse_forbidden"
    assert error.request_id == "r-9" and "missing privilege" in error.message
    assert error_for(501, {}, b"<html>", method="GET", path="/x").transient is False
    assert isinstance(error_for(503, {}, None, method="GET", path="/x"), DataverseUnavailableError)


def test_a_500_is_transient_and_may_have_been_applied() -> None:
    # A 500 burst parked inbound messages after one attempt: answered 200 to the provider,
    # then withheld from Dataverse until someone replayed them (the reliability report).
    error = error_for(
        500,
        {},
        b'{"error":{"code":"0x80040216","message":"An unexpected error occurred."}}',
        method="POST",
        path="/api/data/v9.2/$batch",
    )
    assert isinstance(error, DataverseUnavailableError) and error.transient
    assert error.details["maybe_applied"] is True  # a non-idempotent call is not repeated
