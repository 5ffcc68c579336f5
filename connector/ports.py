"""Protocols the core (``domain/`` and ``services/``) depends on.

Adapters in ``dataverse/``, ``providers/`` and ``state/`` implement them; shipped fakes in
``connector/testing/`` implement them too, so services are tested against state, not mocks.
Each area adds its port here as it is built.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from connector.domain.routing import RecordRef, Resolution, SenderContext


class Clock(Protocol):
    """Where the current time comes from (injected so tests control it)."""

    def now(self) -> float:
        """Seconds since the epoch, UTC."""
        ...


class RecordResolver(Protocol):
    """Finds the CRM record an inbound number belongs to (phone index, then one live query).

    ``resolve`` never returns "unknown": for a number no record carries it creates one lead
    (exactly once, however many messages from the number arrive together) and returns it
    with ``created=True``. The returned :class:`~connector.domain.routing.MatchTrace` is
    what the session stores as its match trace.
    """

    def resolve(self, phone_e164: str, sender: SenderContext) -> Resolution:
        """The record for ``phone_e164`` texting the sender described by ``sender``."""
        ...

    def note_conversation(
        self, phone_e164: str, record: RecordRef, at: datetime | None = None
    ) -> None:
        """Remember that ``record`` had a conversation with the number (the first rule)."""
        ...
