"""Turn plan facts into JSON values for audit entries and change payloads."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    return value
