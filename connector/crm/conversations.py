"""Conversations in Dataverse: the inbound change set, session updates, blocked numbers.

Implements :class:`~connector.ports.ConversationWriter` and
:class:`~connector.ports.ConfigurationDirectory` over the Web API client. One inbound message
is ONE ``$batch`` change set: the session upserted by its (derived) id, the message upserted
by its provider-message-id alternate key, an in-app notification per recipient and a note per
MMS attachment, each addressed by a derived id, so replaying the change set after a crash
changes nothing. A waiting session's escalation is a change set of notifications, one per
team member, addressed the same way. Every notification links its session. Table names come
from :mod:`connector.crm.tables`; the session and message columns are named once, here
(``solution_schema/tables/{session,message}.yaml``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from connector.crm import tables
from connector.crm.activity_rows import ActivityState, Party, parties, with_state
from connector.crm.phone_queries import lead_body
from connector.dataverse import odata
from connector.dataverse.batch import BatchOperation, ChangeSet
from connector.dataverse.client import DataverseClient
from connector.dataverse.failures import is_duplicate
from connector.dataverse.lookups import RowRef, regarding
from connector.domain.conversation import (
    Acceptance,
    EscalationWrite,
    InboundWrite,
    NewLead,
    SessionState,
    derived_id,
    utc,
)
from connector.domain.model import Configuration, Keyword
from connector.domain.phone import to_key_value
from connector.errors import (
    ConnectorError,
    DataverseError,
    DataverseUnavailableError,
    is_transient,
)
from connector.log_config import get_logger

log = get_logger(__name__)

ACCEPTANCE_OPTIONS: Mapping[Acceptance, int] = {
    Acceptance.PENDING: 105710000,
    Acceptance.ACCEPTED: 105710001,
    Acceptance.DISMISSED: 105710002,
    Acceptance.BLOCKED: 105710003,
}
DIRECTION_INBOUND = 105710000
DIRECTION_OUTBOUND = 105710001
STATUS_RECEIVED = 105710006
STATUS_BLOCKED = 105710009
SESSION_NAV = "smsc_SessionId"


def when(seconds: float) -> str:
    """Epoch seconds as the ISO 8601 UTC text Dataverse takes."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _regarding_ref(table: str | None, row_id: str | None) -> RowRef | None:
    if not (table and row_id):
        return None
    return RowRef(table, tables.entity_set(table), row_id)


def _owner(session: SessionState) -> dict[str, Any]:
    if not session.owner_id:
        return {}
    target = "teams" if session.owner_is_team else "systemusers"
    return {"ownerid@odata.bind": f"/{target}({session.owner_id})"}


def session_row(session: SessionState, regarding_ref: RowRef | None) -> dict[str, Any]:
    """The upsert body of a session activity."""
    row: dict[str, Any] = {
        "subject": f"SMS conversation with {session.phone}"[:400],
        f"{tables.CONFIGURATION_NAV}@odata.bind": odata.bind(
            tables.CONFIGURATION.entity_set, session.configuration_id
        ),
        "smsc_customerphone": session.phone,
        "smsc_startedon": when(session.started_at),
        "smsc_endedon": when(session.closed_at or session.expires_at),
        "smsc_lastmessageon": when(session.last_message_at or session.started_at),
        "smsc_isopen": session.closed_at is None,
        "actualstart": when(session.started_at),
        "smsc_unreadcount": session.unread,
        "smsc_acceptance": ACCEPTANCE_OPTIONS[session.acceptance],
        "smsc_matchtrace": session.match_trace[:8000],
        tables.SESSION_FOLDER: tables.SESSION_FOLDER_OPTIONS[session.archived],
    }
    if regarding_ref is not None:
        row.update(regarding(tables.SESSION.logical_name, regarding_ref))
    row.update(_owner(session))
    return row


def session_end(session: SessionState) -> float:
    """When a closed session ended (its close time; the timeout for an open one)."""
    return session.closed_at if session.closed_at is not None else session.expires_at


def closed_session_columns(session: SessionState) -> dict[str, Any]:
    """The columns saying a session is over: not open, its end time."""
    return {"smsc_isopen": False, "smsc_endedon": when(session_end(session))}


def session_ops(session: SessionState, regarding_ref: RowRef | None) -> list[BatchOperation]:
    """The session's upsert, and for a closed session the operation completing it."""
    path = odata.entity_path(tables.SESSION.entity_set, session.id)
    closed = ActivityState.COMPLETED if session.closed_at is not None else None
    return list(with_state(path, session_row(session, regarding_ref), closed, session.closed_at))


