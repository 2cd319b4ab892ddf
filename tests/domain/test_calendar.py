from __future__ import annotations

from datetime import UTC, datetime, time

from hypothesis import given, strategies as st
from strategies import ZONES, intervals, operators

from app.domain.calendar import availability, covers, merge, week_horizon
from app.domain.plan import Interval, Operator, WeeklyShift

BERLIN = "Europe/Berlin"


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


def span(month: int, first: tuple[int, int], last: tuple[int, int]) -> Interval:
    return Interval(utc(month, *first), utc(month, *last))


def operator_with(*shifts: WeeklyShift, **calendar: tuple[Interval, ...]) -> Operator:
    return Operator(1, "Anna Weber", {}, tuple(shifts), **calendar)


def test_day_shift_repeats_each_week_in_utc() -> None:
    early_monday = operator_with(WeeklyShift(0, time(6), time(14)))
    two_weeks = Interval(utc(3, 3, 0), utc(3, 17, 0))

    assert availability(early_monday, "UTC", two_weeks) == [
        span(3, (3, 6), (3, 14)),
        span(3, (10, 6), (10, 14)),
    ]


def test_local_shift_keeps_wall_clock_across_spring_dst() -> None:
    # Berlin is UTC+1 until Sunday 30 March 2025, UTC+2 after.
    friday_and_monday = operator_with(
        WeeklyShift(4, time(6), time(14)), WeeklyShift(0, time(6), time(14))
    )
    around_change = Interval(utc(3, 28, 0), utc(4, 1, 0))

    assert availability(friday_and_monday, BERLIN, around_change) == [
        span(3, (28, 5), (28, 13)),
        span(3, (31, 4), (31, 12)),
    ]


def test_night_shift_runs_past_midnight() -> None:
    monday_night = operator_with(WeeklyShift(0, time(22), time(6)))

    assert availability(monday_night, "UTC", Interval(utc(3, 3, 0), utc(3, 10, 0))) == [
        span(3, (3, 22), (4, 6)),
    ]


def test_night_shift_over_autumn_dst_lasts_one_hour_longer() -> None:
    saturday_night = operator_with(WeeklyShift(5, time(22), time(6)))
    weekend = Interval(utc(10, 25, 0), utc(10, 27, 0))

    assert availability(saturday_night, BERLIN, weekend) == [span(10, (25, 20), (26, 5))]


def test_shift_starting_in_the_spring_gap_starts_after_it() -> None:
    # 02:30 does not exist in Berlin on 30 March 2025; read as 03:30 CEST.
    sunday_early = operator_with(WeeklyShift(6, time(2, 30), time(8)))
    sunday = Interval(utc(3, 30, 0), utc(3, 31, 0))

    assert availability(sunday_early, BERLIN, sunday) == [
        Interval(utc(3, 30, 1, 30), utc(3, 30, 6)),
    ]


def test_night_shift_from_before_the_horizon_reaches_into_it() -> None:
    sunday_night = operator_with(WeeklyShift(6, time(22), time(6)))

    assert availability(sunday_night, "UTC", Interval(utc(3, 3, 0), utc(3, 4, 0))) == [
        span(3, (3, 0), (3, 6)),
    ]


def test_back_to_back_shifts_merge_and_cover_the_handover() -> None:
    two_shifts = operator_with(
        WeeklyShift(0, time(6), time(14)), WeeklyShift(0, time(14), time(22))
    )
    available = availability(two_shifts, "UTC", Interval(utc(3, 3, 0), utc(3, 4, 0)))

    assert available == [span(3, (3, 6), (3, 22))]
    assert covers(available, span(3, (3, 13), (3, 15)))


def test_time_off_is_carved_out_and_extra_shifts_added() -> None:
    busy_week = operator_with(
        WeeklyShift(0, time(6), time(14)),
        time_off=(span(3, (3, 10), (3, 11)),),
        extra_shifts=(span(3, (8, 8), (8, 12)),),
    )

    assert availability(busy_week, "UTC", Interval(utc(3, 3, 0), utc(3, 10, 0))) == [
        span(3, (3, 6), (3, 10)),
        span(3, (3, 11), (3, 14)),
        span(3, (8, 8), (8, 12)),
    ]


def test_time_off_wins_over_an_extra_shift() -> None:
    on_leave = operator_with(
        extra_shifts=(span(3, (8, 8), (8, 12)),), time_off=(span(3, (8, 0), (9, 0)),)
    )

    assert availability(on_leave, "UTC", Interval(utc(3, 3, 0), utc(3, 10, 0))) == []


def test_availability_is_clipped_to_the_horizon() -> None:
    all_monday = operator_with(WeeklyShift(0, time(0), time(0)))

    assert availability(all_monday, "UTC", span(3, (3, 10), (3, 12))) == [span(3, (3, 10), (3, 12))]


def test_an_operator_without_a_calendar_is_never_available() -> None:
    assert availability(operator_with(), "UTC", span(3, (3, 0), (10, 0))) == []


def test_callers_cannot_spoil_the_cache() -> None:
    monday = operator_with(WeeklyShift(0, time(6), time(14)))
    week = span(3, (3, 0), (10, 0))

    availability(monday, "UTC", week).clear()

    assert availability(monday, "UTC", week) == [span(3, (3, 6), (3, 14))]


def test_covers_needs_the_whole_interval_inside_one_piece() -> None:
    available = [span(3, (3, 6), (3, 10)), span(3, (3, 11), (3, 14))]

    assert covers(available, span(3, (3, 6), (3, 10)))
    assert covers(available, span(3, (3, 12), (3, 13)))
    assert not covers(available, span(3, (3, 5), (3, 7)))
    assert not covers(available, span(3, (3, 9), (3, 12)))
    assert not covers(available, span(3, (3, 13), (3, 15)))
    assert not covers([], span(3, (3, 6), (3, 7)))


def test_week_horizon_spans_whole_weeks() -> None:
    # Tuesday 4 March to Monday 10 March 2025: two weeks from Monday 3 March.
    assert week_horizon(utc(3, 4, 9), utc(3, 10, 1)) == span(3, (3, 0), (17, 0))


@given(
    operator=st.integers(1, 9).flatmap(lambda i: operators(i, permissive=False)),
    zone=st.sampled_from(ZONES),
    horizon=intervals(max_length=400),
)
def test_availability_is_sorted_merged_inside_the_horizon_and_free_of_time_off(
    operator: Operator, zone: str, horizon: Interval
) -> None:
    available = availability(operator, zone, horizon)

    assert merge(available) == available
    assert all(horizon.start <= piece.start and piece.end <= horizon.end for piece in available)
    assert not any(piece.overlaps(off) for piece in available for off in operator.time_off)
    for extra in operator.extra_shifts:
        inside = Interval(max(extra.start, horizon.start), min(extra.end, horizon.end))
        if inside.start < inside.end and not any(inside.overlaps(off) for off in operator.time_off):
            assert covers(available, inside)
