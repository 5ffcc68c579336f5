"""What the connector made of a message, on its row in the emulator over HTTP: the keyword an
inbound message was read as and the review flag (inbound), the automatic mark (outbound)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest

from connector.crm import tables
from connector.crm.configuration_store import DataverseConfigurationStore
from connector.crm.conversations import DataverseConversations
from connector.crm.outbound_rows import DataverseOutbound
from connector.dataverse.client import DataverseClient
from connector.domain.model import Configuration, Provider
from connector.domain.outbound import OutboundMessage
from connector.domain.routing import RecordRef
from tests.port_contracts import CUSTOMER, SENDER, inbound_write

NOW = 1_767_000_000.0
MARKS = [
    tables.MESSAGE_KEYWORD,
    tables.MESSAGE_NEEDS_REVIEW,
    tables.MESSAGE_REVIEW_REASON,
    tables.MESSAGE_AUTOMATIC,
]


@pytest.fixture
def setup(installed: DataverseClient) -> tuple[str, RecordRef]:
    store = DataverseConfigurationStore(installed)
    config = store.save_configuration(Configuration("Main", Provider.TWILIO, SENDER))
    contact = installed.create("contacts", {"lastname": "Customer", "mobilephone": CUSTOMER})
    return str(config.id), RecordRef("contact", contact)


def _marks(client: DataverseClient, key: str | dict[str, Any]) -> tuple[Any, ...]:
    row = client.retrieve(tables.MESSAGE.entity_set, key, select=MARKS)
    return tuple(row.get(name) for name in MARKS)


def test_inbound_keyword_and_review_reason_are_written_with_the_message(
    installed: DataverseClient, setup: tuple[str, RecordRef]
) -> None:
    config_id, contact = setup
    writer = DataverseConversations(installed)
    sids = ["SM" + digit * 32 for digit in "123"]
    plain = inbound_write(config_id, contact, sids[0], "hello", NOW)
    keyword = replace(inbound_write(config_id, contact, sids[1], "stop", NOW + 1), keyword="STOP")
    review = replace(
        inbound_write(config_id, contact, sids[2], "please stop texting me", NOW + 2),
        review_reason="mentions stop without being the keyword",
    )
    assert writer.write_inbound_many([plain, keyword, review]) == [None, None, None]
    by_sid = {sid: {tables.MESSAGE_PROVIDER_ID: sid} for sid in sids}
    assert _marks(installed, by_sid[sids[0]]) == (None, False, None, False)
    assert _marks(installed, by_sid[sids[1]]) == ("STOP", False, None, False)
    assert _marks(installed, by_sid[sids[2]]) == (
        None,
        True,
        "mentions stop without being the keyword",
        False,
    )
    writer.write_inbound(review)  # a replay changes nothing
    assert len(list(installed.query(tables.MESSAGE.entity_set, select=MARKS))) == 3


def test_outbound_automatic_mark_is_written_with_every_version(
    installed: DataverseClient, setup: tuple[str, RecordRef]
) -> None:
    config_id, contact = setup
    first = inbound_write(config_id, contact, "SM" + "9" * 32, "YES", NOW)
    DataverseConversations(installed).write_inbound(first)  # the session exists
    reply = OutboundMessage(
        id=str(uuid.uuid4()),
        configuration_id=config_id,
        to_number=CUSTOMER,
        from_number=SENDER,
        body="You are subscribed. Reply STOP to opt out.",
        session_id=first.session.id,
        created_at=NOW + 1,
        automatic=True,
    )
    agent = replace(reply, id=str(uuid.uuid4()), body="Hi, how can I help?", automatic=False)
    writer = DataverseOutbound(installed)
    assert writer.write_outbound_many([(reply, None), (agent, None)]) == [None, None]
    assert _marks(installed, reply.id)[3] is True
    assert _marks(installed, agent.id)[3] is False
    sent = reply.with_status(reply.status.__class__("sent"), NOW + 2, provider_id="SM" + "8" * 32)
    assert sent is not None
    assert writer.write_outbound_many([(sent, None)]) == [None]
    assert _marks(installed, reply.id)[3] is True