def inbound_parties(write: InboundWrite) -> dict[str, Any]:
    """From: the regarding record (the customer's number); to: the configuration's owner
    (the sender number)."""
    message = write.message
    sender = Party(write.regarding_table, write.regarding_id, message.from_number)
    recipient = Party("systemuser", write.recipient_user, message.to_number)
    return parties(tables.MESSAGE.logical_name, sender, recipient)


def message_row(write: InboundWrite, regarding_ref: RowRef | None) -> dict[str, Any]:
    """The upsert body of an inbound message activity.

    The keyword it was read as and the review flag are written only when set: an unmarked
    message keeps the columns' defaults, and a replay never clears a flag an agent changed.
    """
    message = write.message
    preview = message.body.replace("\n", " ")[:120] or "(media)"
    row: dict[str, Any] = {
        "subject": f"SMS from {message.from_number}: {preview}"[:400],
        "smsc_direction": DIRECTION_INBOUND,
        "smsc_body": message.body,
        "smsc_from": message.from_number,
        "smsc_to": message.to_number,
        "smsc_status": STATUS_BLOCKED if write.blocked else STATUS_RECEIVED,
        "smsc_receivedon": when(message.received_at),
        "actualstart": when(message.received_at),
        f"{SESSION_NAV}@odata.bind": odata.bind(tables.SESSION.entity_set, write.session.id),
        f"{tables.CONFIGURATION_NAV}@odata.bind": odata.bind(
            tables.CONFIGURATION.entity_set, write.session.configuration_id
        ),
    }
    if write.keyword:
        row[tables.MESSAGE_KEYWORD] = write.keyword[:50]
    if write.review_reason:
        row[tables.MESSAGE_NEEDS_REVIEW] = True
        row[tables.MESSAGE_REVIEW_REASON] = write.review_reason[:200]
    if regarding_ref is not None:
        row.update(regarding(tables.MESSAGE.logical_name, regarding_ref))
    row.update(_owner(write.session))
    row.update(inbound_parties(write))
    return row


def inbound_change_set(write: InboundWrite) -> ChangeSet:
    """Every operation of one inbound message, applied together or not at all: the session,
    the message (received: completed by the change set's last operation), notifications,
    notes. A lead not known to exist yet (``new_lead``) is created first, create-only."""
    ref = _regarding_ref(write.regarding_table, write.regarding_id)
    message_key = {tables.MESSAGE_PROVIDER_ID: write.message.provider_id}
    message_path = odata.entity_path(tables.MESSAGE.entity_set, message_key)
    received = write.message.received_at
    body, complete = with_state(
        message_path, message_row(write, ref), ActivityState.COMPLETED, received
    )
    ops = [*lead_ops(write.new_lead), *session_ops(write.session, ref), body]
    for user in write.notify:
        ops.append(_notification(write, user))
    for index, media in enumerate(write.attachments):
        note_id = derived_id("note", write.message.provider_id, str(index))
        note = {
            "subject": media.filename,
            "filename": media.filename,
            "mimetype": media.content_type,
            "documentbody": base64.b64encode(media.data).decode("ascii"),
            f"objectid_{tables.MESSAGE.logical_name}@odata.bind": "/" + message_path,
        }
        ops.append(BatchOperation("PATCH", odata.entity_path("annotations", note_id), note))
    ops.append(complete)
    return ChangeSet(ops)


def lead_ops(lead: NewLead | None) -> list[BatchOperation]:
    """The create-only write of a new lead (``If-None-Match: *``: a lead that exists, made by
    a racing or earlier writer or edited by a seller since, is never overwritten; its 412
    fails the change set, which is then written again without this operation)."""
    if lead is None:
        return []
    path = odata.entity_path("leads", lead.lead_id)
    body = lead_body(lead.phone, lead.owner_id)
    return [BatchOperation("PATCH", path, body, headers={"If-None-Match": "*"})]


def notification(note_id: str, user: str, title: str, text: str, session_id: str) -> BatchOperation:
    """The upsert of one in-app notification for ``user`` with an action opening the session."""
    url = f"?pagetype=entityrecord&etn={tables.SESSION.logical_name}&id={session_id}"
    action = {"title": "Open conversation", "data": {"url": url, "navigationTarget": "dialog"}}
    body = {
        "title": title[:200],
        "body": text[:1000],
        "ownerid@odata.bind": f"/systemusers({user})",
        "data": json.dumps({"actions": [action]}),
    }
    return BatchOperation("PATCH", odata.entity_path("appnotifications", note_id), body)


