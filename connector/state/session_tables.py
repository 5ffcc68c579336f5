"""The session mirror's tables and the stored form of a session.

``session_cache`` holds each conversation session (its data as JSON, an optimistic
``version``, and the two indexed times the sweeps read: the start of a wait whose escalation is
not settled, the timeout of a session not closed yet); ``session_latest`` points each
(configuration, phone) pair at its latest session. They are declared apart from
:class:`~connector.state.session_mirror.SessionCache` because the mirror's writes
(:mod:`connector.state.session_writes`) run on them too, inside other modules' transactions:
the outbox commits a send's row and its session together.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from sqlalchemy import Column, Float, Integer, String, Table, Text

from connector.domain.conversation import Acceptance, SessionState
from connector.state.db import metadata, partial_index

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


_FIELDS = tuple(field.name for field in fields(SessionState))


def dump_session(session: SessionState) -> str:
    """The session as stored (its fields in declaration order; no nested dataclasses, so
    no :func:`dataclasses.asdict` deep copy)."""
    data = {name: getattr(session, name) for name in _FIELDS}
    data["acceptance"] = session.acceptance.value
    data["dismissed_by"] = sorted(session.dismissed_by)
    data["counted"] = sorted(session.counted)
    return json.dumps(data)


def load_session(text: str, version: int) -> SessionState:
    """A session from its stored form, with its row's ``version``."""
    data: dict[str, Any] = json.loads(text)
    data["acceptance"] = Acceptance(data["acceptance"])
    data["dismissed_by"] = frozenset(data.get("dismissed_by", ()))
    data["counted"] = frozenset(data.get("counted", ()))  # rows saved before it existed: none
    data["version"] = version
    return SessionState(**data)
