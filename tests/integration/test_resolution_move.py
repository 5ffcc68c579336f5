"""``POST /api/v1/sessions/{id}/move`` over real HTTP: re-links, traces, and replies follow."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from connector.api.app import create_app
from connector.api.deps import WebServices
from connector.bootstrap.server_thread import running
from connector.domain.conversation import SessionState
from connector.domain.phone import lookup_key, search_variants
from connector.domain.record_types import default_specs
from connector.domain.routing import RECENT_CONVERSATION, RecordRef, SenderContext
from connector.services.conversation_move import ConversationMover
from connector.services.phone_sync import PhoneSync
from connector.services.resolution import RecordResolutionService
from connector.settings import load_settings
from connector.state.db import StateStore
from connector.state.phone_index import PhoneIndex
from connector.state.resolution_ledger import ResolutionLedger
from connector.state.session_mirror import SessionCache
from connector.testing.phone_directory import FakePhoneDirectory
from connector.testing.session_links import FakeConversationRelinker

PHONE = "+14155550101"
KEY = "test-api-key"
SENDER = SenderContext("cfg", default_country="US")
CONTACT = RecordRef("contact", str(uuid.UUID(int=1)))
LEAD = RecordRef("lead", str(uuid.UUID(int=2)))
SESSION = str(uuid.UUID(int=99))


class Service:
    def __init__(
        self,
        url: str,
        resolver: RecordResolutionService,
        sessions: SessionCache,
        dataverse: FakeConversationRelinker,
    ) -> None:
        self.url, self.resolver, self.sessions, self.dataverse = url, resolver, sessions, dataverse

    def regarding(self) -> RecordRef | None:
        session = self.sessions.get(SESSION)
        assert session is not None and session.regarding_table and session.regarding_id
        return RecordRef(session.regarding_table, session.regarding_id)

    def move(self, session: str, body: object, key: str = KEY) -> requests.Response:
        return requests.post(
            f"{self.url}/api/v1/sessions/{session}/move",
            json=body,
            headers={"X-API-Key": key},
            timeout=10,
        )


@pytest.fixture
def service() -> Iterator[Service]:
    store = StateStore.from_url("sqlite://")
    directory = FakePhoneDirectory()
    directory.put("contact", {"contactid": CONTACT.id, "mobilephone": PHONE}, "contactid")
    directory.put("lead", {"leadid": LEAD.id, "mobilephone": "(415) 555-0101"}, "leadid")
    index = PhoneIndex(store)
    PhoneSync(directory, index, lookup_key).run(default_specs("US"), "US", full=True)
    resolver = RecordResolutionService(
        index,
        ResolutionLedger(store),
        directory,
        lookup_key=lookup_key,
        variants=search_variants,
        normalize=lookup_key,
    )
    sessions = SessionCache(store)
    opened = SessionState(
        id=SESSION,
        configuration_id="cfg",
        phone=PHONE,
        started_at=0.0,
        expires_at=4e9,
        regarding_table=CONTACT.table,
        regarding_id=CONTACT.id,
    )
    assert sessions.save(opened, None)
    dataverse = FakeConversationRelinker()
    dataverse.add_messages(SESSION, CONTACT, ["m1", "m2", "m3"])
    settings = load_settings({"CONNECTOR_API__KEYS": KEY})
    services = WebServices(
        api_keys=settings.api.keys, mover=ConversationMover(sessions, dataverse, resolver)
    )
    with running(create_app(services)) as url:
        yield Service(url, resolver, sessions, dataverse)
    index.close()
    store.close()


def test_move_relinks_session_and_messages_and_later_replies_follow(service: Service) -> None:
    assert service.resolver.resolve(PHONE, SENDER).record == CONTACT
    answer = service.move(SESSION, {"table": "lead", "id": LEAD.id})
    assert answer.status_code == 200
    body = answer.json()
    assert body["regarding"] == str(LEAD)
    assert body["previous"] == str(CONTACT)
    assert body["messages_moved"] == 3
    assert body["match_trace"]["decided_by"] == "moved"
    assert service.regarding() == LEAD  # the open session's next reply lands on the lead
    assert service.dataverse.session_regarding[SESSION] == LEAD
    assert {reg for _, reg in service.dataverse.messages.values()} == {LEAD}
    assert service.dataverse.traces[SESSION]["candidates"][0]["record"] == str(CONTACT)
    later = service.resolver.resolve(PHONE, SENDER)
    assert (later.record, later.trace.decided_by) == (LEAD, RECENT_CONVERSATION)


def test_move_of_unknown_session_is_a_404_problem(service: Service) -> None:
    answer = service.move(str(uuid.uuid4()), {"table": "lead", "id": LEAD.id})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"table": "lead", "id": "not-a-guid"},
        {"table": "lead') or (1 eq 1", "id": str(uuid.UUID(int=2))},
        {"table": "x" * 80, "id": str(uuid.UUID(int=2))},
        {"id": str(uuid.UUID(int=2))},
    ],
)
def test_move_rejects_bad_targets_and_changes_nothing(service: Service, body: object) -> None:
    answer = service.move(SESSION, body)
    assert answer.status_code == 422
    assert answer.json()["code"] == "validation_failed"
    assert service.regarding() == CONTACT
    assert service.dataverse.traces == {}


def test_move_needs_an_api_key(service: Service) -> None:
    answer = service.move(SESSION, {"table": "lead", "id": LEAD.id}, key="wrong")
    assert answer.status_code == 401
    assert service.regarding() == CONTACT
    assert service.dataverse.traces == {}


def test_move_to_a_record_dataverse_does_not_have_changes_nothing(service: Service) -> None:
    ghost = RecordRef("lead", str(uuid.UUID(int=3)))
    service.dataverse.missing.add(ghost)
    answer = service.move(SESSION, {"table": "lead", "id": ghost.id})
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
    assert ghost.id in answer.json()["detail"]
    assert service.regarding() == CONTACT
    assert service.resolver.resolve(PHONE, SENDER).record == CONTACT
