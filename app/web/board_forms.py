"""Reading the board's forms: ids, versions and times, each refused with a clear 422/428."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.domain.bounds import MAX_SLOT, horizon_error
from app.routing import ID_DIGITS
from app.services.errors import InvalidInput, PreconditionRequired


def optional_int(form: Mapping[str, Any], name: str) -> int | None:
    raw = form.get(name)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not _digits(raw) or len(raw) > ID_DIGITS:
        raise InvalidInput(f"{name} must be a positive whole number", {name: str(raw)[:40]})
    return int(raw)


def required_int(form: Mapping[str, Any], name: str) -> int:
    value = optional_int(form, name)
    if value is None:
        raise InvalidInput(f"{name} is required", {"field": name})
    return value


def query_int(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name, "")
    return int(raw) if _digits(raw) and len(raw) < 10 else None


def _digits(raw: str) -> bool:
    # str.isdigit() alone also takes "²" and other digits int() refuses.
    return raw.isascii() and raw.isdigit()


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
    if (error := horizon_error(value)) is not None:
        raise InvalidInput(error, {name: str(raw)[:40]})
    # datetime-local fields carry no offset: they are plant time.
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def text(form: Mapping[str, Any], name: str, *, max_length: int = 500) -> str:
    """A free-text field ("" when missing); NUL is refused, as no database keeps it."""
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    if "\x00" in value:
        raise InvalidInput(f"{name} may not contain the NUL character", {"field": name})
    if len(value) > max_length:
        raise InvalidInput(f"{name} is longer than {max_length} characters", {"field": name})
    return value.strip()


def slot(form: Mapping[str, Any], zone: ZoneInfo) -> tuple[datetime, datetime]:
    start, end = form_time(form, "starts_at", zone), form_time(form, "ends_at", zone)
    if end <= start:
        raise InvalidInput("the end must be after the start", {"starts_at": str(start)})
    if end - start > MAX_SLOT:
        raise InvalidInput(
            f"a task cannot take more than {MAX_SLOT.days} days", {"ends_at": str(end)}
        )
    return start, end