def _notification(write: InboundWrite, user: str) -> BatchOperation:
    message = write.message
    return notification(
        derived_id("notification", message.provider_id, user),
        user,
        f"New SMS from {message.from_number}",
        message.body or "(media)",
        write.session.id,
    )


def escalation_change_set(write: EscalationWrite) -> ChangeSet:
    """The team's alert for one waiting session: a notification per member."""
    session = write.session
    since = utc(session.awaiting_since or session.last_message_at).strftime("%H:%M UTC")
    title = f"SMS from {session.phone} is waiting"
    text = f"{session.phone} has been waiting since {since} and nobody has taken it yet."
    return ChangeSet(
        [
            notification(write.notification_id(user), user, title, text, session.id)
            for user in write.notify
        ]
    )


def run_change_sets(client: DataverseClient, sets: Sequence[ChangeSet]) -> list[Exception | None]:
    """Change sets in ONE ``$batch``, continuing past a failed one; the error of each (None:
    written). A failure of the whole request (unreachable, throttled) is every set's."""
    try:
        results = client.execute_batch(sets, continue_on_error=True)
    except DataverseError as exc:
        return [exc] * len(sets)
    errors: list[Exception | None] = []
    position = 0
    for change_set in sets:
        mine = results[position : position + len(change_set.operations)]
        position += len(change_set.operations)
        if all(r.ok for r in mine):
            errors.append(None)
            continue
        error = next((r.error for r in mine if r.error is not None), None)
        errors.append(error or DataverseUnavailableError("change set not run"))
    return errors


def _lead_makers(writes: Sequence[InboundWrite]) -> list[int | None]:
    """For each write, which write of ``writes`` creates its new lead: the first one that
    needs it (None: it needs none). A second create-only write of one lead in a ``$batch``
    would fail with 412 and cost another request."""
    first: dict[str, int] = {}
    return [
        None if write.new_lead is None else first.setdefault(write.new_lead.lead_id, index)
        for index, write in enumerate(writes)
    ]


def _lead_left_unmade(error: Exception | None) -> bool:
    """Whether the write that was to create a lead failed without it existing (a 412 means it
    exists: a later write bound to it failed for a reason of its own)."""
    return error is not None and not (isinstance(error, DataverseError) and is_duplicate(error))


