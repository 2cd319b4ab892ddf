"""The one "now" of Takt, and the one time type: aware UTC datetimes.

Every reading of the current time in app code goes through `now()` (or
`timestamp()` where a number of seconds is wanted). The clock behind them is
injectable:

- tests swap it for a `FixedClock` (`with use(FixedClock(at)): ...`) and build
  their world relative to the instant they chose;
- a whole process (server, worker, CLI) can be set from the environment:
  `TAKT_CLOCK_OFFSET_SECONDS` shifts the real clock by a number of seconds, so
  every process started with the same value reads the same shifted time.
  CI goes further and runs the suite under libfaketime, which also reaches
  PostgreSQL, Redis and the browser.

Measuring a duration is not reading "now": use `time.monotonic()` for that.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol

OFFSET_VARIABLE = "TAKT_CLOCK_OFFSET_SECONDS"


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, aware UTC."""
        ...


class SystemClock:
    """The machine's clock, optionally shifted by a fixed offset."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class FixedClock:
    """A clock that reads what it was set to, until moved on (for tests)."""

    def __init__(self, at: datetime) -> None:
        self.at = as_utc(at)

    def now(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


def from_environment(environ: dict[str, str] | None = None) -> Clock:
    raw = (os.environ if environ is None else environ).get(OFFSET_VARIABLE, "").strip()
    try:
        offset = float(raw) if raw else 0.0
    except ValueError:
        raise ValueError(f"{OFFSET_VARIABLE} must be a number of seconds, not {raw!r}") from None
    return SystemClock(timedelta(seconds=offset))


_clock: Clock = from_environment()


def now() -> datetime:
    """The current instant, aware UTC, from the one clock."""
    return _clock.now()


def timestamp() -> float:
    """The current instant as POSIX seconds (for tokens, signatures, headers)."""
    return _clock.now().timestamp()


def current() -> Clock:
    return _clock


def set_clock(clock: Clock) -> Clock:
    """Install `clock` for the whole process; returns the one it replaced."""
    global _clock
    previous, _clock = _clock, clock
    return previous


@contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Read time from `clock` inside the block (tests)."""
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)


def as_utc(value: datetime) -> datetime:
    """Aware UTC; a naive value (SQLite hands those back) is taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
