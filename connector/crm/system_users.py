"""Systemusers by Entra object id (``azureactivedirectoryobjectid``), cached.

A user token names its user by ``oid``; Dataverse's rows name users by ``systemuserid``. The
mapping never changes for a user, so answers (found or not) are kept: found ones for the
process's life, misses for a minute (a user added to the environment gets in soon after).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from connector.dataverse.client import DataverseClient
from connector.dataverse.odata import literal

MISS_TTL = 60.0
MAX_ENTRIES = 10_000


class SystemUsers:
    """``systemuserid`` of an Entra object id, or None when the environment has no such user."""

    def __init__(
        self, client: DataverseClient, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._clock = clock
        self._found: dict[str, str] = {}
        self._missed: dict[str, float] = {}
        self._lock = threading.Lock()

    def by_object_id(self, object_id: str) -> str | None:
        """The enabled systemuser whose ``azureactivedirectoryobjectid`` is ``object_id``."""
        key = str(uuid.UUID(object_id))  # a GUID, normalised; anything else is a ValueError
        with self._lock:
            if key in self._found:
                return self._found[key]
            missed = self._missed.get(key)
            if missed is not None and self._clock() - missed < MISS_TTL:
                return None
        rows = list(
            self._client.query(
                "systemusers",
                select=["systemuserid"],
                filter=f"azureactivedirectoryobjectid eq {literal(uuid.UUID(key))} "
                "and isdisabled eq false",
                top=1,
            )
        )
        with self._lock:
            if len(self._found) + len(self._missed) >= MAX_ENTRIES:
                self._found.clear()
                self._missed.clear()
            if rows:
                self._found[key] = str(rows[0]["systemuserid"])
                return self._found[key]
            self._missed[key] = self._clock()
        return None