class DataverseConversations:
    """Conversation writes and configuration reads through the Web API client."""

    def __init__(self, client: DataverseClient) -> None:
        self._client = client

    def write_inbound(self, write: InboundWrite) -> None:
        """One ``$batch`` with one change set; raises the failure."""
        error = self.write_inbound_many([write])[0]
        if error is not None:
            raise error

    def write_inbound_many(self, writes: Sequence[InboundWrite]) -> list[Exception | None]:
        """ONE ``$batch`` request, a change set per message, continuing past a failed one.

        A failure of the whole request (Dataverse unreachable, throttled) is every write's.
        Several messages needing one new lead (a new number that texted twice) create it
        in the first one's change set only; the later ones are bound to it (change sets run
        in order, so it exists by then), and are written again with it should that first
        change set fail without the lead existing. A change set that failed only because its
        new lead exists already (another worker, or an earlier attempt whose answer was lost,
        created it) is written again without the lead. Whatever is written again goes in one
        more ``$batch``.
        """
        makers = _lead_makers(writes)
        sent = [
            write if makers[i] in (i, None) else replace(write, new_lead=None)
            for i, write in enumerate(writes)
        ]
        errors = self._run([inbound_change_set(write) for write in sent])
        again: dict[int, InboundWrite] = {}
        for i, (write, error) in enumerate(zip(writes, errors, strict=True)):
            maker = makers[i]
            if maker is None or not isinstance(error, DataverseError):
                continue
            if maker == i and is_duplicate(error):
                again[i] = replace(write, new_lead=None)  # it exists: bound to it
            elif maker != i and _lead_left_unmade(errors[maker]) and not is_transient(error):
                again[i] = write  # the write that was to create it failed: create it here
        if again:
            retried = self.write_inbound_many(list(again.values()))
            for i, error in zip(again, retried, strict=True):
                errors[i] = error
        return errors

    def write_escalations(self, writes: Sequence[EscalationWrite]) -> list[Exception | None]:
        """The team alerts of waiting sessions in ONE ``$batch``, a change set each."""
        return self._run([escalation_change_set(write) for write in writes])

    def _run(self, sets: Sequence[ChangeSet]) -> list[Exception | None]:
        return run_change_sets(self._client, sets)

    def update_session(self, session: SessionState) -> None:
        """Write owner, acceptance, folder and counters of a session after an agent acted.

        An open session is one PATCH; a closed one (closed now, or acted on after it closed)
        is one ``$batch`` whose change set writes it and completes it again (a completed
        activity refuses any other change).
        """
        body: dict[str, Any] = {
            "smsc_acceptance": ACCEPTANCE_OPTIONS[session.acceptance],
            "smsc_unreadcount": session.unread,
            tables.SESSION_FOLDER: tables.SESSION_FOLDER_OPTIONS[session.archived],
        }
        body.update(_owner(session))
        if session.closed_at is None:
            self._client.update(tables.SESSION.entity_set, session.id, body)
            return
        body.update(closed_session_columns(session))
        path = odata.entity_path(tables.SESSION.entity_set, session.id)
        ops = with_state(path, body, ActivityState.COMPLETED, session.closed_at)
        for result in self._client.execute_batch([ChangeSet(list(ops))]):
            if result.error is not None:
                raise result.error

    def close_sessions(self, sessions: Sequence[SessionState]) -> list[Exception | None]:
        """Closed sessions (timed out) in ONE ``$batch``, a change set each: open flag off,
        end time, the activity completed."""
        sets = []
        for session in sessions:
            path = odata.entity_path(tables.SESSION.entity_set, session.id)
            body = closed_session_columns(session)
            end = session_end(session)
            sets.append(ChangeSet(list(with_state(path, body, ActivityState.COMPLETED, end))))
        return self._run(sets)

    def block_number(self, configuration_id: str, phone: str, blocked_by: str | None) -> None:
        """Upsert the blocked-number row of (phone, configuration)."""
        row: dict[str, Any] = {
            "smsc_name": phone,
            "smsc_phone": to_key_value(phone),
            "smsc_blockedon": when(datetime.now(tz=UTC).timestamp()),
            f"{tables.CONFIGURATION_NAV}@odata.bind": odata.bind(
                tables.CONFIGURATION.entity_set, configuration_id
            ),
        }
        if blocked_by:
            row["smsc_BlockedById@odata.bind"] = f"/systemusers({blocked_by})"
        key_id = derived_id("blocked", configuration_id, phone)
        self._client.upsert(tables.BLOCKED_NUMBER.entity_set, key_id, row)

    def active_configurations(self) -> Sequence[Configuration]:
        """Every active configuration row."""
        rows = self._client.query(
            tables.CONFIGURATION.entity_set, filter=odata.eq("smsc_active", True)
        )
        return [tables.configuration_from_row(row) for row in rows]

    def blocked_numbers(self) -> Mapping[str, frozenset[str]]:
        """Configuration id -> blocked numbers (E.164)."""
        lookup = tables.BLOCKED_NUMBER.value(tables.CONFIGURATION_LOOKUP)
        found: dict[str, set[str]] = {}
        for row in self._client.query(
            tables.BLOCKED_NUMBER.entity_set, select=["smsc_phone", lookup]
        ):
            digits = str(row.get("smsc_phone") or "").lstrip("+")
            if digits and row.get(lookup):
                found.setdefault(str(row[lookup]), set()).add("+" + digits)
        return {k: frozenset(v) for k, v in found.items()}

    def keywords(self) -> Sequence[Keyword]:
        """Every ``smsc_keyword`` row (keywords are few: one query); a row the connector
        cannot read (an option value it does not know) is skipped with a logged reason."""
        found = []
        for row in self._client.query(tables.KEYWORD.entity_set):
            try:
                found.append(tables.keyword_from_row(row))
            except ConnectorError as exc:
                log.warning("keywords.row_skipped", reason=exc.message[:200])
        return found


SEVERITY_ERROR = 105710002


class DataverseErrorLog:
    """Implements :class:`~connector.ports.ErrorLog` with ``smsc_errorlog`` rows."""

    def __init__(self, client: DataverseClient, component: str = "inbound") -> None:
        self._client = client
        self._component = component

    def record(self, key: str, code: str, message: str, details: Mapping[str, Any]) -> None:
        """Upsert the row for ``key``; a failure to log is itself only logged."""
        row = {
            "smsc_name": message[:400],
            "smsc_occurredon": when(datetime.now(tz=UTC).timestamp()),
            "smsc_severity": SEVERITY_ERROR,
            "smsc_component": self._component,
            "smsc_code": code[:100],
            "smsc_details": json.dumps(dict(details), default=str, ensure_ascii=False)[:100000],
        }
        try:
            self._client.upsert(tables.ERROR_LOG.entity_set, derived_id("errorlog", key), row)
        except DataverseError as exc:
            log.warning("errorlog.write_failed", key=key, code=exc.code)
