"""The activity side of message and session rows (pure): Open pair in every body, a closing
operation in the same change set for a final row, parties as bound rows or addresses."""

from __future__ import annotations

from connector.crm.activity_rows import ActivityState, Party, with_state
from connector.crm.outbound_rows import outbound_change_set
from connector.dataverse.lookups import Participation
from connector.domain.outbound import OutboundMessage
from connector.domain.status import MessageStatus

CONTACT = "00000000-0000-0000-0000-0000000000c1"
USER = "00000000-0000-0000-0000-0000000000a1"


def _message(status: MessageStatus) -> OutboundMessage:
    return OutboundMessage(
        id="00000000-0000-0000-0000-0000000000e1",
        configuration_id="00000000-0000-0000-0000-0000000000f1",
        to_number="+14155550123",
        from_number="+14155550100",
        body="hi",
        session_id="00000000-0000-0000-0000-0000000000d1",
        created_at=1_000.0,
        regarding_table="lead",
        regarding_id=CONTACT,
        sender_user=USER,
        status=status,
        sent_at=1_010.0 if status is MessageStatus.SENT else None,
    )


def test_an_open_row_is_one_operation_carrying_the_open_pair() -> None:
    (only,) = with_state("rows(1)", {"subject": "x"}, None, None)
    assert only.body == {"subject": "x", "statecode": 0, "statuscode": 1}


def test_a_final_row_is_closed_by_a_second_operation_with_its_end() -> None:
    body, close = with_state("rows(1)", {"subject": "x"}, ActivityState.CANCELED, 0.0)
    assert body.body is not None and body.body["statecode"] == 0
    assert close.body == {"statecode": 2, "statuscode": 3, "actualend": "1970-01-01T00:00:00Z"}


def test_an_outbound_message_is_completed_once_sent_and_not_before() -> None:
    queued = outbound_change_set(_message(MessageStatus.QUEUED), None)
    assert len(queued.operations) == 1
    sent = outbound_change_set(_message(MessageStatus.SENT), None)
    body, close = sent.operations
    assert close.body is not None and close.body["statecode"] == 1
    assert close.body["actualend"] == "1970-01-01T00:16:50Z"  # sent at 1010
    assert body.body is not None
    parties = body.body["smsc_message_activity_parties"]
    assert parties[0] == {
        "participationtypemask": 1,
        "partyid_systemuser@odata.bind": f"/systemusers({USER})",
        "addressused": "+14155550100",
    }
    # a lead is not a party target of a custom activity: its number stands for it
    assert parties[1] == {"participationtypemask": 2, "addressused": "+14155550123"}


def test_a_party_without_a_row_or_number_still_has_an_address() -> None:
    assert Party(None, None).item(Participation.SENDER).get("addressused") == "unknown"
