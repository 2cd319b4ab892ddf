"""Reading the plant pages' forms: every field checked, every problem kept by field.

A form is read whole before anything is written: `FormReader` collects one
message per field (shown next to it, `aria-describedby`) and `done()` raises
`FormInvalid` with all of them, so a bad form writes nothing. The bounds are
the API's (`app/api/schemas.py`): the same tags, levels, durations, priorities
and plant horizon. Times come from `datetime-local` fields, in plant time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from app.domain.bounds import MAX_ID, horizon_error

TAG = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
WALL_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")
MAX_DURATION = 60 * 24 * 30


class FormInvalid(Exception):
    """The form's problems, by field name (the page shows each next to its field)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class FormReader:
    def __init__(self, form: Mapping[str, Any], zone: ZoneInfo) -> None:
        self.form = form
        self.zone = zone
        self.errors: dict[str, str] = {}

    def raw(self, name: str) -> str:
        value = self.form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def given(self, name: str) -> bool:
        return self.raw(name) != ""

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def done(self) -> None:
        if self.errors:
            raise FormInvalid(self.errors)

    def text(self, name: str, *, required: bool = False, max_length: int = 200) -> str:
        value = self.raw(name)
        if "\x00" in value:
            self.error(name, "may not contain the NUL character")
        elif required and not value:
            self.error(name, "is required")
        elif len(value) > max_length:
            self.error(name, f"is longer than {max_length} characters")
        return value

    def tag(self, name: str) -> str | None:
        value = self.raw(name)
        if value and not TAG.fullmatch(value):
            self.error(name, "letters, digits and . _ : - only, no spaces (e.g. milling)")
        return value or None

    def tags(self, name: str) -> list[str]:
        """Comma- or space-separated tags, each once, in the order given."""
        found = [part for part in re.split(r"[,\s]+", self.raw(name)) if part]
        if bad := [part for part in found if not TAG.fullmatch(part)]:
            self.error(name, f"{bad[0]!r} is not a tag: letters, digits and . _ : - only")
        if len(found) > 100:
            self.error(name, "at most 100 tags")
        return list(dict.fromkeys(found))

    def number(self, name: str, *, low: int, high: int, default: int | None = None) -> int | None:
        value = self.raw(name)
        if not value:
            if default is None:
                self.error(name, "is required")
            return default
        if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
            self.error(name, f"must be a whole number from {low} to {high}")
            return default
        return int(value)

    def ids(self, name: str) -> list[int]:
        """Task numbers as a person writes them: "1204, #1210"."""
        found: list[int] = []
        for part in re.split(r"[,\s]+", self.raw(name)):
            digits = part.removeprefix("#")
            if not part:
                continue
            if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= MAX_ID:
                self.error(name, f"{part!r} is not a task number (e.g. 1204, 1210)")
                continue
            found.append(int(digits))
        return found

    def moment(self, name: str, *, required: bool = False) -> datetime | None:
        """A `datetime-local` value (plant time, no offset) as an aware time."""
        value = self.raw(name)
        if not value:
            if required:
                self.error(name, "is required")
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.error(name, "must be a date and time, e.g. 2026-11-23T08:00")
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.zone)
        if (problem := horizon_error(parsed)) is not None:
            self.error(name, problem)
            return None
        return parsed

    def wall_time(self, name: str) -> time | None:
        value = self.raw(name)
        found = WALL_TIME.fullmatch(value)
        if found is None:
            self.error(name, "must be a time of day, e.g. 06:00")
            return None
        hour, minute, second = found.groups()
        return time(int(hour), int(minute), int(second or 0))

    def after(self, name: str, start: Any, end: Any, *, than: str = "the start") -> None:
        """Field `name` (`end`) must come after `start` (None: nothing to compare)."""
        if start is not None and end is not None and end <= start:
            self.error(name, f"must be after {than}")

    def checked(self, name: str) -> bool:
        return self.raw(name) in ("on", "1", "true", "yes")

    def rows(self, prefix: str) -> list[int]:
        return row_indexes(self.form, prefix)


def row_indexes(form: Mapping[str, Any], prefix: str) -> list[int]:
    """The indexes of the repeated rows sent: fields named `{prefix}-{i}-...`."""
    pattern = re.compile(rf"{re.escape(prefix)}-(\d{{1,3}})-")
    return sorted({int(m.group(1)) for key in form if (m := pattern.match(str(key)))})


def checked_ids(form: FormData, name: str) -> list[int]:
    """The ids of the checked boxes named `name` (anything else is left out)."""
    values = form.getlist(name)
    return [int(v) for v in values if isinstance(v, str) and v.isascii() and v.isdigit()
            and 0 < len(v) < 16]  # fmt: skip


def local(value: datetime | None, zone: ZoneInfo) -> str:
    """A time as a `datetime-local` field shows it, in plant time ("" when none)."""
    return "" if value is None else value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def submitted(form: Mapping[str, Any]) -> dict[str, str]:
    """What was typed, to show again beside the errors (never the CSRF token)."""
    return {str(k): v for k, v in form.items() if isinstance(v, str) and k not in ("csrf_token",)}
