"""The local mirror of conversation sessions, shared by every worker process.

:class:`SessionCache` keeps in the state store the latest session of each (configuration,
phone) pair, with an optimistic version so two workers never overwrite each other's
counters, the start of each wait whose idle-timeout escalation is not settled yet (indexed,
so the escalation sweep reads only sessions that may be due), and the timeout of each session
not closed yet (indexed the same way for the closing sweep). A claimed batch's sessions are
read in one query per configuration and stored in one transaction
(:meth:`SessionCache.current_many`, :meth:`SessionCache.save_groups`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from connector.domain.conversation import Acceptance, SessionState
from connector.errors import StateStoreError
from connector.log_config import get_logger
from connector.state.db import StateStore, metadata, partial_index
from connector.state.group_commit import atomic, bookkeeping_engine

log = get_logger(__name__)

sessions_table = Table(
    "session_cache",
    metadata,
    Column("session_id", String(36), primary_key=True),
    Column("configuration_id", String(36), nullable=False),
    Column("phone", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Column("escalation_pending_since", Float, nullable=True),
    Column("close_due_at", Float, nullable=True),  # NULL once closed (or saved before it)
    partial_index(
        "ix_session_cache_escalation",
        "configuration_id",
        "escalation_pending_since",
        where="escalation_pending_since IS NOT NULL",
    ),
    partial_index("ix_session_cache_close_due", "close_due_at", where="close_due_at IS NOT NULL"),
)
latest_table = Table(
    "session_latest",
    metadata,
    Column("configuration_id", String(36), primary_key=True),
    Column("phone", String(32), primary_key=True),
    Column("session_id", String(36), nullable=False),
    Column("updated_at", Float, nullable=False),
)


_CURRENT = (
    select(sessions_table.c.data, sessions_table.c.version)
    .join_from(
        latest_table,
        sessions_table,
        sessions_table.c.session_id == latest_table.c.session_id,
    )
    .where(
        latest_table.c.configuration_id == bindparam("configuration_id"),
        latest_table.c.phone == bindparam("phone"),
    )
)
_CURRENT_MANY = (
    select(latest_table.c.phone, sessions_table.c.data, sessions_table.c.version)
    .join_from(
        latest_table,
        sessions_table,
        sessions_table.c.session_id == latest_table.c.session_id,
    )
    .where(
        latest_table.c.configuration_id == bindparam("configuration_id"),
        latest_table.c.phone.in_(bindparam("phones", expanding=True)),
    )
)
_READ_CHUNK = 500  # phones per read (well under any driver's limit on bound parameters)
# The mirror's writes, built once (building a Core statement per call cost more CPU than
# SQLite's write itself); ``write_session`` and ``SessionCache.save_groups`` bind them.
_BUMP = (
    update(sessions_table)
    .where(
        sessions_table.c.session_id == bindparam("b_id"),
        sessions_table.c.version == bindparam("b_version"),
    )
    .values(
        version=bindparam("b_next"),
        data=bindparam("b_data"),
        escalation_pending_since=bindparam("b_pending"),
        close_due_at=bindparam("b_close_due"),
    )
)
_MOVE = (
    update(latest_table)
    .where(
        latest_table.c.configuration_id == bindparam("b_configuration"),
        latest_table.c.phone == bindparam("b_phone"),
        latest_table.c.session_id == bindparam("b_previous"),
    )
    .values(session_id=bindparam("b_id"), updated_at=bindparam("b_at"))
)
_POINT_IF_NONE = {  # a row when inserted (rowcount is -1 on psycopg)
    "sqlite": sqlite_insert(latest_table)
    .on_conflict_do_nothing()
    .returning(latest_table.c.session_id),
    "postgresql": pg_insert(latest_table)
    .on_conflict_do_nothing()
    .returning(latest_table.c.session_id),
}
_POINT = insert(latest_table)
_ADD = insert(sessions_table)


Change = tuple[SessionState, SessionState | None]
"""A session to store and the pair's latest session as read (None: there was none)."""


class _ConflictError(Exception):
    """Another worker moved the pair's latest session first."""


_FIELDS = tuple(field.name for field in fields(SessionState))


def _dump(session: SessionState) -> str:
    """The session as stored (its fields in declaration order; no nested dataclasses, so
    no :func:`dataclasses.asdict` deep copy)."""
    data = {name: getattr(session, name) for name in _FIELDS}
    data["acceptance"] = session.acceptance.value
    data["dismissed_by"] = sorted(session.dismissed_by)
    data["counted"] = sorted(session.counted)
    return json.dumps(data)


