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
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from connector.domain.model import MessageCategory
from connector.domain.outbound import Failure, OutboundMessage
from connector.domain.segments import Encoding
from connector.domain.status import FailureCategory, MessageStatus
from connector.errors import StateStoreError, UnprocessableError
from connector.ports import Added, ClaimedSend, ClaimedSync, SessionChange
from connector.state.db import StateStore, metadata, partial_index
from connector.state.group_commit import (
    GroupCommitter,
    append_engine,
    bookkeeping_engine,
    durable_engine,
)
from connector.state.session_writes import write_session

# send_state: where the hand-over to the provider stands
WAITING = "waiting"  # not handed yet (due at due_at)
HANDED = "handed"  # the provider has it (or it ended before reaching it)
_UNSENT = frozenset({MessageStatus.QUEUED, MessageStatus.SCHEDULED})
_COMMIT_WAIT_SECONDS = 30.0

outbox_table = Table(
    "outbox",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("idempotency_key", String(200), nullable=True, unique=True),
    Column("request_hash", String(64), nullable=True),
    Column("answer", Text, nullable=True),
    Column("configuration_id", String(36), nullable=False),
    Column("to_number", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("send_state", String(16), nullable=False),
    Column("due_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("attempt_at", Float, nullable=True),
    Column("claim_token", String(32), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Column("synced_version", Integer, nullable=False, default=0),
    Column("sync_due_at", Float, nullable=False, default=0.0),
    Column("sync_token", String(32), nullable=True),
    Column("sync_lease_until", Float, nullable=True),
    Column("sync_attempts", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # A sender's messages to send in the order they are sent (no sort of its queue).
    Index("ix_outbox_due", "send_state", "configuration_id", "due_at", "created_at"),
    # Messages whose latest version Dataverse lacks, by last change: the sync claims walk
    # only those (beside 300,000 synced messages a claim read them all, 200 ms).
    partial_index("ix_outbox_unsynced", "updated_at", where="version > synced_version"),
    Index("ix_outbox_pair", "to_number", "created_at"),
    # The messages leased now, by their claim's token (the claims read them back through it).
    partial_index("ix_outbox_claim", "claim_token", where="claim_token IS NOT NULL"),
    partial_index("ix_outbox_sync_claim", "sync_token", where="sync_token IS NOT NULL"),
    info={"retired_indexes": ("ix_outbox_send", "ix_outbox_sync")},
)


def message_to_json(message: OutboundMessage) -> str:
    """The stored form of a message."""
    data = asdict(message)
    data["media_urls"] = list(message.media_urls)
    data["ucs2_characters"] = list(message.ucs2_characters)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def message_from_json(text: str) -> OutboundMessage:
    """A message from its stored form."""
    data = json.loads(text)
    failure = data.pop("failure")
    return OutboundMessage(
        **{
            **data,
            "category": MessageCategory(data["category"]),
            "encoding": Encoding(data["encoding"]),
            "status": MessageStatus(data["status"]),
            "media_urls": tuple(data["media_urls"]),
            "ucs2_characters": tuple(data["ucs2_characters"]),
            "failure": (
                None
                if failure is None
                else Failure(
                    FailureCategory(failure["category"]), failure["reason"], failure["code"]
                )
            ),
        }
    )


@dataclass(frozen=True, slots=True)
class _Pending:
    """A row for the group commit, and the session change that goes with it."""

    row: Mapping[str, Any]
    session: SessionChange | None


def _store_error(what: str, exc: Exception) -> StateStoreError:
    return StateStoreError(f"cannot {what}: {type(exc).__name__}")


class Outbox:
    """The outbox on a :class:`~connector.state.db.StateStore` (see the module docstring)."""

    def __init__(self, store: StateStore, *, max_sync_delay: float = 300.0) -> None:
        self.store = store
        self.max_sync_delay = max_sync_delay
        store.create_all()
        make = sqlite_insert if store.dialect == "sqlite" else pg_insert
        # RETURNING tells whether the row went in (an INSERT's rowcount is -1 on psycopg)
        self._insert = make(outbox_table).on_conflict_do_nothing().returning(outbox_table.c.id)
        self._books = bookkeeping_engine(store)
        self._durable = durable_engine(store)  # single statements, flushed on return
        self._appends = append_engine(store)
        self._adder = GroupCommitter(self._appends, self._insert_batch)

    def close(self) -> None:
        """Stop the writer thread and release the extra engines."""
        self._adder.close()
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

    # -- reading ------------------------------------------------------------------------
    def get(self, message_id: str) -> OutboundMessage | None:
        """The message as it stands, or None."""
        c = outbox_table.c
        try:
            with self._books.connect() as conn:
                text = conn.execute(select(c.message).where(c.id == message_id)).scalar()
        except SQLAlchemyError as exc:
            raise _store_error("read the outbox", exc) from exc
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
        c = outbox_table.c
        query = select(c.configuration_id).where(self._due(now)).distinct()
        try:
            with self._books.connect() as conn:
                return [str(v) for v in conn.execute(query).scalars()]
        except SQLAlchemyError as exc:
            raise _store_error("read the outbox", exc) from exc

    def next_send_due(self) -> float | None:
        """When the earliest waiting message is due (its send time, or its lease), or None."""
        c = outbox_table.c
        biggest = func.max if self.store.dialect == "sqlite" else func.greatest
        due = biggest(c.due_at, func.coalesce(c.lease_until, 0.0))
        query = select(func.min(due)).where(c.send_state == WAITING)
        with self._books.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else float(value)

    @staticmethod
    def _due(now: float) -> Any:
        c = outbox_table.c
        return and_(
            c.send_state == WAITING,
            c.due_at <= now,
            or_(c.lease_until.is_(None), c.lease_until < now),
        )

    def claim_sends(
        self, configuration_id: str, limit: int, *, lease_seconds: float, now: float | None = None
    ) -> list[ClaimedSend]:
        """Lease up to ``limit`` due messages of one sender, oldest first."""
        at = time.time() if now is None else now
        token = uuid.uuid4().hex
        c = outbox_table.c
        due = and_(self._due(at), c.configuration_id == configuration_id)
        oldest = (  # SKIP LOCKED: racing workers take other rows (see Journal.claim)
            select(c.id)
            .where(due)
            .order_by(c.due_at, c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        try:
            # As in Journal.claim: one UPDATE, its lock released inside one step (never held
            # while Python fetches rows), then the leased rows read back by their token
            # through an index of the leased ones.
            with self._books.begin() as conn:
                conn.execute(
                    update(outbox_table)
                    .where(c.id.in_(oldest.scalar_subquery()))
                    .values(claim_token=token, lease_until=at + lease_seconds)
                )
                rows = conn.execute(
                    select(c.message, c.attempts, c.attempt_at)
                    .where(c.claim_token == token)
                    .order_by(c.due_at, c.created_at)
                ).all()
        except SQLAlchemyError as exc:
            raise _store_error("claim outbox rows", exc) from exc
        return [
            ClaimedSend(
                message_from_json(str(row.message)),
                token,
                int(row.attempts),
                row.attempt_at is not None,
                None if row.attempt_at is None else float(row.attempt_at),
            )
            for row in rows
        ]

    def start_attempt(self, claimed: ClaimedSend, *, lease_seconds: float, now: float) -> bool:
        """Record that a provider call is about to start (committed before it); False when
        the lease was lost (another worker has the message now: do not send)."""
        c = outbox_table.c
        query = (
            update(outbox_table)
            .where(c.id == claimed.message.id, c.claim_token == claimed.token)
            .values(
                attempt_at=now,
                attempts=c.attempts + 1,
                lease_until=now + lease_seconds,
            )
        )
        with self._durable.begin() as conn:  # durable: a crash after this must be seen
            return conn.execute(query).rowcount == 1

    def handed(self, claimed: ClaimedSend, message: OutboundMessage) -> bool:
        """The provider has the message (or it ended before reaching it): store ``message``
        as its state and stop sending it. Status news that came meanwhile is kept."""
        return self._settle_send(claimed, message, HANDED)

    def retry_later(
        self, claimed: ClaimedSend, due_at: float, error: str, *, uncertain: bool
    ) -> bool:
        """A transient failure: try again at ``due_at``. ``uncertain``: the provider may have
        taken it (timeout, 5xx): the next attempt asks first."""
        c = outbox_table.c
        values: dict[str, Any] = {
            "claim_token": None,
            "lease_until": None,
            "due_at": due_at,
            "last_error": error[:2000],
        }
        if not uncertain:
            values["attempt_at"] = None
        query = (
            update(outbox_table)
            .where(c.id == claimed.message.id, c.claim_token == claimed.token)
            .values(**values)
        )
        with self._books.begin() as conn:
            return conn.execute(query).rowcount == 1

    def _settle_send(self, claimed: ClaimedSend, message: OutboundMessage, state: str) -> bool:
        c = outbox_table.c
        for _ in range(10):
            with self._books.connect() as conn:
                row = conn.execute(
                    select(c.message, c.version, c.claim_token).where(c.id == message.id)
                ).first()
            if row is None or row.claim_token != claimed.token:
                return False
            current = message_from_json(str(row.message))
            merged = _merge(current, message)
            query = (
                update(outbox_table)
                .where(c.id == message.id, c.version == row.version)
                .values(
                    message=message_to_json(merged),
                    status=merged.status.value,
                    send_state=state,
                    claim_token=None,
                    lease_until=None,
                    last_error=None,
                    version=row.version + 1,
                    sync_due_at=0.0,
                    updated_at=time.time(),
                )
            )
            with self._durable.begin() as conn:  # durable: never sent twice after this
                if conn.execute(query).rowcount == 1:
                    return True
        raise StateStoreError(f"message {message.id} kept changing while it was settled")

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
        at = time.time() if now is None else now
        token = uuid.uuid4().hex
        c = outbox_table.c
        due = and_(
            c.version > c.synced_version,
            c.sync_due_at <= at,
            or_(c.sync_lease_until.is_(None), c.sync_lease_until < at),
        )
        oldest = (  # SKIP LOCKED: racing workers take other rows (see Journal.claim)
            select(c.id).where(due).order_by(c.updated_at).limit(limit)
        ).with_for_update(skip_locked=True)
        try:
            with self._books.begin() as conn:  # as in claim_sends
                conn.execute(
                    update(outbox_table)
                    .where(c.id.in_(oldest.scalar_subquery()))
                    .values(sync_token=token, sync_lease_until=at + lease_seconds)
                )
                rows = conn.execute(
                    select(c.message, c.version, c.synced_version, c.sync_attempts)
                    .where(c.sync_token == token)
                    .order_by(c.updated_at)
                ).all()
        except SQLAlchemyError as exc:
            raise _store_error("claim outbox rows", exc) from exc
        return [
            ClaimedSync(
                message_from_json(str(row.message)),
                int(row.version),
                int(row.synced_version) == 0,
                token,
                int(row.sync_attempts),
            )
            for row in rows
        ]

    def mark_synced(self, items: Sequence[ClaimedSync]) -> None:
        """Dataverse has these versions (later changes stay due)."""
        c = outbox_table.c
        with self._books.begin() as conn:
            for item in items:
                conn.execute(
                    update(outbox_table)
                    .where(c.id == item.message.id, c.sync_token == item.token)
                    .values(
                        synced_version=func.max(c.synced_version, item.version)
                        if self.store.dialect == "sqlite"
                        else func.greatest(c.synced_version, item.version),
                        sync_token=None,
                        sync_lease_until=None,
                        sync_attempts=0,
                    )
                )

    def sync_failed(
        self, items: Sequence[ClaimedSync], *, retry_after: float | None = None
    ) -> None:
        """Writing failed: back off (exponentially, honouring ``retry_after``)."""
        c = outbox_table.c
        now = time.time()
        with self._books.begin() as conn:
            for item in items:
                delay = min(self.max_sync_delay, 2.0 ** min(item.attempts, 12))
                delay = max(delay, retry_after or 0.0)
                conn.execute(
                    update(outbox_table)
                    .where(c.id == item.message.id, c.sync_token == item.token)
                    .values(
                        sync_token=None,
                        sync_lease_until=None,
                        sync_due_at=now + delay,
                        sync_attempts=item.attempts + 1,
                    )
                )

    def next_sync_due(self) -> float | None:
        """When the earliest unsynced message is due, or None when Dataverse has them all."""
        c = outbox_table.c
        query = select(func.min(c.sync_due_at)).where(c.version > c.synced_version)
        with self._books.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else float(value)

    def counts(self) -> dict[str, int]:
        """Messages waiting to be sent and versions not yet in Dataverse."""
        c = outbox_table.c
        with self._books.connect() as conn:
            waiting = conn.execute(select(func.count()).where(c.send_state == WAITING)).scalar()
            unsynced = conn.execute(
                select(func.count()).where(c.version > c.synced_version)
            ).scalar()
        return {"waiting": int(waiting or 0), "unsynced": int(unsynced or 0)}


def _merge(current: OutboundMessage, sent: OutboundMessage) -> OutboundMessage:
    """What the sending worker learned (``sent``) plus status news that came meanwhile."""
    merged = current.with_status(
        sent.status,
        sent.updated_at,
        provider_id=sent.provider_id,
        failure=sent.failure,
    )
    base = merged or current
    if base.provider_id is None and sent.provider_id:
        base = replace(base, provider_id=sent.provider_id)
    if sent.segments and sent.segments != base.segments:
        base = replace(base, segments=sent.segments)
    return base
