"""The consent routes over HTTP: bad input is problem+json and writes nothing; an opt-in
request with an Idempotency-Key records once; the status lists state and history."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from connector.api.app import create_app
from connector.api.deps import WebServices
from connector.bootstrap.server_thread import running
from connector.domain.model import Configuration, Provider
from connector.services.consent import ConsentService
from connector.settings import load_settings
from connector.state.caches import ConfigurationCache
from connector.state.consent import ConsentLedger
from connector.state.db import StateStore
from connector.testing.conversations import FakeConfigurationDirectory

KEY = "test-api-key"
CONFIG = str(uuid.UUID(int=3))
SENDER = Configuration(
    name="Desk", provider=Provider.SIMULATOR, sender_number="+14155550100", id=CONFIG,
    default_country="US",
)  # fmt: skip


@dataclass
class Api:
    url: str
    ledger: ConsentLedger

    def post(self, path: str, body: object, **headers: str) -> requests.Response:
        return requests.post(
            f"{self.url}{path}", json=body, headers={"X-API-Key": KEY, **headers}, timeout=10
        )


@pytest.fixture
def api() -> Iterator[Api]:
    ledger = ConsentLedger(StateStore.from_url("sqlite://"))
    configurations = ConfigurationCache(FakeConfigurationDirectory(configurations=[SENDER]))
    consent = ConsentService(ledger, configurations, lambda _c: [])
    settings = load_settings({"CONNECTOR_API__KEYS": KEY})
    with running(create_app(WebServices(api_keys=settings.api.keys, consent=consent))) as url:
        yield Api(url, ledger)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"phone": "12", "configuration_id": CONFIG, "source": "form"}, 400, None),
        ({"phone": "+14155550123", "configuration_id": str(uuid.UUID(int=9)), "source": "f"},
         422, "unknown_configuration"),
        ({"phone": "+14155550123", "configuration_id": CONFIG, "source": "f", "purpose": "spam"},
         422, None),
        ({"phone": "+14155550123", "configuration_id": "not-a-guid", "source": "f"}, 422, None),
        ({"phone": "+14155550123", "configuration_id": CONFIG}, 422, None),
    ],
)  # fmt: skip
def test_bad_opt_in_requests_are_problems_and_write_nothing(
    api: Api, body: dict[str, str], status: int, code: str | None
) -> None:
    answer = api.post("/api/v1/consent/opt-in", body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    if code:
        assert answer.json()["code"] == code
    assert api.ledger.counts()["changes"] == 0


def test_an_opt_in_with_a_key_records_once_and_the_status_shows_it(api: Api) -> None:
    body = {"phone": "(415) 555-0123", "configuration_id": CONFIG, "source": "web form"}
    for _ in range(2):
        answer = api.post("/api/v1/consent/opt-in", body, **{"Idempotency-Key": "form-1"})
        assert answer.status_code == 202, answer.text
    state = answer.json()
    assert (state["status"], state["phone"], state["confirmation_sent"]) == (
        "pending",
        "+14155550123",
        False,  # the second request: the first one's confirmation is still pending
    )
    assert state["evidence"]["source"] == "web form" and state["expired"] is False
    assert api.ledger.counts()["changes"] == 1
    out = api.post(
        "/api/v1/consent/opt-out",
        {"phone": "+14155550123", "configuration_id": CONFIG, "source": "call"},
    )
    assert out.status_code == 200, out.text
    shown = requests.get(
        f"{api.url}/api/v1/consent",
        params={"phone": "+1 415 555 0123"},
        headers={"X-API-Key": KEY},
        timeout=10,
    ).json()
    assert {(c["purpose"], c["status"]) for c in shown["consents"]} == {
        ("commercial", "opted_out"),
        ("transactional", "opted_out"),
    }
    assert [h["status"] for h in shown["history"]] == ["pending", "opted_out", "opted_out"]
    assert (
        requests.get(f"{api.url}/api/v1/consent?phone=+14155550123", timeout=10).status_code == 401
    )
