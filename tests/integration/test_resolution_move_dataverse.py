"""The conversation move in Dataverse: the session and all its messages change regarding
together (one change set), with the move's match trace, against the emulator with the
solution schema installed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from connector.bootstrap.server_thread import running
from connector.crm.conversation_links import DataverseConversationRelinker
from connector.dataverse.client import DataverseClient
from connector.domain.routing import RecordRef, moved
from connector.emulators.dataverse.app import create_emulator_app
from connector.errors import DataverseError, UnknownReferenceError
from connector.schema.installer import Installer
from connector.schema.spec import load_schema
from tests.integration.test_installer_emulator import make_client

PHONE = "+14155550101"


@pytest.fixture(scope="module")
def client() -> Iterator[DataverseClient]:
    with running(create_emulator_app()) as url:
        dv = make_client(url)
        Installer(dv, load_schema(), poll_interval=0.02).apply()
        yield dv
        dv.api.close()


def _conversation(client: DataverseClient, contact: str, messages: int) -> tuple[str, list[str]]:
    session = client.create(
        "smsc_sessions",
        {
            "subject": "SMS conversation",
            "smsc_customerphone": PHONE,
            "regardingobjectid_contact_smsc_session@odata.bind": f"/contacts({contact})",
        },
    )
    ids = [
        client.create(
            "smsc_messages",
            {
                "subject": f"SMS {n}",
                "smsc_SessionId@odata.bind": f"/smsc_sessions({session})",
                "regardingobjectid_contact_smsc_message@odata.bind": f"/contacts({contact})",
            },
        )
        for n in range(messages)
    ]
    return session, ids


def _regarding(client: DataverseClient, entity_set: str, row_id: str) -> str:
    row = client.retrieve(entity_set, row_id, select=["_regardingobjectid_value"])
    return str(row["_regardingobjectid_value"])


def test_move_relinks_session_and_every_message_with_the_trace(client: DataverseClient) -> None:
    contact = client.create("contacts", {"lastname": "C", "mobilephone": PHONE})
    lead = client.create("leads", {"lastname": "L", "mobilephone": PHONE})
    session, messages = _conversation(client, contact, 3)
    other_session, other_messages = _conversation(client, contact, 1)
    trace = moved(PHONE, RecordRef("lead", lead), RecordRef("contact", contact))
    count = DataverseConversationRelinker(client).relink(session, RecordRef("lead", lead), trace)
    assert count == 3
    assert _regarding(client, "smsc_sessions", session) == lead
    assert {_regarding(client, "smsc_messages", m) for m in messages} == {lead}
    stored = client.retrieve("smsc_sessions", session, select=["smsc_matchtrace"])
    assert json.loads(stored["smsc_matchtrace"])["decided_by"] == "moved"
    assert _regarding(client, "smsc_sessions", other_session) == contact
    assert _regarding(client, "smsc_messages", other_messages[0]) == contact


def test_move_to_a_missing_record_changes_nothing(client: DataverseClient) -> None:
    contact = client.create("contacts", {"lastname": "C2", "mobilephone": PHONE})
    session, messages = _conversation(client, contact, 2)
    ghost = RecordRef("lead", str(uuid.uuid4()))
    with pytest.raises(DataverseError):
        DataverseConversationRelinker(client).relink(session, ghost, moved(PHONE, ghost, None))
    assert _regarding(client, "smsc_sessions", session) == contact
    assert {_regarding(client, "smsc_messages", m) for m in messages} == {contact}


def test_move_to_a_table_that_cannot_be_regarding_is_the_callers_mistake(
    client: DataverseClient,
) -> None:
    """Found by the API fuzz test: Dataverse's 400 to the bind answered the caller 502."""
    contact = client.create("contacts", {"lastname": "C3", "mobilephone": PHONE})
    session, messages = _conversation(client, contact, 1)
    nowhere = RecordRef("p37g", str(uuid.uuid4()))
    with pytest.raises(UnknownReferenceError, match="p37g"):
        DataverseConversationRelinker(client).relink(session, nowhere, moved(PHONE, nowhere, None))
    assert _regarding(client, "smsc_sessions", session) == contact
    assert _regarding(client, "smsc_messages", messages[0]) == contact
