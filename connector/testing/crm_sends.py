"""Shipped fakes of :class:`~connector.ports.CrmSendRows` and
:class:`~connector.ports.CrmSendLedger`: message rows created in Dataverse, and what the
connector remembers of them, in memory.

:class:`FakeCrmSendRows` keeps rows by id; ``queued_since`` answers as the Web API query does
(waiting rows modified at or after the time, oldest first, at most ``limit``) and counts its
calls in ``queries`` (one request each); ``mark_failed`` records the failure and moves the row
to failed, so it stops waiting. ``down`` makes every call fail as an unreachable Dataverse.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from connector.domain.crm_sends import CrmSendRow
from connector.domain.outbound import Failure
from connector.errors import DataverseUnavailableError


class FakeCrmSendRows:
    """Rows created in Dataverse, in memory (see the module docstring)."""

    def __init__(self, rows: Sequence[CrmSendRow] = ()) -> None:
        self.rows: dict[str, CrmSendRow] = {row.id: row for row in rows}
        self.failures: dict[str, Failure] = {}
        self.queries = 0
        self.down = False
        self._lock = threading.Lock()

    def _check(self) -> None:
        if self.down:
            raise DataverseUnavailableError("Dataverse is down (fake)")

    def add(self, row: CrmSendRow) -> None:
        """A row created (as a flow would)."""
        with self._lock:
            self.rows[row.id] = row

    def from_event(self, payload: Mapping[str, Any]) -> CrmSendRow | None:
        """The stored row for an event that carries ``{"row_id", "target": {...}}``."""
        if not isinstance(payload.get("target"), Mapping):
            return None
        with self._lock:
            return self.rows.get(str(payload.get("row_id")))

    def read(self, row_id: str) -> CrmSendRow | None:
        """One row by id."""
        self._check()
        with self._lock:
            return self.rows.get(row_id)

    def queued_since(self, since: datetime | None, limit: int) -> Sequence[CrmSendRow]:
        """Waiting rows modified at or after ``since``, oldest first."""
        self._check()
        self.queries += 1
        with self._lock:
            waiting = [r for r in self.rows.values() if r.waiting]
        if since is not None:
            waiting = [r for r in waiting if (at := _at(r)) is None or at >= since]
        waiting.sort(key=lambda r: r.modified_at or "")
        return waiting[:limit]

    def mark_failed(self, row_id: str, failure: Failure) -> None:
        """The row ends failed."""
        self._check()
        with self._lock:
            self.failures[row_id] = failure
            if row_id in self.rows:
                self.rows[row_id] = replace(self.rows[row_id], queued=False)


class FakeCrmSendLedger:
    """Refused rows and the poll's place, in memory."""

    def __init__(self) -> None:
        self.refusals: dict[str, str] = {}
        self.since: datetime | None = None
        self.ran_at: float | None = None

    def refused(self, row_id: str) -> bool:
        """Whether this row was refused already."""
        return row_id in self.refusals

    def note_refused(self, row_id: str, code: str) -> None:
        """Remember a refusal."""
        self.refusals.setdefault(row_id, code)

    def poll_cursor(self) -> tuple[datetime | None, float | None]:
        """The poll's watermark and last run."""
        return self.since, self.ran_at

    def save_poll_cursor(self, since: datetime | None, ran_at: float) -> None:
        """Record the poll's place."""
        self.since, self.ran_at = since, ran_at


def _at(row: CrmSendRow) -> datetime | None:
    return datetime.fromisoformat(row.modified_at) if row.modified_at else None
