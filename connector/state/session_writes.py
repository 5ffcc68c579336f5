"""The session mirror's writes, on a connection whose transaction the caller holds.

:func:`write_session` stores one session if the pair's latest is still the one read (an
optimistic write: a versioned ``UPDATE`` of the same session, or a moved pointer and a new
row); :func:`write_sessions` stores a claimed batch's changes in a few ``executemany``
statements. Their statements are built once. They take a connection rather than open one so
that other writes can share the transaction (the outbox commits a send's row and its session
together), which is why they live apart from
:class:`~connector.state.session_mirror.SessionCache`, the mirror's own saves and reads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from connector.domain.conversation import SessionState
from connector.state.session_tables import dump_session, latest_table, sessions_table

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
        "b_data": dump_session(session),
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
        "data": dump_session(session),
        "escalation_pending_since": session.escalation_pending_since,
        "close_due_at": session.close_due_at,
    }
