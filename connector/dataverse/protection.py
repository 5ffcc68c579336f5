"""Service protection for one Dataverse user, shared by every request of every process.

Dataverse's limits count per user (per web server), and every process of a fleet is the same
application user, so what one request learns holds for all. :class:`ServiceProtection` sits
in front of each request (:class:`~connector.dataverse.transport.WebApi` calls it):

1. **Pause.** A 429's ``Retry-After`` is written to the store (``paused_until``); every
   process waits it out. A process reads the shared value at most every
   ``pause_cache_seconds`` (and with every slot it takes), so a pause reaches the whole fleet
   within that moment while costing no database read per request.
2. **Pace.** Each request takes a slot at the fleet's learned rate
   (:mod:`connector.dataverse.pacing`), evenly spaced across processes. The state changes by
   compare-and-set from the last state this process saw (read again only when another
   process wrote since), so a request costs one statement and no lock is held while Python
   runs. The threads of one process talk to the store one at a time (a SQLite writer that
   finds the file locked sleeps in steps of milliseconds; they would only collide).
3. **Cap.** At most ``fleet_cap`` requests are in flight across the fleet: every process is a
   member of the user's fleet (a row it renews every ``member_seconds``, expiring after
   ``member_ttl``, so a killed process drops out) and runs at most its share,
   ``fleet_cap // members`` (at least one). Until the first 429 teaches the rate, the cap is
   what the slow start's rate needs at the requests' measured latency, at least the law's
   ``probe_in_flight``: few requests in flight when the limit is first crossed (so few
   refusals lengthen Dataverse's ``Retry-After``), yet never fewer than the pace needs
   against a slow server. A process joining is counted by the others at their next renewal,
   so for those seconds the fleet may run one share over the cap: the default cap (32)
   leaves Dataverse's 52 room for that. This costs a statement per process every few seconds
   instead of two per request (a leased slot per request halved the client's throughput on a
   busy 2-core machine).

The store is the fleet's (:class:`~connector.ports.PacingStore`: the state store's tables)
or, for one process without a state store (tools, tests), :class:`MemoryPacingStore`.
The clock and ``sleep`` are injected: unit tests run it without sleeping.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from connector.dataverse.pacing import PacingLaw, Slot
from connector.errors import StateStoreError
from connector.log_config import get_logger
from connector.ports import PaceState, PacingStore

T = TypeVar("T")
log = get_logger(__name__)
_CAS_TRIES = 50


class MemoryPacingStore:
    """The pacing state of one process (implements :class:`~connector.ports.PacingStore`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, PaceState] = {}
        self._members: dict[tuple[str, str], float] = {}

    def read(self, key: str) -> PaceState | None:
        with self._lock:
            return self._states.get(key)

    def write(self, key: str, expected: PaceState | None, new: PaceState) -> bool:
        with self._lock:
            if self._states.get(key) != expected:
                return False
            self._states[key] = new
            return True

    def join(self, key: str, member: str, now: float, ttl: float) -> int:
        with self._lock:
            self._members[(key, member)] = now + ttl
            return sum(1 for (k, _), end in self._members.items() if k == key and end > now)

    def part(self, key: str, member: str) -> None:
        with self._lock:
            self._members.pop((key, member), None)


