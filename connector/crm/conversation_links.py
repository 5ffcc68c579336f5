"""Re-link a conversation in Dataverse: the session activity and every message in it.

Implements :class:`~connector.ports.ConversationRelinker` for the conversation move. One GET
lists the session's messages; then ONE ``$batch`` with one change set patches the session
(regarding + match trace) and every message (regarding), so the move is all or nothing.

The caller names the target table: a table Dataverse has no regarding relationship for (no
such table, or one that is not activity-enabled) makes it answer 400 to the bind, which is
the caller's mistake, an :class:`~connector.errors.UnknownReferenceError`, not a failure of
Dataverse.
"""

from __future__ import annotations

import uuid
from typing import Any

from connector.crm import tables
from connector.dataverse import odata
from connector.dataverse.batch import BatchOperation, ChangeSet
from connector.dataverse.client import DataverseClient
from connector.dataverse.lookups import RowRef, regarding
from connector.domain.record_types import STANDARD_TABLES
from connector.domain.routing import MatchTrace, RecordRef
from connector.errors import UnknownReferenceError

MAX_MESSAGES = 999  # one change set per $batch (1000 operations, one is the session)


def _row_ref(target: RecordRef) -> RowRef:
    shape = STANDARD_TABLES.get(target.table)
    entity_set = shape.entity_set if shape else f"{target.table}s"
    return RowRef(target.table, entity_set, odata.guid(target.id))


def relink_change_set(
    session_id: str, message_ids: list[str], target: RecordRef, trace: MatchTrace
) -> ChangeSet:
    """The session and message PATCHes of one move (pure)."""
    ref = _row_ref(target)
    session_body: dict[str, Any] = {tables.SESSION_MATCH_TRACE: trace.to_json()}
    session_body.update(regarding(tables.SESSION.logical_name, ref))
    ops = [
        BatchOperation(
            "PATCH",
            odata.entity_path(tables.SESSION.entity_set, odata.guid(session_id)),
            session_body,
            headers={"If-Match": "*"},
        )
    ]
    message_body = regarding(tables.MESSAGE.logical_name, ref)
    for message_id in message_ids:
        path = odata.entity_path(tables.MESSAGE.entity_set, odata.guid(message_id))
        ops.append(BatchOperation("PATCH", path, message_body, headers={"If-Match": "*"}))
    return ChangeSet(ops)


class DataverseConversationRelinker:
    """Moves a session and its messages to another regarding record."""

    def __init__(self, client: DataverseClient) -> None:
        self._client = client

    def relink(self, session_id: str, target: RecordRef, trace: MatchTrace) -> int:
        """Re-link atomically; returns the number of messages moved."""
        column = tables.MESSAGE.value(tables.SESSION_LOOKUP)
        rows = self._client.query(
            tables.MESSAGE.entity_set,
            select=[tables.MESSAGE.id_column],
            filter=odata.eq(column, uuid.UUID(odata.guid(session_id))),
        )
        ids = [str(row[tables.MESSAGE.id_column]) for row in rows][:MAX_MESSAGES]
        for result in self._client.execute_batch(
            [relink_change_set(session_id, ids, target, trace)]
        ):
            if result.error is None:
                continue
            if result.error.status == 400:
                raise UnknownReferenceError(
                    f"{target.table} rows cannot be a conversation's regarding record",
                    details={"table": target.table, "dataverse": result.error.message},
                ) from result.error
            raise result.error
        return len(ids)
