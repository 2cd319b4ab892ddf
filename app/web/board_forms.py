"""Reading the board's forms: ids, versions and times, each refused with a clear 422/428."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.services.errors import InvalidInput, PreconditionRequired


def optional_int(form: Mapping[str, Any], name: str) -> int | None:
    raw = form.get(name)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 18:
        raise InvalidInput(f"{name} must be a positive whole number", {name: str(raw)[:40]})
    return int(raw)


def required_int(form: Mapping[str, Any], name: str) -> int:
    value = optional_int(form, name)
    if value is None:
        raise InvalidInput(f"{name} is required", {"field": name})
    return value


def query_int(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name, "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def version(form: Mapping[str, Any]) -> int:
    version = optional_int(form, "version")
    if version is None:
        raise PreconditionRequired("the edit must say which version of the task it changes")
    return version


def form_time(form: Mapping[str, Any], name: str, zone: ZoneInfo) -> datetime:
    raw = form.get(name)
    try:
        value = datetime.fromisoformat(raw.strip()) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if value is None:
        raise InvalidInput(
            f"{name} must be a date and time, e.g. 2026-11-23T08:00", {name: str(raw)[:40]}
        )
    # datetime-local fields carry no offset: they are plant time.
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def slot(form: Mapping[str, Any], zone: ZoneInfo) -> tuple[datetime, datetime]:
    start, end = form_time(form, "starts_at", zone), form_time(form, "ends_at", zone)
    if end <= start:
        raise InvalidInput("the end must be after the start", {"starts_at": str(start)})
    if end - start > timedelta(days=31):
        raise InvalidInput("a task cannot take more than 31 days", {"ends_at": str(end)})
    return start, end
