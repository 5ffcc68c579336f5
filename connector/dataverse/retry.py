"""The one retry policy for Dataverse calls (tenacity).

Retries what :func:`~connector.errors.is_transient` calls transient: 429 (waiting exactly the
``Retry-After`` seconds the service asked for), 502/503/504 and connection failures (with
full-jitter exponential backoff when no ``Retry-After`` came), for a bounded number of
attempts, then re-raises the last error. A request that Dataverse may already have carried
out (``maybe_applied``: a gateway timeout, a connection dropped after sending) is repeated
only when it is idempotent, so a retry never duplicates a create. ``sleep`` is injected so
unit tests run without sleeping and can read the waits. That every request of the fleet
honours a ``Retry-After`` one of them received is :mod:`connector.dataverse.protection`'s job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from connector.errors import ConnectorError, is_transient
from connector.log_config import get_logger

T = TypeVar("T")
log = get_logger(__name__)


def should_retry(exc: BaseException, *, idempotent: bool) -> bool:
    """Whether ``exc`` is worth another attempt of a request (idempotent or not)."""
    if not is_transient(exc):
        return False
    maybe_applied = isinstance(exc, ConnectorError) and exc.details.get("maybe_applied", False)
    return idempotent or not maybe_applied


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts; Retry-After honoured; jittered backoff otherwise."""

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep)
    clock: Callable[[], float] = field(default=time.monotonic)

    @classmethod
    def from_max_retries(cls, max_retries: int, **kwargs: object) -> RetryPolicy:
        """A policy allowing ``max_retries`` retries after the first attempt."""
        return cls(max_attempts=max_retries + 1, **kwargs)  # type: ignore[arg-type]

    def wait_seconds(self, state: RetryCallState) -> float:
        """Seconds before the next attempt: the error's Retry-After, else jittered backoff."""
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int | float):
            return float(retry_after)
        backoff = wait_random_exponential(multiplier=self.backoff_base, max=self.backoff_max)
        return float(backoff(state))

    def call(self, attempt: Callable[[], T], *, idempotent: bool, what: str = "") -> T:
        """Run ``attempt`` until it succeeds, fails for good, or attempts run out."""
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self.wait_seconds,
            retry=retry_if_exception(lambda exc: should_retry(exc, idempotent=idempotent)),
            sleep=self.sleep,
            before_sleep=lambda state: _log_retry(state, what),
            reraise=True,
        )
        return retrying(attempt)


def _log_retry(state: RetryCallState, what: str) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "dataverse.retry",
        request=what,
        attempt=state.attempt_number,
        wait_seconds=round(state.upcoming_sleep, 3),
        error=exc.to_dict() if isinstance(exc, ConnectorError) else repr(exc),
    )
