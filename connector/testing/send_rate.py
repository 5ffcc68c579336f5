"""An in-memory :class:`~connector.ports.SendRate` (shipped fake for tests): evenly spaced
slots per key from the first reservation, no sleeping, no database."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from connector.ports import SendRate


@dataclass
class FakeSendRate:
    """Slots one per ``1/per_second`` seconds per key; ``next_at`` is the next free slot."""

    next_at: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reserve(self, key: str, per_second: float, now: float) -> float:
        """The next slot of ``key`` at or after ``now`` (each call takes one)."""
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        with self._lock:
            slot = max(self.next_at.get(key, now), now)
            self.next_at[key] = slot + 1 / per_second
            return slot


def _conforms(fake: FakeSendRate) -> SendRate:
    """mypy checks the fake against the port here."""
    return fake