def _load(text: str, version: int) -> SessionState:
    data: dict[str, Any] = json.loads(text)
    data["acceptance"] = Acceptance(data["acceptance"])
    data["dismissed_by"] = frozenset(data.get("dismissed_by", ()))
    data["counted"] = frozenset(data.get("counted", ()))  # rows saved before it existed: none
    data["version"] = version
    return SessionState(**data)


class SessionCache:
    """Sessions in the state store (implements :class:`~connector.ports.SessionStore`)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        store.create_all()
        self._books = bookkeeping_engine(store)  # the mirror converges by derived ids
        self._backfill_close_due()

    def _backfill_close_due(self, batch: int = 500) -> int:
        """Sessions saved before the timeout sweep existed have no ``close_due_at`` (and no
        ``closed_at`` in their data): give them their timeout, so the sweep closes them too.
        Idempotent and cheap once done (an empty indexed scan of open rows)."""
        c = sessions_table.c
        old = c.close_due_at.is_(None) & c.data.not_like('%"closed_at"%')
        done = 0
        while True:
            with self.store.engine.begin() as conn:
                rows = conn.execute(select(c.session_id, c.data).where(old).limit(batch)).all()
                for session_id, data in rows:
                    due = json.loads(data).get("expires_at")
                    conn.execute(
                        update(sessions_table)
                        .where(c.session_id == session_id)
                        .values(close_due_at=float(due) if due is not None else 0.0)
                    )
            done += len(rows)
            if len(rows) < batch:
                return done

    def get(self, session_id: str) -> SessionState | None:
        """A session by id."""
        c = sessions_table.c
        query = select(c.data, c.version).where(c.session_id == session_id)
        with self.store.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _load(row[0], int(row[1]))

    def current(self, configuration_id: str, phone: str) -> SessionState | None:
        """The latest session of (configuration, phone) (every send reads it: the query is
        built once)."""
        params = {"configuration_id": configuration_id, "phone": phone}
        with self.store.engine.connect() as conn:
            row = conn.execute(_CURRENT, params).first()
        return None if row is None else _load(row[0], int(row[1]))

    def save(self, session: SessionState, previous: SessionState | None) -> bool:
        """Optimistic write: False when another worker changed the pair since ``previous``."""
        try:
            if previous is not None and previous.id == session.id:
                with self._books.begin() as conn:  # one statement (autocommit on SQLite)
                    return write_session(conn, session, previous)
            with atomic(self._books) as conn:  # a new session: its row and the pointer
                return write_session(conn, session, previous)
        except (IntegrityError, _ConflictError):
            return False
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot save the session: {type(exc).__name__}") from exc

    def save_many(self, changes: Sequence[Change]) -> bool:
        """Several :meth:`save` calls (in order) that all happen or none (False: re-read).

        One change is a single statement; several (a batch that closed one session and
        opened the next) share one transaction.
        """
        if len(changes) == 1:
            return self.save(*changes[0])
        try:
            with atomic(self._books) as conn:
                for session, previous in changes:
                    if not write_session(conn, session, previous):
                        raise _ConflictError
        except (IntegrityError, _ConflictError):
            return False
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot save the sessions: {type(exc).__name__}") from exc
        return True

    def current_many(self, configuration_id: str, phones: Sequence[str]) -> dict[str, SessionState]:
        """The latest session of each of ``phones`` with one configuration, by phone (a
        phone without one is left out): :meth:`current` for a batch, in one read."""
        found: dict[str, SessionState] = {}
        wanted = sorted(set(phones))
        try:
            with self.store.engine.connect() as conn:
                for first in range(0, len(wanted), _READ_CHUNK):
                    params = {
                        "configuration_id": configuration_id,
                        "phones": wanted[first : first + _READ_CHUNK],
                    }
                    for phone, data, version in conn.execute(_CURRENT_MANY, params):
                        found[str(phone)] = _load(data, int(version))
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot read the sessions: {type(exc).__name__}") from exc
        return found

    def save_groups(self, groups: Sequence[Sequence[Change]]) -> list[bool]:
        """:meth:`save_many` for each group (one conversation's changes each), whether each
        was stored (False: that group's pair moved, re-read it; the others are stored).

        The usual case, nobody else moved any of the pairs, is ONE transaction of a few
        ``executemany`` statements for the whole batch; when any write finds its pair moved
        the transaction is rolled back and the groups are saved one by one, so only the
        moved ones answer False.
        """
        pending = [index for index, group in enumerate(groups) if group]
        if len(pending) <= 1:
            return [self.save_many(group) if group else True for group in groups]
        try:
            with atomic(self._books) as conn:
                if not write_sessions(conn, [change for i in pending for change in groups[i]]):
                    raise _ConflictError
            return [True] * len(groups)
        except (IntegrityError, _ConflictError):
            log.info("session_cache.batch_conflict", groups=len(pending))
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot save the sessions: {type(exc).__name__}") from exc
        return [self.save_many(group) if group else True for group in groups]

    def awaiting_escalation(
        self, configuration_id: str, waiting_since_before: float, limit: int
    ) -> list[SessionState]:
        """Sessions of the configuration whose unsettled wait began at or before
        ``waiting_since_before``, oldest first (an index range: settled rows are not in it)."""
        c = sessions_table.c
        query = (
            select(c.data, c.version)
            .where(
                c.configuration_id == configuration_id,
                c.escalation_pending_since.is_not(None),
                c.escalation_pending_since <= waiting_since_before,
            )
            .order_by(c.escalation_pending_since)
            .limit(limit)
        )
        with self.store.engine.connect() as conn:
            return [_load(d, int(v)) for d, v in conn.execute(query)]

    def due_for_closing(self, now: float, limit: int) -> list[SessionState]:
        """Sessions not closed yet whose timeout is at or before ``now``, oldest first (an
        index range: closed sessions are not in it)."""
        c = sessions_table.c
        query = (
            select(c.data, c.version)
            .where(c.close_due_at.is_not(None), c.close_due_at <= now)
            .order_by(c.close_due_at)
            .limit(limit)
        )
        with self.store.engine.connect() as conn:
            return [_load(d, int(v)) for d, v in conn.execute(query)]


def write_session(conn: Connection, session: SessionState, previous: SessionState | None) -> bool:
    """Write ``session`` on ``conn`` if the pair's latest is still ``previous`` (as read);
    False, with nothing written, when another writer moved it first.

    The same session again is one versioned ``UPDATE``; a new session moves the pair's
    pointer first (``previous`` None: inserts it, any pointer already there is a conflict)
    and then inserts its row. A caller's transaction may so hold other writes too: the
    outbox commits a send's row and its session in one transaction.
    """
    if previous is not None and previous.id == session.id:
        return bool(conn.execute(_BUMP, _bump(session, previous)).rowcount == 1)
    if previous is None:
        point = _POINT_IF_NONE["sqlite" if conn.dialect.name == "sqlite" else "postgresql"]
        moved = conn.execute(point, _pointer(session)).first() is not None
    else:
        moved = conn.execute(_MOVE, _move(session, previous)).rowcount == 1
    if not moved:
        return False
    conn.execute(_ADD, _row(session))
    return True


def write_sessions(conn: Connection, changes: Sequence[Change]) -> bool:
    """:func:`write_session` for every change (in order), each kind of write in one
    ``executemany``; False when any of them found the pair moved (raises
    :class:`IntegrityError` for a pointer or row already there). Nothing is undone here:
    the caller's transaction is rolled back on False or an error.

    The kinds are independent rows (a session's row, a pair's pointer), so writing all
    version bumps, then every new pointer, every pointer move (in order: a batch may open
    two sessions of a pair, the second moving the pointer from the first) and every new row
    leaves what the changes one by one would leave.
    """
    bumps, points, moves, rows = [], [], [], []
    for session, previous in changes:
        if previous is not None and previous.id == session.id:
            bumps.append(_bump(session, previous))
            continue
        if previous is None:
            points.append(_pointer(session))
        else:
            moves.append(_move(session, previous))
        rows.append(_row(session))
    if bumps and conn.execute(_BUMP, bumps).rowcount != len(bumps):
        return False
    if points:
        conn.execute(_POINT, points)
    if moves and conn.execute(_MOVE, moves).rowcount != len(moves):
        return False
    if rows:
        conn.execute(_ADD, rows)
    return True


def _bump(session: SessionState, previous: SessionState) -> dict[str, Any]:
    return {
        "b_id": session.id,
        "b_version": previous.version,
        "b_next": previous.version + 1,
        "b_data": _dump(session),
        "b_pending": session.escalation_pending_since,
        "b_close_due": session.close_due_at,
    }


def _pointer(session: SessionState) -> dict[str, Any]:
    return {
        "configuration_id": session.configuration_id,
        "phone": session.phone,
        "session_id": session.id,
        "updated_at": time.time(),
    }


def _move(session: SessionState, previous: SessionState) -> dict[str, Any]:
    return {
        "b_configuration": session.configuration_id,
        "b_phone": session.phone,
        "b_previous": previous.id,
        "b_id": session.id,
        "b_at": time.time(),
    }


def _row(session: SessionState) -> dict[str, Any]:
    return {
        "session_id": session.id,
        "configuration_id": session.configuration_id,
        "phone": session.phone,
        "version": 1,
        "data": _dump(session),
        "escalation_pending_since": session.escalation_pending_since,
        "close_due_at": session.close_due_at,
    }
