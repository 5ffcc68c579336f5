"""The lists a flow picks from, over real HTTP: active configurations and published templates."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from pydantic import SecretStr

from connector.api.app import create_app
from connector.api.deps import WebServices
from connector.bootstrap.server_thread import ServerThread
from connector.domain.model import Configuration, Provider, Template
from connector.services.bulk import BulkService
from connector.state.bulk import BulkJobs
from connector.state.caches import ConfigurationCache
from connector.state.db import StateStore
from connector.testing.conversations import FakeConfigurationDirectory
from connector.testing.templates import FakeTemplateCatalog

KEY = "k" * 20


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    configurations = ConfigurationCache(
        FakeConfigurationDirectory(
            configurations=[
                Configuration("Sales", Provider.SIMULATOR, "+14155550100", id="cfg-1"),
                Configuration("Off", Provider.SIMULATOR, "+14155550101", id="cfg-2", active=False),
            ]
        )
    )
    templates = FakeTemplateCatalog([Template("Reminder", "Hi", id="t-1", published=True)])
    bulk = BulkService(
        BulkJobs(StateStore.from_url("sqlite://")),
        sender=None,  # type: ignore[arg-type]  # the lists never send
        configurations=configurations,
        templates=templates,
        in_outbox=lambda _id: False,
    )
    app = create_app(WebServices(api_keys=[SecretStr(KEY)], bulk=bulk))
    server = ServerThread(app).start()
    yield server.url
    server.stop()


def get(base: str, path: str, key: str = KEY) -> requests.Response:
    return requests.get(base + path, headers={"X-API-Key": key}, timeout=10)


def test_lists_give_active_senders_and_published_templates(base: str) -> None:
    senders = get(base, "/api/v1/configurations")
    assert senders.status_code == 200
    assert [(c["id"], c["name"]) for c in senders.json()["value"]] == [("cfg-1", "Sales")]
    found = get(base, "/api/v1/templates").json()["value"]
    assert [(t["id"], t["title"]) for t in found] == [("t-1", "Reminder")]


def test_lists_need_the_api_key(base: str) -> None:
    answer = get(base, "/api/v1/templates", key="wrong")
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
