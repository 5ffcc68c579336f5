"""The admin keywords (``smsc_keyword``), read from Dataverse for the inbound path and cached.

Every row in one query (keywords are few), kept for ``ttl_seconds``. A row the connector cannot
read (an option value it does not know) is skipped with a logged reason; it never stops the
others. A failed refresh keeps the last rows (the built-in STOP, START and HELP families work
without any row).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from connector.crm import tables
from connector.dataverse.client import DataverseClient
from connector.domain.model import Keyword
from connector.errors import ConnectorError
from connector.log_config import get_logger

log = get_logger(__name__)


class DataverseKeywords:
    """The ``smsc_keyword`` rows, cached for ``ttl_seconds`` (thread-safe)."""

    def __init__(
        self,
        client: DataverseClient,
        ttl_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._rows: tuple[Keyword, ...] = ()
        self._loaded_at: float | None = None

    def for_configuration(self, configuration_id: str) -> Sequence[Keyword]:
        """The active keywords of ``configuration_id`` and those of every sender."""
        own = configuration_id.lower()
        return [
            k
            for k in self._current()
            if k.active and (k.configuration_id or "").lower() in ("", own)
        ]

    def _current(self) -> tuple[Keyword, ...]:
        loaded = self._loaded_at
        if loaded is not None and self._clock() - loaded < self._ttl:
            return self._rows
        with self._lock:
            loaded = self._loaded_at
            if loaded is None or self._clock() - loaded >= self._ttl:
                self._load()
            return self._rows

    def _load(self) -> None:
        """One query of every keyword (caller holds the lock)."""
        try:
            rows = list(self._client.query(tables.KEYWORD.entity_set))
        except ConnectorError as exc:
            log.warning("keywords.refresh_failed", code=exc.code)
            if self._loaded_at is None:
                raise
            self._loaded_at = self._clock()
            return
        found = []
        for row in rows:
            try:
                found.append(tables.keyword_from_row(row))
            except ConnectorError as exc:
                log.warning("keywords.row_skipped", reason=exc.message[:200])
        self._rows = tuple(found)
        self._loaded_at = self._clock()
