"""The outbox: outbound messages from the moment a send is accepted until Dataverse has them.

One row per message, keyed by the connector's message id. Three things move a row along:

* **Sending.** :meth:`Outbox.add` commits the row (group commit, durable) before the API
  answers ``202``. Workers :meth:`~Outbox.claim_sends` due rows with a lease, one sender's at
  a time, and record each attempt (:meth:`~Outbox.start_attempt`) *before* calling the
  provider. A row whose lease expired while an attempt was recorded belongs to a worker that
  died mid-send: the next worker gets it with ``uncertain=True`` and must ask the provider
  whether it already went out before sending again (no message is sent twice).
* **Status.** :meth:`~Outbox.apply` moves the message's status forward only (stale and
  repeated news change nothing) with an optimistic ``version`` check.
* **Dataverse.** Every change bumps ``version``; :meth:`~Outbox.claim_unsynced` hands a
  worker the rows whose latest version Dataverse does not have yet, and
  :meth:`~Outbox.mark_synced` records what was written. Status changes that come close
  together collapse into one write of the latest state.

``Idempotency-Key``: the key is unique; the same key with the same request returns the first
answer, with another request raises ``idempotency_conflict``. Portable SQL (SQLAlchemy Core)
for SQLite and PostgreSQL.

:class:`Outbox` is the outbox's whole interface, with its reads and status news; the table
and a message's stored form are in :mod:`connector.state.outbox_table`, and the statements of
each side in a module of its own: adding (:mod:`connector.state.outbox_adds`), sending
(:mod:`connector.state.outbox_sends`) and Dataverse (:mod:`connector.state.outbox_sync`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from connector.domain.outbound import Failure, OutboundMessage
from connector.domain.status import MessageStatus
from connector.errors import StateStoreError
from connector.ports import Added, ClaimedSend, ClaimedSync, SessionChange
from connector.state.db import StateStore
from connector.state.group_commit import append_engine, bookkeeping_engine, durable_engine
from connector.state.outbox_adds import OutboxAdds
from connector.state.outbox_sends import OutboxSends
from connector.state.outbox_sync import OutboxSync
from connector.state.outbox_table import (
    HANDED,
    WAITING,
    message_from_json,
    message_to_json,
    outbox_table,
)

_COMMIT_WAIT_SECONDS = 30.0


class Outbox:
    """The outbox on a :class:`~connector.state.db.StateStore` (see the module docstring)."""

    def __init__(self, store: StateStore, *, max_sync_delay: float = 300.0) -> None:
        self.store = store
        self.max_sync_delay = max_sync_delay
        store.create_all()
        self._books = bookkeeping_engine(store)
        self._durable = durable_engine(store)  # single statements, flushed on return
        self._appends = append_engine(store)
        self._adds = OutboxAdds(store.dialect, self._appends)
        self._sends = OutboxSends(store.dialect, self._books, self._durable)
        self._sync = OutboxSync(store.dialect, self._books)

    def close(self) -> None:
        """Stop the writer thread and release the extra engines."""
        self._adds.close()
        for engine in (self._books, self._durable, self._appends):
            if engine is not self.store.engine:
                engine.dispose()

    # -- adding -------------------------------------------------------------------------
    def add(
        self,
        message: OutboundMessage,
        answer: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        session: SessionChange | None = None,
    ) -> Added:
        """Store ``message`` durably (committed on return) with the API's ``answer``.

        With an ``idempotency_key`` already used: the first answer when ``request_hash`` is
        the same, else :class:`~connector.errors.UnprocessableError` ``idempotency_conflict``.
        ``session``: the message's session change for the session mirror (same state store),
        committed in the same transaction, only if the message is new; when the pair's session
        moved since it was read nothing is stored and the answer says ``session_moved``.
        """
        future = self.add_future(
            message,
            answer,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            session=session,
        )
        try:
            return future.result(timeout=_COMMIT_WAIT_SECONDS)
        except TimeoutError as exc:
            raise StateStoreError(f"no commit within {_COMMIT_WAIT_SECONDS:g} s") from exc

    def add_future(
        self,
        message: OutboundMessage,
        answer: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        session: SessionChange | None = None,
    ) -> Future[Added]:
        """:meth:`add` without waiting: the future completes once the row is committed (or
        with the error). An event loop awaits it (:func:`asyncio.wrap_future`) and so holds
        no thread per waiting request."""
        return self._adds.submit(
            message,
            answer,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            session=session,
        )

    # -- reading ------------------------------------------------------------------------
    def get(self, message_id: str) -> OutboundMessage | None:
        """The message as it stands, or None."""
        c = outbox_table.c
        try:
            with self._books.connect() as conn:
                text = conn.execute(select(c.message).where(c.id == message_id)).scalar()
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot read the outbox: {type(exc).__name__}") from exc
        return None if text is None else message_from_json(str(text))

    def exists(self, message_id: str) -> bool:
        """Whether the outbox has this message (one indexed lookup)."""
        c = outbox_table.c
        with self._books.connect() as conn:
            return conn.execute(select(c.id).where(c.id == message_id)).first() is not None

    def last_error(self, message_id: str) -> str | None:
        """The last transient failure of a message still waiting (for ``GET``)."""
        c = outbox_table.c
        with self._books.connect() as conn:
            value = conn.execute(select(c.last_error).where(c.id == message_id)).scalar()
        return None if value is None else str(value)

    def provider_ids_between(self, to_number: str, since: float) -> set[str]:
        """Provider ids of messages to ``to_number`` created since ``since`` (recovery)."""
        c = outbox_table.c
        query = select(c.message).where(c.to_number == to_number, c.created_at >= since - 3600)
        with self._books.connect() as conn:
            messages = [message_from_json(str(text)) for text in conn.execute(query).scalars()]
        return {m.provider_id for m in messages if m.provider_id}

    # -- sending ------------------------------------------------------------------------
    def senders_due(self, now: float) -> list[str]:
        """Configurations with messages due for sending (or whose worker died mid-send)."""
        return self._sends.senders_due(now)

    def next_send_due(self) -> float | None:
        """When the earliest waiting message is due (its send time, or its lease), or None."""
        return self._sends.next_due()

    def claim_sends(
        self, configuration_id: str, limit: int, *, lease_seconds: float, now: float | None = None
    ) -> list[ClaimedSend]:
        """Lease up to ``limit`` due messages of one sender, oldest first."""
        return self._sends.claim(configuration_id, limit, lease_seconds=lease_seconds, now=now)

    def start_attempt(self, claimed: ClaimedSend, *, lease_seconds: float, now: float) -> bool:
        """Record that a provider call is about to start (committed before it); False when
        the lease was lost (another worker has the message now: do not send)."""
        return self._sends.start_attempt(claimed, lease_seconds=lease_seconds, now=now)

    def handed(self, claimed: ClaimedSend, message: OutboundMessage) -> bool:
        """The provider has the message (or it ended before reaching it): store ``message``
        as its state and stop sending it. Status news that came meanwhile is kept."""
        return self._sends.handed(claimed, message)

    def retry_later(
        self, claimed: ClaimedSend, due_at: float, error: str, *, uncertain: bool
    ) -> bool:
        """A transient failure: try again at ``due_at``. ``uncertain``: the provider may have
        taken it (timeout, 5xx): the next attempt asks first."""
        return self._sends.retry_later(claimed, due_at, error, uncertain=uncertain)

    # -- status -------------------------------------------------------------------------
    def apply(
        self,
        message_id: str,
        status: MessageStatus,
        at: float,
        *,
        provider_id: str | None = None,
        failure: Failure | None = None,
    ) -> OutboundMessage | None:
        """Apply status news; the message after it, or None (unknown id or stale news).

        News from the provider about a message still waiting means an attempt reached it
        (its worker died before recording that): the message is handed, never resent.
        """
        c = outbox_table.c
        for _ in range(10):
            with self._books.connect() as conn:
                row = conn.execute(
                    select(c.message, c.version, c.send_state).where(c.id == message_id)
                ).first()
            if row is None:
                return None
            current = message_from_json(str(row.message))
            changed = current.with_status(status, at, provider_id=provider_id, failure=failure)
            if changed is None:
                return None
            values: dict[str, Any] = {
                "message": message_to_json(changed),
                "status": changed.status.value,
                "version": row.version + 1,
                "sync_due_at": 0.0,
                "updated_at": at,
            }
            if row.send_state == WAITING and provider_id:
                values.update(send_state=HANDED, claim_token=None, lease_until=None)
            query = (
                update(outbox_table)
                .where(c.id == message_id, c.version == row.version)
                .values(**values)
            )
            with self._books.begin() as conn:
                if conn.execute(query).rowcount == 1:
                    return changed
        raise StateStoreError(f"message {message_id} kept changing while its status was applied")

    # -- Dataverse ------------------------------------------------------------------------
    def claim_unsynced(
        self, limit: int, *, lease_seconds: float = 60.0, now: float | None = None
    ) -> list[ClaimedSync]:
        """Lease up to ``limit`` messages whose latest version Dataverse lacks, in order of
        their last change (a message's first write before its later ones)."""
        return self._sync.claim(limit, lease_seconds=lease_seconds, now=now)

    def mark_synced(self, items: Sequence[ClaimedSync]) -> None:
        """Dataverse has these versions (later changes stay due)."""
        self._sync.mark_synced(items)

    def sync_failed(
        self, items: Sequence[ClaimedSync], *, retry_after: float | None = None
    ) -> None:
        """Writing failed: back off (exponentially, honouring ``retry_after``)."""
        self._sync.failed(items, retry_after=retry_after, max_delay=self.max_sync_delay)

    def next_sync_due(self) -> float | None:
        """When the earliest unsynced message is due, or None when Dataverse has them all."""
        return self._sync.next_due()

    def counts(self) -> dict[str, int]:
        """Messages waiting to be sent and versions not yet in Dataverse."""
        c = outbox_table.c
        with self._books.connect() as conn:
            waiting = conn.execute(select(func.count()).where(c.send_state == WAITING)).scalar()
            unsynced = conn.execute(
                select(func.count()).where(c.version > c.synced_version)
            ).scalar()
        return {"waiting": int(waiting or 0), "unsynced": int(unsynced or 0)}
