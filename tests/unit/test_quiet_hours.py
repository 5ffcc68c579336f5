"""Quiet hours: parsing the configured text, the next allowed moment in a time zone across
midnight and daylight-saving changes, and properties that hold for any moment and window."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.domain.quiet_hours import QuietHours, next_allowed
from connector.errors import ConfigurationError

NEW_YORK = "America/New_York"
LONDON = "Europe/London"
NIGHT = QuietHours(time(21), time(8))
LUNCH = QuietHours(time(12), time(13))


def _at(zone: str | None, year: int, month: int, day: int, *clock: int, fold: int = 0) -> float:
    """Epoch seconds of a local wall-clock time (hour, minute, second) in ``zone`` (None:
    UTC)."""
    tz = ZoneInfo(zone) if zone else UTC
    hour, minute, second = (*clock, 0, 0, 0)[:3]
    return datetime(year, month, day, hour, minute, second, tzinfo=tz, fold=fold).timestamp()


def _utc(year: int, month: int, day: int, *clock: int) -> float:
    return _at(None, year, month, day, *clock)


# --- parse ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("21:00-08:00", time(21), time(8)),
        ("22:30 - 07:15", time(22, 30), time(7, 15)),
        ("9:00-17:00", time(9), time(17)),
        (" 00:00-23:59 ", time(0), time(23, 59)),
        ("23:00\u201306:00", time(23), time(6)),  # an en dash
    ],
)
def test_parse_reads_a_window(text: str, start: time, end: time) -> None:
    assert QuietHours.parse(text) == QuietHours(start, end)


@pytest.mark.parametrize("text", [None, "", "   ", "\t\n"])
def test_parse_of_nothing_is_no_quiet_hours(text: str | None) -> None:
    assert QuietHours.parse(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "21:00",
        "21-08",
        "9pm-8am",
        "21:00-08:00-09:00",
        "24:00-08:00",
        "21:00-25:00",
        "21:60-08:00",
        "21:00-08:5",
        "-1:00-08:00",
        "21:00 to 08:00",
        "\uff12\uff11:00-08:00",  # full-width digits are not taken
    ],
)
def test_parse_refuses_a_bad_value_naming_it(text: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        QuietHours.parse(text)
    assert repr(text.strip()) in caught.value.message
    assert caught.value.details == {"quiet_hours": text.strip()}


def test_parse_refuses_a_window_that_starts_where_it_ends() -> None:
    with pytest.raises(ConfigurationError, match=r"'08:00-08:00'.*same time"):
        QuietHours.parse("08:00-08:00")


def test_a_window_cannot_start_where_it_ends() -> None:
    with pytest.raises(ConfigurationError, match="same time"):
        QuietHours(time(8), time(8))


def test_a_window_is_wall_clock_time_without_a_zone() -> None:
    with pytest.raises(ConfigurationError, match="without a time zone"):
        QuietHours(time(21, tzinfo=UTC), time(8))


def test_a_long_bad_value_is_shortened_in_the_message() -> None:
    with pytest.raises(ConfigurationError) as caught:
        QuietHours.parse("x" * 500)
    assert len(caught.value.message) < 120


# --- next_allowed --------------------------------------------------------------------------


def test_late_evening_waits_for_the_next_morning() -> None:
    now = _at(NEW_YORK, 2026, 1, 15, 22)
    assert next_allowed(now, NIGHT, NEW_YORK) == _at(NEW_YORK, 2026, 1, 16, 8)


def test_early_morning_waits_for_the_same_morning() -> None:
    now = _at(NEW_YORK, 2026, 1, 15, 3)
    assert next_allowed(now, NIGHT, NEW_YORK) == _at(NEW_YORK, 2026, 1, 15, 8)


def test_midday_is_allowed() -> None:
    assert next_allowed(_at(NEW_YORK, 2026, 1, 15, 12), NIGHT, NEW_YORK) is None


def test_the_window_includes_its_start_and_excludes_its_end() -> None:
    assert next_allowed(_at(NEW_YORK, 2026, 1, 15, 21), NIGHT, NEW_YORK) == _at(
        NEW_YORK, 2026, 1, 16, 8
    )
    assert next_allowed(_at(NEW_YORK, 2026, 1, 15, 8), NIGHT, NEW_YORK) is None
    assert next_allowed(_at(NEW_YORK, 2026, 1, 15, 20, 59, 59), NIGHT, NEW_YORK) is None
    just_before = _at(NEW_YORK, 2026, 1, 15, 7, 59, 59) + 0.5
    assert next_allowed(just_before, NIGHT, NEW_YORK) == _at(NEW_YORK, 2026, 1, 15, 8)


def test_a_window_within_one_day() -> None:
    assert next_allowed(_at(NEW_YORK, 2026, 6, 1, 12, 30), LUNCH, NEW_YORK) == _at(
        NEW_YORK, 2026, 6, 1, 13
    )
    assert next_allowed(_at(NEW_YORK, 2026, 6, 1, 11, 59), LUNCH, NEW_YORK) is None
    assert next_allowed(_at(NEW_YORK, 2026, 6, 1, 13), LUNCH, NEW_YORK) is None
    assert next_allowed(_at(NEW_YORK, 2026, 6, 1, 23), LUNCH, NEW_YORK) is None


def test_the_night_the_clocks_go_forward_is_an_hour_shorter() -> None:
    # New York, 2026-03-08: 02:00 EST becomes 03:00 EDT.
    now = _at(NEW_YORK, 2026, 3, 7, 22)
    allowed = next_allowed(now, NIGHT, NEW_YORK)
    assert allowed == _at(NEW_YORK, 2026, 3, 8, 8) == _utc(2026, 3, 8, 12)
    assert allowed - now == timedelta(hours=9).total_seconds()


def test_an_end_skipped_by_the_clocks_going_forward_is_the_end_of_the_gap() -> None:
    quiet = QuietHours(time(1), time(2, 30))
    now = _at(NEW_YORK, 2026, 3, 8, 1, 30)
    assert next_allowed(now, quiet, NEW_YORK) == _utc(2026, 3, 8, 7)  # 03:00 EDT


def test_the_night_the_clocks_go_back_is_an_hour_longer() -> None:
    # New York, 2026-11-01: 02:00 EDT becomes 01:00 EST.
    now = _at(NEW_YORK, 2026, 10, 31, 22)
    allowed = next_allowed(now, NIGHT, NEW_YORK)
    assert allowed == _at(NEW_YORK, 2026, 11, 1, 8) == _utc(2026, 11, 1, 13)
    assert allowed - now == timedelta(hours=11).total_seconds()


def test_an_end_the_clocks_show_twice_is_its_first_occurrence() -> None:
    quiet = QuietHours(time(0, 30), time(1, 30))
    first = _utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert next_allowed(_at(NEW_YORK, 2026, 11, 1, 0, 45), quiet, NEW_YORK) == first
    assert next_allowed(_at(NEW_YORK, 2026, 11, 1, 1, 15), quiet, NEW_YORK) == first


def test_after_the_first_occurrence_has_passed_the_second_one_counts() -> None:
    quiet = QuietHours(time(0, 30), time(1, 30))
    now = _at(NEW_YORK, 2026, 11, 1, 1, 15, fold=1)  # 01:15 EST, the second time round
    assert now == _utc(2026, 11, 1, 6, 15)
    assert next_allowed(now, quiet, NEW_YORK) == _utc(2026, 11, 1, 6, 30)  # 01:30 EST


def test_london_in_summer_and_on_the_night_the_clocks_go_forward() -> None:
    quiet = QuietHours(time(22), time(7))
    now = _at(LONDON, 2026, 7, 1, 23)
    assert next_allowed(now, quiet, LONDON) == _utc(2026, 7, 2, 6)  # 07:00 BST
    # 2026-03-29: 01:00 GMT becomes 02:00 BST; an end at 01:30 does not exist that night.
    early = QuietHours(time(0), time(1, 30))
    assert next_allowed(_at(LONDON, 2026, 3, 29, 0, 15), early, LONDON) == _utc(2026, 3, 29, 1)


def test_no_zone_is_utc() -> None:
    assert next_allowed(_utc(2026, 1, 15, 22), NIGHT, None) == _utc(2026, 1, 16, 8)
    assert next_allowed(_utc(2026, 1, 15, 12), NIGHT, None) is None
    assert next_allowed(_utc(2026, 1, 15, 22), NIGHT, "  ") == _utc(2026, 1, 16, 8)


def test_a_day_the_zone_skipped_is_waited_out() -> None:
    # Samoa skipped 2011-12-30: 23:59:59 on the 29th (UTC-10) was followed by 00:00 on the
    # 31st (UTC+14), which is still quiet; sending resumes at 08:00 on the 31st.
    zone = "Pacific/Apia"
    now = _at(zone, 2011, 12, 29, 22)
    assert next_allowed(now, NIGHT, zone) == _at(zone, 2011, 12, 31, 8) == _utc(2011, 12, 30, 18)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "America", "../etc/passwd", "/etc/x", "a\0"])
def test_an_unknown_zone_is_a_configuration_error(zone: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        next_allowed(_utc(2026, 1, 15, 12), NIGHT, zone)
    assert repr(zone) in caught.value.message
    assert caught.value.details == {"time_zone": zone}


def test_a_zone_name_with_surrounding_spaces_is_taken() -> None:
    now = _at(NEW_YORK, 2026, 1, 15, 22)
    assert next_allowed(now, NIGHT, f" {NEW_YORK} ") == _at(NEW_YORK, 2026, 1, 16, 8)


# --- properties ----------------------------------------------------------------------------

ZONES = [
    None,
    "UTC",
    NEW_YORK,
    LONDON,
    "Australia/Lord_Howe",  # a half-hour DST shift
    "Pacific/Apia",  # skipped a whole day
    "America/Sao_Paulo",  # used to change at midnight
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/St_Johns",
]
TIMES = st.times() | st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
WINDOWS = st.tuples(TIMES, TIMES).filter(lambda pair: pair[0] != pair[1])
ANY_MOMENT = st.floats(min_value=0, max_value=_utc(2100, 1, 1), allow_nan=False)
DAY = timedelta(days=1).total_seconds()


@cache
def _transitions(zone: str | None, year: int) -> tuple[float, ...]:
    """The hours of ``year`` after which ``zone``'s UTC offset changed (an hourly scan)."""
    tz = ZoneInfo(zone) if zone else UTC
    hours = range(int(_utc(year, 1, 1)), int(_utc(year + 1, 1, 1)), 3600)
    offsets = [datetime.fromtimestamp(hour, tz).utcoffset() for hour in hours]
    return tuple(
        float(hour) for hour, a, b in zip(hours, offsets, offsets[1:], strict=False) if a != b
    )


@st.composite
def zone_and_moment(draw: st.DrawFn) -> tuple[str | None, float]:
    """A zone and a moment: any moment, or one within a day of one of its offset changes."""
    zone = draw(st.sampled_from(ZONES))
    changes = _transitions(zone, draw(st.sampled_from([2011, 2026])))
    if not changes or draw(st.booleans()):
        return zone, draw(ANY_MOMENT)
    change = draw(st.sampled_from(changes))
    return zone, change + draw(st.floats(min_value=-DAY, max_value=DAY))


@settings(derandomize=True, deadline=None, max_examples=400)
@given(zone_and_moment(), WINDOWS)
def test_the_next_allowed_moment_is_soon_after_now_and_not_quiet(
    moment: tuple[str | None, float], window: tuple[time, time]
) -> None:
    zone, now = moment
    quiet = QuietHours(*window)
    allowed = next_allowed(now, quiet, zone)
    if allowed is None:
        return
    assert now < allowed <= now + timedelta(hours=25).total_seconds()
    assert next_allowed(allowed, quiet, zone) is None
