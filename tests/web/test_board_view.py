"""The board's windows in plant time, at the awkward instants (an injected clock).

Each case names a "now" in Europe/Berlin and says which window each zoom opens
on, how long it is, and where a zoom change lands. No database, no server:
`window_start` and `BoardView` are pure, `default_start`/`rezoomed`/`axis`
read the clock, which the tests fix with `app.clock.use(FixedClock(...))`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app import clock
from app.clock import FixedClock
from app.services.board_view import BoardView, window_start
from app.web.board_render import axis, default_start, rezoomed, view_from_query

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in Berlin, as aware UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def local(moment: datetime) -> str:
    return moment.astimezone(BERLIN).strftime("%a %Y-%m-%d %H:%M")


def window(zoom: str, now: datetime) -> BoardView:
    return BoardView(start=window_start(zoom, BERLIN, now), zoom=zoom, zone=BERLIN)  # type: ignore[arg-type]


# The instants CI also runs the whole suite at (.ci/run), and a night shift after midnight.
SPRING_FORWARD = berlin(2027, 3, 28, 1, 30)  # the clocks go from 02:00 to 03:00 tonight
SUNDAY_LATE = berlin(2026, 12, 6, 23, 50)
NEW_YEARS_EVE = berlin(2026, 12, 31, 23, 59)
AFTER_MIDNIGHT = berlin(2027, 1, 1, 3, 10)  # the night shift that began at 22:00 yesterday
FALL_BACK = berlin(2026, 10, 25, 12)  # the clocks went from 03:00 back to 02:00 last night


@pytest.mark.parametrize(
    ("now", "zoom", "opens", "closes", "hours"),
    [
        # The night the clocks go forward: a 23-hour day, a week an hour short.
        (SPRING_FORWARD, "day", "Sun 2027-03-28 00:00", "Mon 2027-03-29 00:00", 23),
        (SPRING_FORWARD, "week", "Sat 2027-03-27 00:00", "Sat 2027-04-03 00:00", 7 * 24 - 1),
        (SPRING_FORWARD, "shift", "Sat 2027-03-27 22:00", "Sun 2027-03-28 06:00", 7),
        (SPRING_FORWARD, "hour", "Sun 2027-03-28 00:00", "Sun 2027-03-28 05:00", 4),  # plain hours
        # A Sunday late: the week starts yesterday, not on six empty past days.
        (SUNDAY_LATE, "week", "Sat 2026-12-05 00:00", "Sat 2026-12-12 00:00", 7 * 24),
        (SUNDAY_LATE, "day", "Sun 2026-12-06 00:00", "Mon 2026-12-07 00:00", 24),
        (SUNDAY_LATE, "shift", "Sun 2026-12-06 22:00", "Mon 2026-12-07 06:00", 8),
        # New Year's Eve, a minute to midnight: still the old year's day.
        (NEW_YEARS_EVE, "day", "Thu 2026-12-31 00:00", "Fri 2027-01-01 00:00", 24),
        (NEW_YEARS_EVE, "week", "Wed 2026-12-30 00:00", "Wed 2027-01-06 00:00", 7 * 24),
        (NEW_YEARS_EVE, "shift", "Thu 2026-12-31 22:00", "Fri 2027-01-01 06:00", 8),
        (NEW_YEARS_EVE, "hour", "Thu 2026-12-31 22:00", "Fri 2027-01-01 02:00", 4),
        # After midnight the night shift is still the one that began yesterday at 22:00.
        (AFTER_MIDNIGHT, "shift", "Thu 2026-12-31 22:00", "Fri 2027-01-01 06:00", 8),
        (AFTER_MIDNIGHT, "day", "Fri 2027-01-01 00:00", "Sat 2027-01-02 00:00", 24),
        # The day the clocks went back: 25 hours.
        (FALL_BACK, "day", "Sun 2026-10-25 00:00", "Mon 2026-10-26 00:00", 25),
    ],
)
def test_each_zoom_opens_on_the_window_holding_now(
    now: datetime, zoom: str, opens: str, closes: str, hours: int
) -> None:
    view = window(zoom, now)
    assert (local(view.start), local(view.end)) == (opens, closes)
    assert view.end - view.start == timedelta(hours=hours)
    assert view.holds(now)


def test_the_night_shift_ends_at_six_and_the_morning_shift_follows() -> None:
    assert local(window_start("shift", BERLIN, berlin(2027, 1, 1, 5, 59))) == (
        "Thu 2026-12-31 22:00"
    )
    assert local(window_start("shift", BERLIN, berlin(2027, 1, 1, 6))) == "Fri 2027-01-01 06:00"
    assert local(window_start("shift", BERLIN, berlin(2027, 1, 1, 22))) == "Fri 2027-01-01 22:00"


BOUNDARIES = {"shift": {"06:00", "14:00", "22:00"}, "day": {"00:00"}, "week": {"00:00"}}


@pytest.mark.parametrize("zoom", ["shift", "day", "week"])
def test_stepping_keeps_windows_on_plant_time_boundaries_across_dst(zoom: str) -> None:
    view = window(zoom, berlin(2027, 3, 20, 12))
    for _ in range(4 * 14):  # two weeks of days, more than enough shifts and weeks
        following = view.shifted(1)
        assert following.start == view.end
        assert local(following.start)[-5:] in BOUNDARIES[zoom]
        view = following
    back = view.shifted(-4 * 14)
    assert back.start == window_start(zoom, BERLIN, berlin(2027, 3, 20, 12))


def test_today_is_read_from_the_clock() -> None:
    with clock.use(FixedClock(SUNDAY_LATE)):
        assert local(default_start("week", BERLIN)) == "Sat 2026-12-05 00:00"
        page = view_from_query({"zoom": "week"}, BERLIN)
    assert page.start == window_start("week", BERLIN, SUNDAY_LATE) and page.zone == BERLIN


@pytest.mark.parametrize("now", [SPRING_FORWARD, SUNDAY_LATE, NEW_YEARS_EVE, AFTER_MIDNIGHT])
def test_the_week_shows_now_early_in_sight(now: datetime) -> None:
    with clock.use(FixedClock(now)):
        week = view_from_query({"zoom": "week"}, BERLIN)
        now_x = axis(week, BERLIN)["now_x"]
    # On the second of the seven days: yesterday's history, then the days ahead.
    assert now_x is not None and 100 / 7 <= now_x < 200 / 7


@pytest.mark.parametrize("now", [SPRING_FORWARD, SUNDAY_LATE, NEW_YEARS_EVE, AFTER_MIDNIGHT])
def test_week_to_day_lands_on_today(now: datetime) -> None:
    with clock.use(FixedClock(now)):
        week = view_from_query({"zoom": "week"}, BERLIN)
        day = rezoomed(week, "day")
        shift = rezoomed(week, "shift")
    assert day.start == window_start("day", BERLIN, now) and day.holds(now)
    assert shift.holds(now)


def test_week_to_day_on_another_week_lands_on_its_middle_day() -> None:
    with clock.use(FixedClock(SUNDAY_LATE)):
        earlier = view_from_query({"zoom": "week"}, BERLIN).shifted(-2)
        day = rezoomed(earlier, "day")
    assert local(day.start) == "Tue 2026-11-24 00:00"  # the middle of 21-28 November


def test_a_focused_bar_decides_the_day_the_zoom_lands_on() -> None:
    bar_start = berlin(2026, 12, 9, 14, 30)
    with clock.use(FixedClock(SUNDAY_LATE)):
        week = view_from_query({"zoom": "week"}, BERLIN)
        query = {**week.to_query(), "zoom": "day", "focus": bar_start.isoformat()}
        day = view_from_query(query, BERLIN)
        shift = view_from_query({**query, "zoom": "shift"}, BERLIN)
    assert local(day.start) == "Wed 2026-12-09 00:00"
    assert local(shift.start) == "Wed 2026-12-09 14:00"
    assert "focus" not in day.to_query()


def test_the_axis_follows_the_wall_clock_on_a_23_hour_day() -> None:
    day = window("day", SPRING_FORWARD)
    with clock.use(FixedClock(SPRING_FORWARD)):
        drawn = axis(day, BERLIN)
    hours = [tick["label"] for tick in drawn["ticks"]]
    assert (
        len(hours) == 23
        and "02:00" not in hours
        and hours[:4]
        == [
            "00:00",
            "01:00",
            "03:00",
            "04:00",
        ]
    )
    assert [d["label"] for d in drawn["days"]] == ["Sunday 28 March 2027"]
    assert drawn["now_x"] == pytest.approx(1.5 / 23 * 100, abs=0.01)
    week = window("week", SPRING_FORWARD)
    with clock.use(FixedClock(SPRING_FORWARD)):
        ticks = axis(week, BERLIN)["ticks"]
    assert {t["label"] for t in ticks if not t["major"]} == {"06", "12", "18"}
    assert len(ticks) == 7 * 4


def test_the_new_year_arrives_in_the_week_of_new_years_eve() -> None:
    week = window("week", NEW_YEARS_EVE)
    with clock.use(FixedClock(NEW_YEARS_EVE)):
        days = [d["label"] for d in axis(week, BERLIN)["days"]]
    assert days[:3] == [
        "Wednesday 30 December 2026",
        "Thursday 31 December 2026",
        "Friday 01 January 2027",
    ]
    assert len(days) == 7


@pytest.mark.parametrize(
    "raw",
    ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "9999-12-31T23:00:00", "noon"],
)
def test_a_start_or_focus_out_of_range_falls_back_to_now(raw: str) -> None:
    with clock.use(FixedClock(SUNDAY_LATE)):
        for zoom in ("hour", "shift", "day", "week"):
            view = view_from_query({"zoom": zoom, "start": raw, "focus": raw}, BERLIN)
            assert view.holds(SUNDAY_LATE) and view.shifted(1).start == view.end
