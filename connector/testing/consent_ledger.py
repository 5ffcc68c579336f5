"""A shipped fake of :class:`~connector.ports.ConsentLedgerWriter`: the consent ledger in memory.

It keeps what Dataverse would keep after the same calls: one current row per (phone,
configuration, purpose), rewritten by each change in the order given, and one history entry
per change id (a repeated change rewrites its entry). Changes that could not be addressed in
Dataverse (a phone that is not E.164, a configuration or change id that is not a GUID) fail
alone with :class:`~connector.errors.InvalidInputError`; ``down`` fails every change with a
transient error, as an unreachable Dataverse would. :meth:`FakeConsentLedger.edit` changes a
current row the way an administrator does on the form (no history entry).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from connector.domain.consent import ConsentChange, ConsentStatus, change_id
from connector.domain.model import MessageCategory
from connector.domain.phone import to_key_value
from connector.errors import DataverseUnavailableError, InvalidInputError

ConsentKey = tuple[str, str, MessageCategory]


@dataclass(frozen=True, slots=True)
class ConsentRow:
    """A current row: its id, the state it holds, its version and when it was last modified
    (whole seconds, as Dataverse reports ``modifiedon``)."""

    id: str
    change: ConsentChange
    version: int
    modified: datetime


def _check(change: ConsentChange) -> None:
    to_key_value(change.phone)
    for name, value in (("configuration", change.configuration_id), ("change", change.id)):
        try:
            uuid.UUID(value)
        except ValueError:
            raise InvalidInputError(f"not a {name} id: {value[:80]!r}") from None


@dataclass
class FakeConsentLedger:
    """Implements :class:`~connector.ports.ConsentLedgerWriter` in memory."""

    current: dict[ConsentKey, ConsentRow] = field(default_factory=dict)
    history: dict[str, ConsentChange] = field(default_factory=dict)
    batches: int = 0
    down: bool = False
    clock: Callable[[], float] = time.time
    _version: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, changes: Sequence[ConsentChange]) -> list[Exception | None]:
        """Apply each change in order to its current row and the history (one batch)."""
        if self.down:
            return [DataverseUnavailableError("fake Dataverse is down", status=503)] * len(changes)
        errors: list[Exception | None] = []
        with self._lock:
            self.batches += 1
            for change in changes:
                try:
                    _check(change)
                except InvalidInputError as exc:
                    errors.append(exc)
                    continue
                key = (change.phone, change.configuration_id, change.purpose)
                row = self.current.get(key)
                self.current[key] = self._row(row.id if row else str(uuid.uuid4()), change)
                self.history[change.id] = change
                errors.append(None)
        return errors

    def changed_since(self, since: datetime | None) -> list[ConsentChange]:
        """Current rows modified at or after ``since`` (whole seconds), oldest edit first."""
        floor = None if since is None else since.astimezone(UTC).replace(microsecond=0)
        with self._lock:
            rows = [r for r in self.current.values() if floor is None or r.modified >= floor]
        rows.sort(key=lambda r: (r.modified, r.id))
        return [
            replace(
                r.change,
                id=change_id(
                    f"fake|{r.id}|{r.version}",
                    r.change.phone,
                    r.change.configuration_id,
                    r.change.purpose,
                ),
            )
            for r in rows
        ]

    def edit(
        self, phone: str, configuration_id: str, purpose: MessageCategory, status: ConsentStatus
    ) -> None:
        """An administrator sets the status of an existing current row (no history entry)."""
        key = (phone, configuration_id, purpose)
        with self._lock:
            row = self.current[key]
            self.current[key] = self._row(row.id, replace(row.change, status=status))

    def _row(self, row_id: str, change: ConsentChange) -> ConsentRow:
        self._version += 1
        modified = datetime.fromtimestamp(int(self.clock()), tz=UTC)
        return ConsentRow(row_id, change, self._version, modified)
