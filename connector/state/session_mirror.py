"""The local mirror of conversation sessions, shared by every worker process.

:class:`SessionCache` keeps in the state store the latest session of each (configuration,
phone) pair, with an optimistic version so two workers never overwrite each other's
counters, the start of each wait whose idle-timeout escalation is not settled yet (indexed,
so the escalation sweep reads only sessions that may be due), and the timeout of each session
not closed yet (indexed the same way for the closing sweep). A claimed batch's sessions are
read in one query per configuration and stored in one transaction
(:meth:`SessionCache.current_many`, :meth:`SessionCache.save_groups`).

The tables and a session's stored form are in :mod:`connector.state.session_tables`; the
writes, which other modules' transactions run too, in :mod:`connector.state.session_writes`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from connector.domain.conversation import SessionState
from connector.errors import StateStoreError
from connector.log_config import get_logger
from connector.state.db import StateStore
from connector.state.group_commit import atomic, bookkeeping_engine
from connector.state.session_tables import latest_table, load_session, sessions_table
from connector.state.session_writes import Change, write_session, write_sessions

log = get_logger(__name__)

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


class _ConflictError(Exception):
    """Another worker moved the pair's latest session first."""


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
        return None if row is None else load_session(row[0], int(row[1]))

    def current(self, configuration_id: str, phone: str) -> SessionState | None:
        """The latest session of (configuration, phone) (every send reads it: the query is
        built once)."""
        params = {"configuration_id": configuration_id, "phone": phone}
        with self.store.engine.connect() as conn:
            row = conn.execute(_CURRENT, params).first()
        return None if row is None else load_session(row[0], int(row[1]))

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
                        found[str(phone)] = load_session(data, int(version))
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
            return [load_session(d, int(v)) for d, v in conn.execute(query)]

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
            return [load_session(d, int(v)) for d, v in conn.execute(query)]
