"""The plant's bounds: which times and slots are refused, without ever overflowing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app import clock
from app.domain.bounds import HORIZON_END, HORIZON_START, MAX_SLOT, horizon_error, slot_error

PLUS_ONE = timezone(timedelta(hours=1))
MINUS_ONE = timezone(timedelta(hours=-1))


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, 0, 30, tzinfo=PLUS_ONE),  # before year 1 in UTC
        datetime(9999, 12, 31, 23, 30, tzinfo=MINUS_ONE),  # after year 9999 in UTC
        datetime.min,
        datetime.max,
        HORIZON_START - timedelta(microseconds=1),
        HORIZON_END,
        datetime(2000, 1, 1, 0, 30, tzinfo=PLUS_ONE),  # 1999-12-31 23:30 UTC
    ],
)
def test_times_outside_the_horizon_are_named_not_overflowed(moment: datetime) -> None:
    assert horizon_error(moment) is not None


@pytest.mark.parametrize(
    "moment",
    [
        HORIZON_START,
        HORIZON_END - timedelta(microseconds=1),
        datetime(2099, 12, 31, 23, 30, tzinfo=PLUS_ONE),
        datetime(2050, 6, 1, 12),  # naive: taken as UTC
    ],
)
def test_times_inside_the_horizon_pass(moment: datetime) -> None:
    assert horizon_error(moment) is None


def test_a_slot_ends_after_it_starts_and_lasts_at_most_31_days() -> None:
    start = clock.now().replace(microsecond=0)
    assert slot_error(start, start + MAX_SLOT) is None
    assert slot_error(start, start + MAX_SLOT + timedelta(seconds=1)) is not None
    assert slot_error(start, start) is not None
    assert slot_error(start, start - timedelta(minutes=1)) is not None
    assert slot_error(HORIZON_END - timedelta(hours=1), HORIZON_END + timedelta(hours=1))
