"""The outbox's writer: new messages, group-committed before the API answers ``202``.

:class:`OutboxAdds` holds what :meth:`~connector.state.outbox.Outbox.add` and
:meth:`~connector.state.outbox.Outbox.add_future` do under the hood: the row a new message
starts as, and the insert that one writer thread runs for every message that queued up
meanwhile, in one transaction (:class:`~connector.state.group_commit.GroupCommitter`). The
insert is where a repeated ``Idempotency-Key`` is answered (the first answer, or
``idempotency_conflict``) and where the message's session change is written beside its row
(:func:`~connector.state.session_writes.write_session`), so it lives apart from the outbox's
claims, which never insert.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from connector.domain.outbound import OutboundMessage
from connector.domain.status import MessageStatus
from connector.errors import StateStoreError, UnprocessableError
from connector.ports import Added, SessionChange
from connector.state.group_commit import GroupCommitter
from connector.state.outbox_table import HANDED, WAITING, message_to_json, outbox_table
from connector.state.session_writes import write_session

_UNSENT = frozenset({MessageStatus.QUEUED, MessageStatus.SCHEDULED})


@dataclass(frozen=True, slots=True)
class _Pending:
    """A row for the group commit, and the session change that goes with it."""

    row: Mapping[str, Any]
    session: SessionChange | None


class OutboxAdds:
    """New outbox rows, written by one writer thread on ``appends`` (the outbox's append
    engine, see :func:`connector.state.group_commit.append_engine`)."""

    def __init__(self, dialect: str, appends: Engine) -> None:
        make = sqlite_insert if dialect == "sqlite" else pg_insert
        # RETURNING tells whether the row went in (an INSERT's rowcount is -1 on psycopg)
        self._insert = make(outbox_table).on_conflict_do_nothing().returning(outbox_table.c.id)
        self._adder = GroupCommitter(appends, self._insert_batch)

    def close(self) -> None:
        """Stop the writer thread."""
        self._adder.close()

    def submit(
        self,
        message: OutboundMessage,
        answer: Mapping[str, Any],
        *,
        idempotency_key: str | None,
        request_hash: str | None,
        session: SessionChange | None,
    ) -> Future[Added]:
        """Hand ``message``'s new row to the writer thread (:meth:`Outbox.add_future`)."""
        row = {
            "id": message.id,
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "answer": json.dumps(dict(answer), ensure_ascii=False),
            "configuration_id": message.configuration_id,
            "to_number": message.to_number,
            "status": message.status.value,
            "message": message_to_json(message),
            "send_state": WAITING if message.status in _UNSENT else HANDED,
            "due_at": message.send_at or message.created_at,
            "attempts": 0,
            "version": 1,
            "synced_version": 0,
            "sync_due_at": 0.0,
            "sync_attempts": 0,
            "created_at": message.created_at,
            "updated_at": message.created_at,
        }
        return self._adder.submit_nowait(_Pending(row, session))

    def _insert_batch(
        self, conn: Connection, pending: Sequence[_Pending]
    ) -> list[Added | Exception]:
        return [self._insert_one(conn, item) for item in pending]

    def _insert_one(self, conn: Connection, pending: _Pending) -> Added | Exception:
        row = pending.row
        if conn.execute(self._insert, row).first() is not None:
            if pending.session is not None and not write_session(conn, *pending.session):
                conn.execute(delete(outbox_table).where(outbox_table.c.id == row["id"]))
                return Added({}, False, session_moved=True)
            return Added(json.loads(str(row["answer"])), True)
        key = row["idempotency_key"]
        found = None
        if key is not None:
            c = outbox_table.c
            query = select(c.request_hash, c.answer).where(c.idempotency_key == key)
            found = conn.execute(query).first()
        if found is None:  # the same message id twice: a programming error
            return StateStoreError(f"message {row['id']} is already in the outbox")
        if found.request_hash != row["request_hash"]:
            return UnprocessableError(
                "this Idempotency-Key was already used with a different request",
                code="idempotency_conflict",
                details={"idempotency_key": key},
            )
        return Added(json.loads(found.answer), False)
