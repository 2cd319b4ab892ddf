"""What a row shades: an operator's time outside shifts or off, a machine's time out of use."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from app.domain.calendar import equipment_off_time, operator_off_time
from app.domain.plan import Equipment, EquipmentStatus, Interval, Operator, WeeklyShift

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # pure functions of explicit times


def at(hours: float, days: int = 0) -> datetime:
    return MONDAY + timedelta(days=days, hours=hours)


def test_an_operator_is_off_outside_shifts_and_in_time_off() -> None:
    operator = Operator(
        id=1,
        name="Olga",
        skills={},
        weekly_shifts=(WeeklyShift(0, time(6), time(14)), WeeklyShift(1, time(22), time(6))),
        time_off=(Interval(at(10), at(12)),),
    )
    window = Interval(at(0), at(0, days=2))
    assert operator_off_time(operator, "UTC", window) == [
        Interval(at(0), at(6)),
        Interval(at(10), at(12)),
        Interval(at(14), at(22, days=1)),
    ]


def test_an_operator_without_shifts_is_off_all_the_time() -> None:
    window = Interval(at(0), at(8))
    assert operator_off_time(Operator(2, "Omar", {}), "UTC", window) == [window]


def test_a_machine_is_off_in_downtime_and_from_now_while_down() -> None:
    window = Interval(at(0), at(24))
    mill = Equipment(1, "Mill", "cnc_mill", frozenset(), downtime=(Interval(at(-2), at(3)),))
    assert equipment_off_time(mill, window, now=at(5)) == [Interval(at(0), at(3))]
    down = Equipment(
        1,
        "Mill",
        "cnc_mill",
        frozenset(),
        status=EquipmentStatus.DOWN,
        expected_back=at(9),
        downtime=(Interval(at(8), at(10)),),
    )
    assert equipment_off_time(down, window, now=at(5)) == [Interval(at(5), at(10))]
    unknown = Equipment(1, "Mill", "cnc_mill", frozenset(), status=EquipmentStatus.MAINTENANCE)
    assert equipment_off_time(unknown, window, now=at(5)) == [Interval(at(5), at(24))]
