"""Seconds from now to an instant of plant time: the offset `make test-clock` fakes.

    python scripts/plant_instant.py '2027-03-28 01:30'      # a date and a wall-clock time
    python scripts/plant_instant.py 'spring-forward 01:30'  # the next night the clocks go forward
    python scripts/plant_instant.py 'sunday 23:50'          # the next Sunday (today if still ahead)
    python scripts/plant_instant.py '12-31 23:59'           # the next New Year's Eve

prints a whole number of seconds (negative for an instant in the past), for
`faketime -f "+${offset}s" ...`: every process started under it (pytest,
uvicorn servers, workers, PostgreSQL, Redis, chromium) reads the same shifted
clock, which keeps running from that instant. The instant is wall-clock time
in the plant's zone (`--zone`, default Europe/Berlin); a time that does not
exist there (02:30 on the night the clocks go forward) is refused.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _wall(day: date, clock_time: str, zone: ZoneInfo) -> datetime:
    hour, minute = (int(part) for part in clock_time.split(":"))
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise ValueError(f"{day} {clock_time} does not exist in {zone.key} (the clocks skip it)")
    return local


def _next(
    days_from: date, matches: Callable[[date], bool], clock_time: str, now: datetime, zone: ZoneInfo
) -> datetime:
    """The first day from `days_from` that `matches`, at `clock_time`, still after `now`."""
    for ahead in range(0, 800):
        day = days_from + timedelta(days=ahead)
        if matches(day):
            moment = _wall(day, clock_time, zone)
            if moment > now:
                return moment
    raise ValueError("no such day within two years")


def _springs_forward(day: date, zone: ZoneInfo) -> bool:
    """The clocks go forward during `day` (a local day of 23 hours)."""
    after = day + timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = datetime(after.year, after.month, after.day, tzinfo=zone)
    return end.astimezone(UTC) - start.astimezone(UTC) < timedelta(days=1)


def instant(spec: str, zone: ZoneInfo, now: datetime) -> datetime:
    """The instant `spec` names, as an aware datetime in `zone`."""
    spec = spec.strip().lower()
    today = now.astimezone(zone).date()
    if found := re.fullmatch(r"(\d{4}-\d{2}-\d{2})[ t](\d{1,2}:\d{2})", spec):
        return _wall(date.fromisoformat(found[1]), found[2], zone)
    if found := re.fullmatch(r"(\d{2})-(\d{2}) (\d{1,2}:\d{2})", spec):
        month, day = int(found[1]), int(found[2])
        return _next(today, lambda d: (d.month, d.day) == (month, day), found[3], now, zone)
    if found := re.fullmatch(r"([a-z-]+) (\d{1,2}:\d{2})", spec):
        word = found[1]
        if word in WEEKDAYS:
            weekday = WEEKDAYS.index(word)
            return _next(today, lambda d: d.weekday() == weekday, found[2], now, zone)
        if word == "spring-forward":
            return _next(today, lambda d: _springs_forward(d, zone), found[2], now, zone)
    raise ValueError(
        f"cannot read {spec!r}: use 'YYYY-MM-DD HH:MM', 'MM-DD HH:MM', "
        "'<weekday> HH:MM' or 'spring-forward HH:MM'"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("instant", help="e.g. '2027-03-28 01:30', 'sunday 23:50', '12-31 23:59'")
    parser.add_argument("--zone", default="Europe/Berlin", help="the plant's time zone")
    parser.add_argument("--show", action="store_true", help="print the instant, not the offset")
    args = parser.parse_args(argv)
    zone = ZoneInfo(args.zone)
    now = datetime.fromtimestamp(time.time(), UTC)  # the machine's real clock, on purpose
    try:
        moment = instant(args.instant, zone, now)
    except ValueError as exc:
        parser.error(str(exc))
    if args.show:
        print(f"{moment:%a %Y-%m-%d %H:%M %Z} ({moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC)")
    else:
        print(round((moment - now).total_seconds()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
