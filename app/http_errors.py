"""The one error shape of every HTTP answer Takt gives: the JSON API, the pages'
htmx requests and the live endpoints alike.

    {"error": {"code": "invalid_input", "message": "...", "details": ...}}

Here, below the adapters, so that `api`, `web` and `realtime` all use it
without importing one another (`api/errors.py` maps exceptions onto it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["error_response"]


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details}},
        status_code=status,
        headers=headers,
    )
