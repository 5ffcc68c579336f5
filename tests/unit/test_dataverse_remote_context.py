"""The Dataverse webhook body: a RemoteExecutionContext read as the Web API notes (section
11.7/11.8) describe it, refused when it is not one, and turned into the row to send."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from connector.crm.send_rows import row_from_event, webhook_event
from connector.crm.webhook_registration import header_auth
from connector.dataverse.remote_context import EntityReference, parse_remote_context
from connector.domain.model import MessageCategory
from connector.domain.routing import RecordRef
from connector.emulators.dataverse.router import Emulator
from connector.emulators.dataverse.webhooks import Target, remote_context
from connector.errors import InvalidInputError

ROW_ID = "0C9A5B7E-3F1D-F011-9989-6045BD0A1B2C"
CONTACT_ID = "5e7d2a10-9b3c-ef11-a316-000d3a5a1234"
CONTRACTS = "http:\\/\\/schemas.microsoft.com\\/xrm\\/2011\\/Contracts"
OPTION = '{"__type":"OptionSetValue:' + CONTRACTS + '","Value":'
# As on the wire (section 11.8, trimmed to what matters): ``\/`` escapes, tagged values.
WIRE = (
    '{"CorrelationId":"b7d3e2a1-41c5-4d8e-9f6a-2c3b4d5e6f70","Depth":1,'
    '"InputParameters":[{"key":"Target","value":{"__type":"Entity:' + CONTRACTS + '",'
    '"Attributes":['
    '{"key":"activityid","value":"' + ROW_ID.lower() + '"},'
    '{"key":"smsc_body","value":"Hi Ana"},'
    '{"key":"smsc_direction","value":' + OPTION + '105710001}},'
    '{"key":"smsc_status","value":' + OPTION + '105710000}},'
    '{"key":"smsc_category","value":' + OPTION + '105710001}},'
    '{"key":"regardingobjectid","value":{"__type":"EntityReference:' + CONTRACTS + '",'
    '"Id":"' + CONTACT_ID + '","KeyAttributes":[],"LogicalName":"contact","Name":null,'
    '"RowVersion":null}},'
    '{"key":"modifiedonbehalfby","value":null},'
    '{"key":"createdon","value":"\\/Date(1767605412000)\\/"},'
    '{"key":"modifiedon","value":"\\/Date(1767605412417+0100)\\/"}'
    '],"EntityState":null,"FormattedValues":[{"key":"smsc_direction","value":"Outbound"}],'
    '"Id":"' + ROW_ID.lower() + '","KeyAttributes":[],"LogicalName":"smsc_message",'
    '"RelatedEntities":[],"RowVersion":null}}],'
    '"MessageName":"Create","Mode":1,'
    '"OwningExtension":{"Id":"8ff4bda5-9d4e-ef11-bfe3-00224802dbb1","KeyAttributes":[],'
    '"LogicalName":"sdkmessageprocessingstep","Name":"step","RowVersion":null},'
    '"PrimaryEntityId":"' + ROW_ID + '","PrimaryEntityName":"smsc_message","Stage":40,'
    '"UserId":"75df116d-d9da-e711-a94b-000d3a34ed47"}'
)  # fmt: skip


def test_reads_the_context_as_dataverse_serialises_it() -> None:
    context = parse_remote_context(WIRE.encode())
    assert (context.message_name, context.primary_entity_name) == ("Create", "smsc_message")
    assert context.primary_entity_id == ROW_ID.lower()
    assert context.owning_extension_id == "8ff4bda5-9d4e-ef11-bfe3-00224802dbb1"
    target = context.target
    assert target is not None
    assert target["smsc_direction"] == 105710001
    assert target["regardingobjectid"] == EntityReference("contact", CONTACT_ID)
    assert target["createdon"] == datetime.fromtimestamp(1767605412, UTC)
    # the +hhmm suffix marks the kind, it does not shift the instant
    assert target["modifiedon"] == datetime.fromtimestamp(1767605412.417, UTC)
    assert target["modifiedonbehalfby"] is None


def test_the_webhook_event_is_the_row_to_send() -> None:
    event = webhook_event(WIRE.encode())
    assert event.event_id == ROW_ID.lower()
    json.dumps(event.payload)  # journaled as JSON
    row = row_from_event(event.payload)
    assert row is not None and row.waiting
    assert row.regarding == RecordRef("contact", CONTACT_ID)
    assert (row.body, row.category) == ("Hi Ana", MessageCategory.COMMERCIAL)


def test_a_trimmed_context_keeps_the_row_id_for_a_read_back() -> None:
    trimmed = {
        "MessageName": "Create",
        "PrimaryEntityName": "smsc_message",
        "PrimaryEntityId": ROW_ID,
    }
    event = webhook_event(json.dumps(trimmed).encode())
    assert event.payload["target"] is None and row_from_event(event.payload) is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"PrimaryEntityName": "smsc_message", "PrimaryEntityId": "' + ROW_ID.encode() + b'"}',
        b'{"MessageName": "Create", "PrimaryEntityName": "smsc_message", "PrimaryEntityId": 7}',
        json.dumps(
            {
                "MessageName": "Create",
                "PrimaryEntityName": "smsc_message",
                "PrimaryEntityId": ROW_ID,
                "InputParameters": [{"key": "Target", "value": "not an entity"}],
            }
        ).encode(),
        json.dumps(
            {
                "MessageName": "Create",
                "PrimaryEntityName": "smsc_message",
                "PrimaryEntityId": ROW_ID,
                "InputParameters": [{"key": "Target", "value": {"Attributes": [{"v": 1}]}}],
            }
        ).encode(),
    ],
)
def test_a_body_that_is_not_a_remote_execution_context_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidInputError) as caught:
        webhook_event(body)
    assert caught.value.code == "invalid_remote_context"


@pytest.mark.parametrize(("message", "table"), [("Update", "smsc_message"), ("Create", "contact")])
def test_another_message_or_table_is_refused(message: str, table: str) -> None:
    body = {"MessageName": message, "PrimaryEntityName": table, "PrimaryEntityId": ROW_ID}
    with pytest.raises(InvalidInputError) as caught:
        webhook_event(json.dumps(body).encode())
    assert caught.value.code == "unexpected_event"


def test_the_emulators_post_reads_back_as_the_row_it_was_made_from() -> None:
    core = Emulator()
    contact = core.records.create(core.schema.entities["contact"], {"lastname": "Ana"})
    entity = core.schema.entities["contact"]
    row: dict[str, Any] = dict(contact)
    body = remote_context(entity, row, Target("step", "s", "http://x", {}, []), "corr")
    assert b"\\/Date(" in body and b"http:\\/\\/schemas" in body  # escaped as on the wire
    context = parse_remote_context(body)
    assert context.primary_entity_id == contact["contactid"]
    assert context.target is not None and context.target["lastname"] == "Ana"
    assert isinstance(context.target["ownerid"], EntityReference)
    assert isinstance(context.target["createdon"], datetime)


def test_the_header_auth_setting_escapes_the_key() -> None:
    text = header_auth('a"b&c<d')
    assert text == (
        '<settings><setting name="x-smsc-webhook-key" value="a&quot;b&amp;c&lt;d" /></settings>'
    )
