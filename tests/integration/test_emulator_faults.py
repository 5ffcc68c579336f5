"""The emulator's fault modes over real HTTP: error, throttle, hang, reset, and their control."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from connector.bootstrap.server_thread import running
from connector.emulators.dataverse.app import create_emulator_app

ROOT = "/api/data/v9.2/"


@pytest.fixture
def base() -> Iterator[str]:
    with running(create_emulator_app(token_required=False)) as url:
        yield url


def fault(base: str, **body: object) -> requests.Response:
    return requests.post(base + "/_emulator/faults", json=body, timeout=10)


def names(base: str) -> list[str]:
    answer = requests.get(base + ROOT + "accounts?$select=name", timeout=10)
    return [row["name"] for row in answer.json()["value"]]


def create(base: str, name: str, timeout: float = 10) -> requests.Response:
    return requests.post(base + ROOT + "accounts", json={"name": name}, timeout=timeout)


def test_error_window_answers_the_status_does_nothing_then_ends(base: str) -> None:
    assert fault(base, mode="error", seconds=0.5, status=502).status_code == 200
    refused = create(base, "refused")
    assert refused.status_code == 502
    assert refused.json()["error"]["message"].startswith("Injected fault")
    assert requests.get(base + "/_emulator/faults", timeout=10).json()["fault"]["mode"] == "error"
    time.sleep(0.6)
    assert create(base, "after").status_code == 204
    assert names(base) == ["after"]
    assert requests.get(base + "/_emulator/stats", timeout=10).json()["faults"] == 1


def test_throttle_answers_429_with_retry_after_and_the_service_protection_code(
    base: str,
) -> None:
    fault(base, mode="throttle", seconds=30, retry_after=7)
    answer = create(base, "throttled")
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    assert answer.json()["error"]["code"] == "0x80072322"
    assert requests.get(base + "/_emulator/stats", timeout=10).status_code == 200  # not hit
    assert requests.delete(base + "/_emulator/faults", timeout=10).status_code == 204
    assert names(base) == []


def test_hang_never_answers_and_carries_nothing_out(base: str) -> None:
    fault(base, mode="hang", seconds=30)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        create(base, "hung", timeout=0.5)
    assert time.monotonic() - started < 5
    requests.delete(base + "/_emulator/faults", timeout=10)
    assert names(base) == []


def test_hang_resets_the_connection_when_the_window_ends(base: str) -> None:
    fault(base, mode="hang", seconds=0.5)
    with pytest.raises(requests.exceptions.ConnectionError):
        create(base, "hung", timeout=10)
    assert names(base) == []


def test_reset_commits_the_write_then_breaks_the_answer(base: str) -> None:
    fault(base, mode="reset", seconds=30)
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="reset by peer"):
        requests.get(base + ROOT + "accounts", timeout=10)  # the status line came, then a RST
    with pytest.raises(requests.exceptions.ConnectionError, match="reset by peer"):
        create(base, "written")  # a 204 has no body to cut: the RST comes before its head
    requests.delete(base + "/_emulator/faults", timeout=10)
    assert names(base) == ["written"]


def test_ratio_hits_only_a_share_of_requests(base: str) -> None:
    fault(base, mode="error", seconds=60, ratio=0.5)
    statuses = [requests.get(base + ROOT + "accounts", timeout=10).status_code for _ in range(60)]
    assert 10 < statuses.count(503) < 50
    assert set(statuses) == {200, 503}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"mode": "explode", "seconds": 1}, "mode must be one of"),
        ({"mode": "hang"}, "seconds is required"),
        ({"mode": "hang", "seconds": 0}, "seconds must be in"),
        ({"mode": "hang", "seconds": 1, "ratio": 2}, "ratio must be in"),
        ({"mode": "error", "seconds": 1, "status": 404}, "status must be in"),
        ({"mode": "error", "seconds": 1, "status": "500"}, "status must be an integer"),
        ({"mode": "error", "seconds": 1, "colour": "red"}, "unknown fields: colour"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_a_bad_fault_request_is_a_400_naming_the_problem(
    base: str, body: object, message: str
) -> None:
    answer = requests.post(base + "/_emulator/faults", json=body, timeout=10)
    assert answer.status_code == 400
    assert message in answer.json()["error"]["message"]
    assert requests.get(base + "/_emulator/faults", timeout=10).json() == {"fault": None}
