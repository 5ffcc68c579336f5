"""Outbound messages as Dataverse rows: one change set per message version.

A message's first write upserts its conversation session (by its derived id) and the
``smsc_message`` activity by its own id (the connector's message id), in one change set; later
versions (status changes) upsert the message alone. The activity's parties (from: the sending
user or the configuration's owner; to: the regarding record) go with every version, and a final
version is completed in the same change set (:mod:`connector.crm.activity_rows`). Every write
carries the whole current state, so a retried or reordered write never moves Dataverse
backwards and changes that came close together collapse into one. Option values are those of
``solution_schema/tables/message.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connector.crm import tables
from connector.crm.activity_rows import FINAL_OUTBOUND, Party, parties, with_state
from connector.crm.conversations import (
    SESSION_NAV,
    run_change_sets,
    session_ops,
    when,
)
from connector.dataverse import odata
from connector.dataverse.batch import BatchOperation, ChangeSet
from connector.dataverse.client import DataverseClient
from connector.dataverse.lookups import RowRef, regarding
from connector.domain.conversation import SessionState
from connector.domain.outbound import OutboundMessage
from connector.domain.segments import Encoding
from connector.domain.status import FailureCategory, MessageStatus

DIRECTION_OUTBOUND = 105710001
STATUS_OPTIONS: Mapping[MessageStatus, int] = {
    MessageStatus.ACCEPTED: 105710000,
    MessageStatus.SCHEDULED: 105710000,
    MessageStatus.QUEUED: 105710000,
    MessageStatus.SENDING: 105710001,
    MessageStatus.SENT: 105710002,
    MessageStatus.DELIVERED: 105710003,
    MessageStatus.UNDELIVERED: 105710004,
    MessageStatus.FAILED: 105710005,
    MessageStatus.RECEIVED: 105710006,
    MessageStatus.READ: 105710007,
    MessageStatus.CANCELED: 105710008,
}
STATUS_LABELS: Mapping[int, str] = {
    105710000: "queued",
    105710001: "sending",
    105710002: "sent",
    105710003: "delivered",
    105710004: "undelivered",
    105710005: "failed",
    105710006: "received",
    105710007: "read",
    105710008: "canceled",
    105710009: "blocked",
}
# Failure category options: invalid number, unreachable, opted out, blocked by carrier,
# provider error, consent missing, unknown.
FAILURE_OPTIONS: Mapping[FailureCategory, int] = {
    FailureCategory.INVALID_RECIPIENT: 105710000,
    FailureCategory.UNREACHABLE: 105710001,
    FailureCategory.OPTED_OUT: 105710002,
    FailureCategory.CONSENT_MISSING: 105710005,
    FailureCategory.CARRIER_FILTERED: 105710003,
    FailureCategory.FRAUD_BLOCKED: 105710003,
    FailureCategory.INVALID_PARAMETERS: 105710004,
    FailureCategory.CONFIGURATION: 105710004,
    FailureCategory.THROTTLED: 105710004,
    FailureCategory.PROVIDER_UNAVAILABLE: 105710004,
    FailureCategory.UNKNOWN: 105710006,
}
ENCODING_OPTIONS: Mapping[Encoding, int] = {Encoding.GSM7: 105710000, Encoding.UCS2: 105710001}
CATEGORY_OPTIONS = tables.CATEGORY_OPTIONS


def _owner(owner_id: str | None, is_team: bool) -> dict[str, Any]:
    if not owner_id:
        return {}
    return {"ownerid@odata.bind": f"/{'teams' if is_team else 'systemusers'}({owner_id})"}


def _ref(message: OutboundMessage) -> RowRef | None:
    if not (message.regarding_table and message.regarding_id):
        return None
    table = message.regarding_table
    return RowRef(table, tables.entity_set(table), message.regarding_id)


def outbound_message_row(message: OutboundMessage) -> dict[str, Any]:
    """The upsert body of an outbound message activity (its whole current state). A row
    created in Dataverse (a flow's, a workflow's) keeps the subject and owner its maker gave
    it."""
    preview = message.body.replace("\n", " ")[:120] or "(media)"
    row: dict[str, Any] = {
        "subject": f"SMS to {message.to_number}: {preview}"[:400],
        "smsc_direction": DIRECTION_OUTBOUND,
        "smsc_body": message.body,
        "smsc_from": message.from_number or message.messaging_service_id,
        "smsc_to": message.to_number,
        "smsc_status": STATUS_OPTIONS[message.status],
        "smsc_segments": message.segments,
        "smsc_encoding": ENCODING_OPTIONS[message.encoding],
        "smsc_category": CATEGORY_OPTIONS[message.category],
        tables.MESSAGE_AUTOMATIC: message.automatic,
        f"{SESSION_NAV}@odata.bind": odata.bind(tables.SESSION.entity_set, message.session_id),
        f"{tables.CONFIGURATION_NAV}@odata.bind": odata.bind(
            tables.CONFIGURATION.entity_set, message.configuration_id
        ),
    }
    if message.provider_id:
        row[tables.MESSAGE_PROVIDER_ID] = message.provider_id
    if message.template_id:
        row["smsc_TemplateId@odata.bind"] = odata.bind(
            tables.TEMPLATE.entity_set, message.template_id
        )
    if message.sent_at is not None:
        row["smsc_senton"] = when(message.sent_at)
    if message.delivered_at is not None:
        row["smsc_deliveredon"] = when(message.delivered_at)
    if message.failure is not None:
        row["smsc_failurecategory"] = FAILURE_OPTIONS[message.failure.category]
        row["smsc_providererrorcode"] = message.failure.code
        row["smsc_providererrortext"] = message.failure.reason[:2000]
    ref = _ref(message)
    if ref is not None:
        row.update(regarding(tables.MESSAGE.logical_name, ref))
    if message.created_in_crm:
        del row["subject"]
    else:
        row.update(_owner(message.owner_id, message.owner_is_team))
    row["actualstart"] = when(message.created_at)
    row.update(outbound_parties(message))
    return row


def outbound_parties(message: OutboundMessage) -> dict[str, Any]:
    """From: the sending user or the configuration's owner (the sender number); to: the
    regarding record (the customer's number)."""
    sender_number = message.from_number or message.messaging_service_id
    sender = Party("systemuser", message.sender_user, sender_number)
    recipient = Party(message.regarding_table, message.regarding_id, message.to_number)
    return parties(tables.MESSAGE.logical_name, sender, recipient)


def final_at(message: OutboundMessage) -> float:
    """When a final message ended: delivered, sent, or its last change (failed, canceled)."""
    return message.delivered_at or message.sent_at or message.updated_at or message.created_at


def outbound_change_set(message: OutboundMessage, session: SessionState | None) -> ChangeSet:
    """The message's upsert, after its session's when ``session`` is given (first write); a
    final message (sent, delivered, failed, canceled) is completed by the last operation."""
    ops: list[BatchOperation] = []
    if session is not None:
        ref = None
        if session.regarding_table and session.regarding_id:
            table = session.regarding_table
            ref = RowRef(table, tables.entity_set(table), session.regarding_id)
        ops.extend(session_ops(session, ref))
    path = odata.entity_path(tables.MESSAGE.entity_set, message.id)
    final = FINAL_OUTBOUND.get(message.status)
    ops.extend(with_state(path, outbound_message_row(message), final, final_at(message)))
    return ChangeSet(ops)


class DataverseOutbound:
    """Implements :class:`~connector.ports.OutboundWriter` over the Web API client."""

    def __init__(self, client: DataverseClient) -> None:
        self._client = client

    def write_outbound_many(
        self, writes: Sequence[tuple[OutboundMessage, SessionState | None]]
    ) -> list[Exception | None]:
        """Message versions in ONE ``$batch``, a change set each (with the session on a
        message's first write)."""
        sets = [outbound_change_set(message, session) for message, session in writes]
        return run_change_sets(self._client, sets)
