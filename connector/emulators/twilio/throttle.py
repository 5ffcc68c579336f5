"""The simulator's per-sender rate limit: a token bucket per ``From`` number.

With ``SimulatorOptions.sender_rate_limit_mps`` set, a create from a number that sends
faster than the limit is refused with HTTP 429 / Twilio 20429 ("Too Many Requests"), so a
test or benchmark sees at once when the connector's sending rate lets a burst through (real
Twilio would queue it and fail later with 21611 / 30001). The bucket refills at the limit
plus a tolerance (5 %) and holds two tokens: sends evenly spaced at exactly the limit always
pass, scheduling jitter of up to one interval passes, a burst of three does not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

TOLERANCE = 1.05
CAPACITY = 2.0


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class SenderThrottle:
    """Token buckets per sender; ``clock`` is monotonic seconds (injected by tests)."""

    clock: Callable[[], float] = time.monotonic
    tolerance: float = TOLERANCE
    capacity: float = CAPACITY
    refused: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def admit(self, sender: str, limit_mps: float) -> bool:
        """Take a token of ``sender`` at ``limit_mps``; False (and counted) when it has none."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.setdefault(sender, _Bucket(self.capacity, now))
            refill = (now - bucket.at) * limit_mps * self.tolerance
            bucket.tokens = min(self.capacity, bucket.tokens + max(refill, 0.0))
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return True
            self.refused[sender] = self.refused.get(sender, 0) + 1
            return False

    def counts(self) -> dict[str, int]:
        """Refusals per sender so far."""
        with self._lock:
            return dict(self.refused)

    def reset(self) -> None:
        """Forget buckets and refusal counts."""
        with self._lock:
            self._buckets.clear()
            self.refused.clear()
