"""The web service shell over real HTTP: health, readiness, metrics, problem+json errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests
from fastapi import APIRouter, Depends

from connector.api.app import create_app
from connector.api.deps import WebServices, require_api_key
from connector.bootstrap.server_thread import running
from connector.errors import DataverseThrottledError, InvalidPhoneNumberError
from connector.settings import load_settings


def _failing_check() -> None:
    raise ConnectionRefusedError("dataverse down")


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/boom/throttled")
    def throttled() -> None:
        raise DataverseThrottledError("Number of requests exceeded", status=429, retry_after=7)

    @router.get("/boom/phone")
    def phone() -> None:
        raise InvalidPhoneNumberError("'12' is not a phone number", raw="12", reason="too_short")

    @router.get("/boom/crash")
    def crash() -> None:
        raise RuntimeError("secret internals")

    @router.get("/private", dependencies=[Depends(require_api_key)])
    def private() -> dict[str, str]:
        return {"ok": "yes"}

    return router


@pytest.fixture
def service() -> Iterator[tuple[str, WebServices]]:
    settings = load_settings({"CONNECTOR_API__KEYS": "key-1,key-2"})
    services = WebServices(api_keys=settings.api.keys, readiness={})
    with running(create_app(services, extra_routers=[_router()])) as url:
        yield url, services


def test_healthz_answers_while_alive(service: tuple[str, WebServices]) -> None:
    url, _ = service
    response = requests.get(f"{url}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_reports_each_check_and_fails_when_one_fails(
    service: tuple[str, WebServices],
) -> None:
    url, services = service
    checks: dict[str, Callable[[], object]] = {"state_store": lambda: None}
    services.readiness = checks
    assert requests.get(f"{url}/readyz", timeout=5).status_code == 200
    checks["dataverse"] = _failing_check
    response = requests.get(f"{url}/readyz", timeout=5)
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "state_store": "ok",
        "dataverse": "failed: ConnectionRefusedError",
    }


def test_metrics_are_prometheus_text(service: tuple[str, WebServices]) -> None:
    url, services = service
    from prometheus_client import Counter

    Counter("probe_total", "a probe", registry=services.metrics).inc(3)
    response = requests.get(f"{url}/metrics", timeout=5)
    assert response.headers["content-type"].startswith("text/plain")
    assert "probe_total 3.0" in response.text


def test_unknown_route_is_a_problem_json_404(service: tuple[str, WebServices]) -> None:
    url, _ = service
    response = requests.get(f"{url}/nowhere", timeout=5)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_throttling_becomes_503_with_retry_after(service: tuple[str, WebServices]) -> None:
    url, _ = service
    response = requests.get(f"{url}/boom/throttled", timeout=5)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["code"] == "dataverse_throttled"


def test_bad_input_is_a_400_naming_the_input(service: tuple[str, WebServices]) -> None:
    url, _ = service
    body = requests.get(f"{url}/boom/phone", timeout=5).json()
    assert body["status"] == 400
    assert body["code"] == "invalid_phone_number"
    assert "'12'" in body["detail"]


def test_unexpected_error_hides_internals(service: tuple[str, WebServices]) -> None:
    url, _ = service
    response = requests.get(f"{url}/boom/crash", timeout=5)
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert response.json()["code"] == "internal_error"


def test_api_key_is_required_and_checked(service: tuple[str, WebServices]) -> None:
    url, _ = service
    assert requests.get(f"{url}/private", timeout=5).status_code == 401
    wrong = requests.get(f"{url}/private", headers={"X-API-Key": "nope"}, timeout=5)
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "unauthorized"
    right = requests.get(f"{url}/private", headers={"X-API-Key": "key-2"}, timeout=5)
    assert right.json() == {"ok": "yes"}


def test_served_sockets_are_tcp_so_asyncio_disables_nagle() -> None:
    """asyncio sets TCP_NODELAY on accepted connections only for IPPROTO_TCP listeners;
    without it each small response waits ~40 ms for a delayed ACK."""
    import socket

    from connector.bootstrap.server_thread import ServerThread
    from connector.cli.serve_cmd import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
    server = ServerThread(create_app())
    try:
        assert server._sock.proto == socket.IPPROTO_TCP
    finally:
        server._sock.close()


def test_routes_of_a_service_this_process_lacks_answer_503_not_enabled(
    service: tuple[str, WebServices],
) -> None:
    url, _ = service
    response = requests.post(
        f"{url}/api/v1/sessions/00000000-0000-4000-8000-000000000001/accept",
        json={"user_id": "00000000-0000-4000-8000-000000000002"},
        headers={"X-API-Key": "key-1"},
        timeout=5,
    )
    assert response.status_code == 503
    assert response.json()["code"] == "not_enabled"


def test_openapi_is_the_same_whatever_was_wired_and_every_operation_has_an_id(
    service: tuple[str, WebServices],
) -> None:
    from connector.bootstrap import openapi_document

    url, _ = service
    served = requests.get(f"{url}/openapi.json", timeout=5).json()
    bare = openapi_document()
    assert set(bare["paths"]) <= set(served["paths"])  # (served adds this test's own routes)
    operations = [op for item in bare["paths"].values() for op in item.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids)) and all(ids)
    assert "receiveProviderWebhook" in ids and "moveSession" in ids
