"""Re-link a conversation in Dataverse: the session activity and every message in it.

Implements :class:`~connector.ports.ConversationRelinker` for the conversation move. One GET
lists the session's messages (with their state) and one reads the session's state; then ONE
``$batch`` with one change set patches the session (regarding + match trace) and every message
(regarding), so the move is all or nothing. A completed activity refuses a change that does
not change its state, so a completed row's PATCH reopens it and the next operation completes
it again with the status reason it had (:mod:`connector.crm.activity_rows`).

The caller names the target table: a table Dataverse has no regarding relationship for (no
such table, or one that is not activity-enabled) makes it answer 400 to the bind, which is
the caller's mistake, an :class:`~connector.errors.UnknownReferenceError`, not a failure of
Dataverse.
"""

from __future__ import annotations

import uuid
from typing import Any

from connector.crm import tables
from connector.crm.activity_rows import ActivityState
from connector.dataverse import odata
from connector.dataverse.batch import BatchOperation, ChangeSet
from connector.dataverse.client import DataverseClient
from connector.dataverse.lookups import RowRef, regarding
from connector.domain.record_types import STANDARD_TABLES
from connector.domain.routing import MatchTrace, RecordRef
from connector.errors import UnknownReferenceError

MAX_MESSAGES = 499  # one change set per $batch (1000 operations: two per row at most)
State = tuple[int, int]  # (statecode, statuscode) as read
OPEN: State = (0, 1)


def _row_ref(target: RecordRef) -> RowRef:
    shape = STANDARD_TABLES.get(target.table)
    entity_set = shape.entity_set if shape else f"{target.table}s"
    return RowRef(target.table, entity_set, odata.guid(target.id))


def _patch(path: str, body: dict[str, Any], state: State) -> list[BatchOperation]:
    """``body`` on the row at ``path``; a closed row is reopened by it and closed again."""
    match = {"If-Match": "*"}
    if state[0] == 0:
        return [BatchOperation("PATCH", path, body, headers=match)]
    reopen = {**body, **ActivityState.OPEN.pair}
    again = {"statecode": state[0], "statuscode": state[1]}
    return [
        BatchOperation("PATCH", path, reopen, headers=match),
        BatchOperation("PATCH", path, again, headers=match),
    ]


def relink_change_set(
    session_id: str,
    messages: list[tuple[str, State]],
    target: RecordRef,
    trace: MatchTrace,
    session_state: State = OPEN,
) -> ChangeSet:
    """The session and message PATCHes of one move (pure); ``messages`` are (id, state)."""
    ref = _row_ref(target)
    session_body: dict[str, Any] = {tables.SESSION_MATCH_TRACE: trace.to_json()}
    session_body.update(regarding(tables.SESSION.logical_name, ref))
    session_path = odata.entity_path(tables.SESSION.entity_set, odata.guid(session_id))
    ops = _patch(session_path, session_body, session_state)
    message_body = regarding(tables.MESSAGE.logical_name, ref)
    for message_id, state in messages:
        path = odata.entity_path(tables.MESSAGE.entity_set, odata.guid(message_id))
        ops.extend(_patch(path, message_body, state))
    return ChangeSet(ops)


def _state(row: dict[str, Any]) -> State:
    return (int(row.get("statecode") or 0), int(row.get("statuscode") or 1))


class DataverseConversationRelinker:
    """Moves a session and its messages to another regarding record."""

    def __init__(self, client: DataverseClient) -> None:
        self._client = client

    def relink(self, session_id: str, target: RecordRef, trace: MatchTrace) -> int:
        """Re-link atomically; returns the number of messages moved."""
        column = tables.MESSAGE.value(tables.SESSION_LOOKUP)
        rows = self._client.query(
            tables.MESSAGE.entity_set,
            select=[tables.MESSAGE.id_column, "statecode", "statuscode"],
            filter=odata.eq(column, uuid.UUID(odata.guid(session_id))),
        )
        messages = [(str(row[tables.MESSAGE.id_column]), _state(row)) for row in rows]
        messages = messages[:MAX_MESSAGES]
        session = self._client.retrieve_or_none(
            tables.SESSION.entity_set, odata.guid(session_id), select=["statecode", "statuscode"]
        )
        session_state = _state(session) if session else OPEN
        change_set = relink_change_set(session_id, messages, target, trace, session_state)
        for result in self._client.execute_batch([change_set]):
            if result.error is None:
                continue
            if result.error.status == 400:
                raise UnknownReferenceError(
                    f"{target.table} rows cannot be a conversation's regarding record",
                    details={"table": target.table, "dataverse": result.error.message},
                ) from result.error
            raise result.error
        return len(messages)