class ServiceProtection:
    """Pause, pace and cap the requests of one Dataverse user across the fleet."""

    def __init__(
        self,
        key: str,
        store: PacingStore | None = None,
        law: PacingLaw | None = None,
        *,
        fleet_cap: int = 32,
        pause_cache_seconds: float = 0.1,
        member_seconds: float = 2.0,
        member_ttl: float = 10.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if fleet_cap < 1:
            raise ValueError(f"fleet_cap must be at least 1, not {fleet_cap!r}")
        self.key = key
        self.store: PacingStore = store or MemoryPacingStore()
        self.law = law or PacingLaw()
        self.fleet_cap = fleet_cap
        self._cache_for = pause_cache_seconds
        self._member_every = member_seconds
        self._member_ttl = member_ttl
        self._clock = clock
        self._sleep = sleep
        self.member = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()  # guards the fields below
        self._store_turn = threading.Lock()  # one store statement at a time per process
        self._paused_until = 0.0
        self._read_at = float("-inf")
        self._seen: PaceState | None = None
        self._members = 1
        self._joined_at = float("-inf")
        self._in_flight = 0
        self._freed = threading.Condition(self._lock)
        self._latency = 0.0  # a moving average of request durations, seconds
        self._started = threading.local()  # when this thread's request went

    def enter(self) -> None:
        """Wait until a request may go (room under this process's share of the cap, pause
        over, its slot reached) and count it in; :meth:`leave` counts it out.

        Room comes first: a request that waited for room may not go without looking at the
        pause and taking a slot afterwards (else a 429 that came meanwhile is ignored).
        """
        self._take_room()
        try:
            while True:
                self._wait_pause()
                try:
                    slot = self._change(self.law.admit)[1]
                except StateStoreError as exc:  # unpaced beats stopped; 429s still tell
                    log.warning("dataverse.pace_unavailable", error=str(exc))
                    slot = Slot(self._clock(), taken=True)
                self._sleep_until(slot.at)
                if slot.taken and self.paused_until() <= self._clock():
                    self._started.at = self._clock()
                    return  # else a 429 came while we waited our turn: take a new one
        except BaseException:
            self.leave()
            raise

    def leave(self) -> None:
        """The request is over (its duration feeds the latency the slow start's cap uses)."""
        started = getattr(self._started, "at", None)
        self._started.at = None
        took = None if started is None else max(0.0, self._clock() - started)
        with self._freed:
            self._in_flight -= 1
            if took is not None:
                self._latency = took if not self._latency else 0.8 * self._latency + 0.2 * took
            self._freed.notify()

    def throttled(self, retry_after: float) -> None:
        """A request was answered 429 with ``retry_after``: pause the fleet and slow down."""
        try:
            state = self._change(lambda s, now: (self.law.throttled(s, now, retry_after), None))[0]
        except StateStoreError as exc:  # this process at least honours it
            log.warning("dataverse.pace_unavailable", error=str(exc))
            with self._lock:
                self._paused_until = max(self._paused_until, self._clock() + retry_after)
            return
        with self._freed:  # a learned rate may lift the cap: let waiting requests look
            self._freed.notify_all()
        rate = None if state is None or state.rate is None else round(state.rate, 2)
        log.info("dataverse.throttled", retry_after=retry_after, rate=rate)

    def paused_until(self) -> float:
        """The fleet's pause end as this process knows it (read again when older than
        ``pause_cache_seconds``)."""
        now = self._clock()
        with self._lock:
            if now - self._read_at < self._cache_for:
                return self._paused_until
        try:
            with self._store_turn:
                state = self.store.read(self.key)
        except StateStoreError as exc:  # keep going on what we know; the 429s still tell
            log.warning("dataverse.pace_unreadable", error=str(exc))
            return self._paused_until
        self._remember(state, now)
        return self._paused_until

    def share(self) -> int:
        """How many requests this process may have in flight: its share of the fleet cap
        (of ``probe_in_flight`` while the rate is not learned, :meth:`PacingLaw.in_flight_cap`)."""
        now = self._clock()
        with self._lock:
            if now - self._joined_at < self._member_every:
                return self._share_now()
        try:
            with self._store_turn:
                members = self.store.join(self.key, self.member, now, self._member_ttl)
        except StateStoreError as exc:  # keep the share we had
            log.warning("dataverse.fleet_unavailable", error=str(exc))
            with self._lock:
                self._joined_at = now
                return self._share_now()
        with self._freed:
            self._members = max(1, members)
            self._joined_at = now
            self._freed.notify_all()
            return self._share_now()

    def _share_now(self) -> int:
        """This process's share from the members last counted (call holding ``_lock``)."""
        cap = self.law.in_flight_cap(self._seen, self.fleet_cap, self._latency)
        return max(1, cap // self._members)

    def state(self) -> PaceState | None:
        """The stored pacing state (for reports and tests)."""
        return self.store.read(self.key)

    def close(self) -> None:
        """Leave the fleet (the others take over this process's share)."""
        try:
            with self._store_turn:
                self.store.part(self.key, self.member)
        except StateStoreError as exc:  # the membership runs out by itself
            log.warning("dataverse.fleet_unavailable", error=str(exc))

    def _take_room(self) -> None:
        share = self.share()
        with self._freed:
            while self._in_flight >= share:
                self._freed.wait(timeout=self._member_every)
                share = self._share_now()
            self._in_flight += 1

    def _wait_pause(self) -> None:
        while True:
            remaining = self.paused_until() - self._clock()
            if remaining <= 0:
                return
            self._sleep(remaining)

    def _change(
        self, step: Callable[[PaceState | None, float], tuple[PaceState | None, T]]
    ) -> tuple[PaceState | None, T]:
        """Apply ``step`` to the stored state by compare-and-set, retrying on a race (a step
        that changes nothing is decided on a fresh read, and writes nothing)."""
        with self._store_turn:
            current, fresh = self._seen, False
            for _ in range(_CAS_TRIES):
                now = self._clock()
                new, result = step(current, now)
                if new is None and fresh:
                    self._seen = current
                    self._remember(current, now)
                    return current, result
                if new is not None and self.store.write(self.key, current, new):
                    self._seen = new
                    self._remember(new, now)
                    return new, result
                current, fresh = self.store.read(self.key), True  # start from what is stored
        raise StateStoreError(f"pacing state of {self.key} kept changing under {_CAS_TRIES} tries")

    def _remember(self, state: PaceState | None, now: float) -> None:
        with self._lock:
            self._read_at = now
            if state is not None:
                self._paused_until = state.paused_until

    def _sleep_until(self, moment: float) -> None:
        remaining = moment - self._clock()
        if remaining > 0:
            self._sleep(remaining)
