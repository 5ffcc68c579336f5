"""Quiet hours: the part of each local day a sender does not text, and when it may again.

A configuration keeps its quiet hours as text such as ``21:00-08:00`` (a window may wrap past
midnight) and its time zone as an IANA name (none means UTC). The window is ``[start, end)``
in local wall-clock time: at 21:00 it is quiet, at 08:00 sending is allowed again.

Daylight saving time is taken as the wall clock shows it: when the window's end falls into
the hour skipped in spring, sending resumes at the first instant after the gap; when it falls
into the hour repeated in autumn, at its first occurrence (unless that has already passed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.errors import ConfigurationError

_WINDOW = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*[-\u2013]\s*([0-9]{1,2}):([0-9]{2})")
_SHOWN = 40  # characters of a bad value quoted in an error message
# A window's end can land in a gap (skipped hour) at most a couple of times in a row (a zone
# that skipped a whole day, then a quiet window again): look no further than this.
_MAX_STEPS = 4


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily quiet window ``[start, end)`` in local wall-clock time; wraps past midnight
    when ``start`` is later than ``end``."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ConfigurationError("quiet hours are wall-clock times without a time zone")
        if self.start == self.end:
            raise ConfigurationError(
                f"quiet hours start and end at the same time ({self.start:%H:%M})"
            )

    @classmethod
    def parse(cls, text: str | None) -> QuietHours | None:
        """``"HH:MM-HH:MM"`` as a window, or None for no quiet hours (None or blank).

        Raises :class:`ConfigurationError` naming the value when it is not two times of day
        (hours 0-23, minutes 0-59) or starts and ends at the same time.
        """
        if text is None or not text.strip():
            return None
        shown = text.strip()[:_SHOWN]
        found = _WINDOW.fullmatch(text.strip())
        if found is None:
            raise ConfigurationError(
                f"quiet hours {shown!r} must look like 21:00-08:00 (HH:MM-HH:MM)",
                details={"quiet_hours": shown},
            )
        start_hour, start_minute, end_hour, end_minute = (int(part) for part in found.groups())
        if max(start_hour, end_hour) > 23 or max(start_minute, end_minute) > 59:
            raise ConfigurationError(
                f"quiet hours {shown!r} name a time that does not exist (hours 0-23, minutes 0-59)",
                details={"quiet_hours": shown},
            )
        try:
            return cls(time(start_hour, start_minute), time(end_hour, end_minute))
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"quiet hours {shown!r}: {exc.message}", details={"quiet_hours": shown}
            ) from exc


def _zone(name: str | None) -> tzinfo:
    """The time zone named ``name`` (IANA); None or blank is UTC."""
    if name is None or not name.strip():
        return UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        shown = name.strip()[:_SHOWN]
        raise ConfigurationError(
            f"time zone {shown!r} is not an IANA time zone name (such as Europe/London)",
            details={"time_zone": shown},
        ) from exc


def _is_quiet(wall: time, quiet: QuietHours) -> bool:
    if quiet.start < quiet.end:
        return quiet.start <= wall < quiet.end
    return wall >= quiet.start or wall < quiet.end


def _local(instant: float, zone: tzinfo) -> datetime:
    return datetime.fromtimestamp(instant, zone)


def _first_instant_at(wall: datetime, zone: tzinfo, after: float) -> float:
    """The first instant later than ``after`` whose local wall clock reads ``wall`` or, when
    ``wall`` does not exist (skipped by a DST gap), the first instant after the gap."""
    naive = wall.replace(tzinfo=None)
    first = naive.replace(tzinfo=zone, fold=0).timestamp()
    second = naive.replace(tzinfo=zone, fold=1).timestamp()
    if _local(first, zone).replace(tzinfo=None) == naive:
        # The wall time exists (once, or twice when the clock goes back): first occurrence,
        # unless that one is already past.
        return first if first > after else second
    # A gap: fold=1 reads the time with the offset after the change (an instant before the
    # gap), fold=0 with the offset before (an instant after it). The gap starts between them.
    low, high = int(min(first, second)), int(max(first, second)) + 1
    while low < high:
        middle = (low + high) // 2
        if _local(middle, zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle + 1
    return float(low)


def next_allowed(now: float, quiet: QuietHours, zone: str | None) -> float | None:
    """When a message may go out, in epoch seconds, if ``now`` is in the quiet window of
    time zone ``zone`` (IANA; None is UTC); None when ``now`` is outside it.

    The answer is the window's end on the right local day (today, or tomorrow for a window
    that started before midnight). An unknown zone is a :class:`ConfigurationError`.
    """
    tz = _zone(zone)
    local = _local(now, tz)
    if not _is_quiet(local.time(), quiet):
        return None
    instant = now
    for _ in range(_MAX_STEPS):
        day = local.date()
        if quiet.start > quiet.end and local.time() >= quiet.start:
            day += timedelta(days=1)
        instant = _first_instant_at(datetime.combine(day, quiet.end), tz, instant)
        local = _local(instant, tz)
        if not _is_quiet(local.time(), quiet):
            break
    return instant
