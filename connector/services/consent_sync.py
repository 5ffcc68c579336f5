"""Keep the local consent ledger and Dataverse's ``smsc_consent`` ledger in step.

**Push**: changes recorded locally (keywords, API requests, provider refusals) are written to
Dataverse in one ``$batch`` per run (the current row per phone, sender and purpose, and one
history row per change), oldest first; a change Dataverse refused waits and is tried again,
backing off. Writes are idempotent (ids derive from the change), so a retry after a lost
answer rewrites the same rows.

**Pull**: rows changed in Dataverse (an administrator's edit, an import) come back into the
local ledger, so the send path's check, which never asks Dataverse, sees them. The first pull
of a process reads every row, later ones what changed since the last, less five minutes
(``modifiedon`` has one-second precision and Dataverse's clock is not ours; rows read again
are skipped). A row that says what the local ledger already
says is skipped, and so is any row of a (phone, sender) whose local change Dataverse does not
have yet: the local change is newer and its push is on the way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from connector.domain.consent import ConsentChange
from connector.domain.model import MessageCategory
from connector.log_config import get_logger
from connector.ports import ConsentLedgerWriter

log = get_logger(__name__)
_OVERLAP = timedelta(minutes=5)  # clock skew with Dataverse, one-second stamps


class SyncedLedger(Protocol):
    """What syncing needs of the local ledger (``connector.state.consent.ConsentLedger``)."""

    def apply(
        self, changes: Sequence[ConsentChange], *, synced: bool = False
    ) -> list[ConsentChange]: ...

    def current(
        self, phone: str, configuration_id: str
    ) -> dict[MessageCategory, ConsentChange]: ...

    def unsynced(self, now: float, limit: int = 100) -> list[ConsentChange]: ...

    def has_unsynced(self, phone: str, configuration_id: str) -> bool: ...

    def mark_synced(self, ids: Sequence[str]) -> None: ...

    def sync_failed(self, failures: Mapping[str, Exception], now: float) -> None: ...


@dataclass
class ConsentSync:
    """Pushes local changes to Dataverse and pulls Dataverse's (see the module docstring)."""

    ledger: SyncedLedger
    writer: ConsentLedgerWriter
    batch_size: int = 100
    clock: Callable[[], float] = time.time
    pulled_at: datetime | None = field(default=None)

    def push(self) -> int:
        """Write what Dataverse lacks (one ``$batch``); how many changes it now has."""
        now = self.clock()
        changes = self.ledger.unsynced(now, self.batch_size)
        if not changes:
            return 0
        errors = self.writer.write(changes)
        done = [c.id for c, e in zip(changes, errors, strict=True) if e is None]
        failed = {c.id: e for c, e in zip(changes, errors, strict=True) if e is not None}
        self.ledger.mark_synced(done)
        if failed:
            self.ledger.sync_failed(failed, now)
            log.warning(
                "consent.sync_failed",
                failed=len(failed),
                first=str(next(iter(failed.values())))[:200],
            )
        log.info("consent.synced", changes=len(done))
        return len(done)

    def pull(self) -> int:
        """Bring Dataverse's changes into the local ledger; how many were new here."""
        started = datetime.now(UTC)
        since = self.pulled_at - _OVERLAP if self.pulled_at else None
        applied = 0
        for remote in self.writer.changed_since(since):
            if self.ledger.has_unsynced(remote.phone, remote.configuration_id):
                continue
            held = self.ledger.current(remote.phone, remote.configuration_id).get(remote.purpose)
            if held is not None and held.status is remote.status:
                continue
            applied += len(self.ledger.apply([remote], synced=True))
        self.pulled_at = started
        if applied:
            log.info("consent.pulled", changes=applied)
        return applied
