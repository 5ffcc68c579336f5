"""Local state of sends that start in Dynamics: refused rows, the poll's place, the webhook key.

* ``crm_send_refusals``: one row per Dataverse message row the send path refused (and that was
  marked failed there), so a repeated webhook delivery does not refuse it again. Rows that
  were accepted need no record here: the outbox holds them under the row's id.
* ``crm_send_poll``: the poll's ``modifiedon`` watermark and when it last ran, shared by the
  fleet (a process skips its turn when another polled less than an interval ago).
* ``dataverse_webhook_keys``: the key Dataverse's service endpoint sends, encrypted with
  ``CONNECTOR_SECRET_KEYS`` (:class:`~connector.secret_box.SecretBox`); rotating keeps the
  previous key valid for a grace period, since deliveries queued before the rotation still
  carry it.

Portable SQL (SQLAlchemy Core) for SQLite and PostgreSQL.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Float, String, Table, Text, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError

from connector.errors import StateStoreError
from connector.ports import SecretCipher
from connector.state.db import StateStore, metadata

refusals_table = Table(
    "crm_send_refusals",
    metadata,
    Column("row_id", String(36), primary_key=True),
    Column("code", String(64), nullable=False),
    Column("at", Float, nullable=False),
)
poll_table = Table(
    "crm_send_poll",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("since", String(40), nullable=True),
    Column("ran_at", Float, nullable=True),
)
keys_table = Table(
    "dataverse_webhook_keys",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("current", Text, nullable=False),
    Column("previous", Text, nullable=True),
    Column("rotated_at", Float, nullable=False),
    Column("pushed_at", Float, nullable=True),  # when Dataverse got the current key
)
_POLL = "messages"
_KEY = "webhook"
ROTATION_GRACE_SECONDS = 24 * 3600.0
"""How long the key before a rotation is still accepted."""


def _failed(what: str, exc: Exception) -> StateStoreError:
    return StateStoreError(f"cannot {what}: {type(exc).__name__}")


class StateCrmSendLedger:
    """Implements :class:`~connector.ports.CrmSendLedger` on the state store."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        store.create_all()
        self._insert = (postgresql if store.dialect == "postgresql" else sqlite).insert

    def refused(self, row_id: str) -> bool:
        """Whether this row was refused already."""
        c = refusals_table.c
        with self.store.engine.connect() as conn:
            return conn.execute(select(c.row_id).where(c.row_id == row_id)).first() is not None

    def note_refused(self, row_id: str, code: str) -> None:
        """Remember a refusal (a repeat changes nothing)."""
        row = {"row_id": row_id, "code": code[:64], "at": time.time()}
        try:
            with self.store.engine.begin() as conn:
                conn.execute(self._insert(refusals_table).values(row).on_conflict_do_nothing())
        except SQLAlchemyError as exc:
            raise _failed("record a refused row", exc) from exc

    def poll_cursor(self) -> tuple[datetime | None, float | None]:
        """The poll's watermark and when it last ran."""
        c = poll_table.c
        with self.store.engine.connect() as conn:
            found = conn.execute(select(c.since, c.ran_at).where(c.name == _POLL)).first()
        if found is None:
            return None, None
        since = datetime.fromisoformat(found.since) if found.since else None
        return since, None if found.ran_at is None else float(found.ran_at)

    def save_poll_cursor(self, since: datetime | None, ran_at: float) -> None:
        """Record the poll's place."""
        values = {"since": since.isoformat() if since else None, "ran_at": ran_at}
        statement = self._insert(poll_table).values(name=_POLL, **values)
        statement = statement.on_conflict_do_update(index_elements=["name"], set_=values)
        with self.store.engine.begin() as conn:
            conn.execute(statement)


class WebhookKeys:
    """The Dataverse webhook key, stored encrypted; what the route accepts.

    ``extra`` holds keys accepted without being stored (local mode registers a key made for
    the run). :meth:`accepted` is cached for ``ttl`` seconds, so a rotation made by another
    process (``connector dataverse register-webhook --rotate-key``) is seen within it.
    """

    def __init__(
        self,
        store: StateStore,
        cipher: Callable[[], SecretCipher],
        *,
        ttl: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        store.create_all()
        self._cipher = cipher
        self._ttl = ttl
        self._clock = clock
        self.extra: list[str] = []
        self._cached: tuple[float, list[str]] | None = None
        self._lock = threading.Lock()
        self._insert = (postgresql if store.dialect == "postgresql" else sqlite).insert

    def current(self) -> str | None:
        """The key the service endpoint was registered with (None: none stored)."""
        row = self._row()
        return None if row is None else self._open(str(row.current))

    def ensure(self) -> tuple[str, bool]:
        """The stored key, or a new one stored now; (key, whether Dataverse still needs it:
        new, rotated, or a registration that failed before it was written)."""
        row = self._row()
        if row is not None:
            return self._open(str(row.current)), row.pushed_at is None
        return self._store(new_key(), previous=None), True

    def mark_pushed(self) -> None:
        """Dataverse has the current key (the registration wrote it)."""
        with self.store.engine.begin() as conn:
            conn.execute(
                update(keys_table).where(keys_table.c.name == _KEY).values(pushed_at=self._clock())
            )

    def rotate(self) -> str:
        """A new key; the current one stays accepted for :data:`ROTATION_GRACE_SECONDS`."""
        row = self._row()
        return self._store(new_key(), previous=None if row is None else str(row.current))

    def forget(self) -> None:
        """Drop the stored key (the webhook was removed)."""
        with self.store.engine.begin() as conn:
            conn.execute(delete(keys_table).where(keys_table.c.name == _KEY))
        self._cached = None

    def accepted(self) -> Sequence[str]:
        """Every key a webhook may present now (cached for ``ttl`` seconds)."""
        now = self._clock()
        with self._lock:
            if self._cached is not None and now - self._cached[0] < self._ttl:
                return [*self.extra, *self._cached[1]]
        row = self._row()
        keys: list[str] = []
        if row is not None:
            keys.append(self._open(str(row.current)))
            fresh = now - float(row.rotated_at) < ROTATION_GRACE_SECONDS
            if row.previous and fresh:
                keys.append(self._open(str(row.previous)))
        with self._lock:
            self._cached = (now, keys)
        return [*self.extra, *keys]

    def _row(self) -> Row[Any, Any, Any, Any] | None:
        c = keys_table.c
        try:
            with self.store.engine.connect() as conn:
                return conn.execute(
                    select(c.current, c.previous, c.rotated_at, c.pushed_at).where(c.name == _KEY)
                ).first()
        except SQLAlchemyError as exc:
            raise _failed("read the Dataverse webhook key", exc) from exc

    def _open(self, stored: str) -> str:
        plain, _ = self._cipher().reveal(stored)
        return plain

    def _store(self, key: str, *, previous: str | None) -> str:
        values = {
            "current": self._cipher().encrypt(key),
            "previous": previous,
            "rotated_at": self._clock(),
            "pushed_at": None,
        }
        statement = self._insert(keys_table).values(name=_KEY, **values)
        statement = statement.on_conflict_do_update(index_elements=["name"], set_=values)
        with self.store.engine.begin() as conn:
            conn.execute(statement)
        self._cached = None
        return key


def new_key() -> str:
    """A new webhook key: 32 random bytes, URL-safe (fits a header and a query string)."""
    return secrets.token_urlsafe(32)
