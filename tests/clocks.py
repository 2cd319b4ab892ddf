"""Plant time for tests: the "now" a test builds its world around.

A test never writes a calendar date or assumes the weekday or the hour: it
takes a `PlantTime` (the `plant_time` fixture, or `PlantTime.current(zone)`)
and places things relative to it. `now` comes from `app.clock`, which is the
real clock, the clock CI fakes with libfaketime (`make test-clock`), or a
`FixedClock` a test installed.

    when = PlantTime.current()          # plant time is UTC unless a zone is given
    when.day()                          # today's midnight in plant time (aware UTC)
    when.at(8)                          # today 08:00 plant time
    when.at(8, 30, days=1)              # tomorrow 08:30
    when.form(when.at(8))               # "YYYY-MM-DDTHH:MM", as the board's forms send it

Local arithmetic is wall-clock arithmetic: `at(6, days=1)` is 06:00 the next
day even across a DST change, and a local day may be 23 or 25 hours long.

Pure domain tests that pass an explicit `now=` to a pure function may keep
fixed dates: they do not read the clock at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from app import clock

BERLIN = ZoneInfo("Europe/Berlin")


@dataclass(frozen=True)
class PlantTime:
    now: datetime  # aware UTC
    zone: tzinfo = UTC

    @classmethod
    def current(cls, zone: tzinfo = UTC) -> PlantTime:
        return cls(clock.now(), zone)

    @property
    def local_now(self) -> datetime:
        return self.now.astimezone(self.zone)

    @property
    def today(self) -> date:
        return self.local_now.date()

    def day(self, days: int = 0) -> datetime:
        """Midnight (plant time) `days` after today's, as aware UTC."""
        return self.at(0, days=days)

    def at(self, hour: int, minute: int = 0, *, days: int = 0) -> datetime:
        """`hour:minute` plant time, `days` after today, as aware UTC."""
        local = datetime.combine(self.today + timedelta(days=days), datetime.min.time())
        return local.replace(hour=hour, minute=minute, tzinfo=self.zone).astimezone(UTC)

    def from_now(self, **delta: float) -> datetime:
        return self.now + timedelta(**delta)

    def minute(self) -> datetime:
        """Now, to the whole minute (what a form or a slot holds)."""
        return self.now.replace(second=0, microsecond=0)

    def hour(self) -> datetime:
        return self.now.replace(minute=0, second=0, microsecond=0)

    def form(self, moment: datetime) -> str:
        """`moment` as the board's datetime-local inputs send it (plant time, no offset)."""
        return moment.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M")


def iso_z(moment: datetime) -> str:
    """`2027-03-28T00:30:00Z`: an aware instant as the API's clients often write it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
