"""The pacing law for one Dataverse user: pure functions over :class:`~connector.ports.PaceState`.

Dataverse counts requests per user over a sliding window (documented: 6000 per 300 s per web
server; how many servers answer an environment is not known to the client) and answers 429
with ``Retry-After`` past the limit. Its debug headers must not be used for flow control, so
the fleet learns the limit from the 429s themselves:

- **Before the first 429** the fleet is paced from ``initial_rate`` and the rate doubles every
  ``doubling_seconds`` while the pace is what holds requests back (a slow start: the limit is
  found from below, so few requests are in flight when it is crossed, and every one refused
  makes Dataverse's ``Retry-After`` longer). "Holds back" means requests wait for their slot
  and are admitted at ``busy`` or more of the rate (a moving average over ``smoothing``
  seconds), so a rate the fleet cannot use anyway does not grow.
  Its slots are evenly spaced (a GCRA schedule); slots nobody took in the last
  ``catch_up_seconds`` may still be taken (a busy machine stalls threads now and then).
  Until the first 429 at most ``probe_in_flight`` requests are in flight across the fleet,
  or what the current rate needs at the requests' latency when that is more
  (:meth:`PacingLaw.in_flight_cap`): when the limit is crossed, every request then in flight
  is refused and each refusal in a row makes Dataverse's ``Retry-After`` longer, so the
  first pause is only as long as the window's room needs (measured: with 8 per process in
  flight the cold first pause grew by 5-15 s). Once the rate is learned the fleet cap holds.
- **On a 429** every process pauses until ``Retry-After`` (``paused_until``), and the first
  429 of a pause sets the rate to what the fleet had admitted in the last window, per second,
  less ``margin``: at the moment Dataverse refuses, the window holds its limit. The count is
  kept in ``slices`` fixed slices of the window and one before them, which the window's
  start always falls in (weighted by its overlap).
  A later 429 lowers the rate by at least ``decrease``.
- **Afterwards** the fleet keeps its own count of the window and admits a request while the
  count (every slice in full: an upper bound of what the sliding window holds) stays below
  ``rate * window_seconds``: room in the window (after a pause, or idle time) is used at once,
  and the window never holds more than the learned share of the limit. A full window says
  when to try again (when its oldest slice leaves). The rate grows by ``growth_per_second``
  (relative) per request admitted into a nearly full window, so a raised limit is found
  again, slowly.

Every function takes the state and ``now`` and returns the new state: no clock, no sleeping,
no I/O, so the whole law is unit-tested with numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from connector.ports import PaceState


@dataclass(frozen=True, slots=True)
class Slot:
    """When a request may go; ``taken=False``: none was taken, try again at ``at``."""

    at: float
    taken: bool


@dataclass(frozen=True, slots=True)
class PacingLaw:
    """The law's constants (``initial_rate=None``: not paced until the first 429)."""

    initial_rate: float | None = None
    doubling_seconds: float = 1.0
    growth_per_second: float = 0.002
    decrease: float = 0.05
    margin: float = 0.03
    window_seconds: float = 300.0
    slices: int = 20
    min_sample: int = 20
    floor: float = 0.5
    ceiling: float = 5000.0
    smoothing: float = 0.5
    busy: float = 0.7
    catch_up_seconds: float = 0.5
    probe_in_flight: int = 2

    def __post_init__(self) -> None:
        if self.initial_rate is not None and not self.initial_rate > 0:
            raise ValueError(f"initial_rate must be positive, not {self.initial_rate!r}")
        for name in ("doubling_seconds", "window_seconds", "floor", "smoothing"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if not 0 <= self.decrease < 1 or not 0 <= self.margin < 1:
            raise ValueError("decrease and margin are fractions below 1")
        if self.slices < 1:
            raise ValueError("slices must be at least 1")
        if self.probe_in_flight < 1:
            raise ValueError("probe_in_flight must be at least 1")

    def fresh(self, now: float) -> PaceState:
        """The state of a user no request has been made for."""
        return PaceState(
            rate=self.initial_rate,
            next_at=now,
            paused_until=0.0,
            learned=False,
            bucket_start=now,
            counts=(0,) * (self.slices + 1),
            recent=self.initial_rate or 0.0,  # a first burst is not taken for idleness
            last_at=now,
        )

    def in_flight_cap(self, state: PaceState | None, fleet_cap: int, latency: float = 0.0) -> int:
        """How many requests the fleet may have in flight: ``fleet_cap`` once a 429 taught
        the rate (or when unpaced: no slow start); before that, what the slow start's current
        rate keeps in flight at the requests' ``latency`` (seconds, a moving average), with a
        quarter to spare, and at least ``probe_in_flight``. So the cap never holds the fleet
        below its pace: against a Dataverse answering in 300 ms a 25/s pace has 10 requests in
        flight, and the cap grows with the rate; against a fast server it stays small."""
        if self.initial_rate is None or (state is not None and state.learned):
            return fleet_cap
        rate = state.rate if state is not None and state.rate else self.initial_rate
        needed = math.ceil(rate * max(0.0, latency) * 1.25)
        return max(1, min(fleet_cap, max(self.probe_in_flight, needed)))

    def admit(self, state: PaceState | None, now: float) -> tuple[PaceState | None, Slot]:
        """Try to take a request slot: the new state (None: unchanged) and the slot.

        A slot not ``taken`` says when to try again (the learned window is full until then).
        """
        state = self._rolled(state or self.fresh(now), now)
        rate, start, next_at = state.rate, max(now, state.paused_until), state.next_at
        elapsed = max(0.0, now - state.last_at)
        recent = state.recent * math.exp(-elapsed / self.smoothing) + 1.0 / self.smoothing
        if rate is not None and state.learned:
            budget = rate * self.window_seconds
            if sum(state.counts) + 1 > budget:  # full: a slice must leave the window first
                return None, Slot(max(start, state.bucket_start + self._slice), taken=False)
            if sum(state.counts) + 1 > budget * (1.0 - self.margin):  # the limit holds us back
                rate = min(self.ceiling, rate + self.growth_per_second)
        elif rate is not None:  # slow start: evenly spaced slots, the rate doubling
            base = max(state.next_at, now - self.catch_up_seconds, state.paused_until)
            start = max(base, now)  # slots missed in the last catch_up_seconds may be used
            next_at = base + 1.0 / rate
            if state.next_at > now >= state.paused_until and recent >= self.busy * rate:
                rate = min(self.ceiling, rate + math.log(2.0) / self.doubling_seconds)
        new = replace(
            state,
            rate=rate,
            next_at=next_at,
            counts=(*state.counts[:-1], state.counts[-1] + 1),
            recent=recent,
            last_at=max(now, state.last_at),
            version=state.version + 1,
        )
        return new, Slot(start, taken=True)

    def throttled(self, state: PaceState | None, now: float, retry_after: float) -> PaceState:
        """Dataverse refused a request with ``Retry-After``: pause everyone and slow down."""
        state = self._rolled(state or self.fresh(now), now)
        until = max(state.paused_until, now + max(0.0, retry_after))
        rate, learned = state.rate, state.learned
        if state.paused_until <= now:  # the first 429 of this pause: one lesson per pause
            counted = self.admitted_in_window(state, now)
            lowered = None if rate is None else rate * (1.0 - self.decrease)
            if counted >= self.min_sample:
                taught = counted / self.window_seconds * (1.0 - self.margin)
                if rate is None:
                    rate = taught
                else:  # slow start overshoots: the count is the better guess; later, both
                    rate = min(rate if not learned else rate * (1.0 - self.decrease), taught)
                learned = True
            else:  # too few of ours in the window to learn from: someone else spent it
                rate = lowered
            if rate is not None:
                rate = max(self.floor, rate)
        return replace(
            state,
            rate=rate,
            learned=learned,
            paused_until=until,
            next_at=max(state.next_at, until),
            version=state.version + 1,
        )

    def admitted_in_window(self, state: PaceState, now: float) -> float:
        """Requests admitted in the last ``window_seconds`` (the oldest slice counts for the
        part of it still inside the window)."""
        state = self._rolled(state, now)
        gone = min(1.0, max(0.0, (now - state.bucket_start) / self._slice))
        return state.counts[0] * (1.0 - gone) + sum(state.counts[1:])

    @property
    def _slice(self) -> float:
        return self.window_seconds / self.slices

    def _rolled(self, state: PaceState, now: float) -> PaceState:
        """``state`` with its slices moved on so that the newest holds ``now``."""
        counts, kept_slices = state.counts, self.slices + 1
        if len(counts) != kept_slices:  # stored under another law: start counting afresh
            return replace(state, bucket_start=now, counts=(0,) * kept_slices)
        moved = math.floor((now - state.bucket_start) / self._slice)
        if moved <= 0:
            return state
        kept = counts[moved:] if moved < kept_slices else ()
        counts = (*kept, *(0,) * (kept_slices - len(kept)))
        return replace(state, bucket_start=state.bucket_start + moved * self._slice, counts=counts)
