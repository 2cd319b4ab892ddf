"""The error shape's last line of defence: what slips past the edges is still no 500."""

from __future__ import annotations

import httpx
from sqlalchemy.exc import DataError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.errors import EXCEPTION_HANDLERS


def _app(error: Exception) -> Starlette:
    async def fail(request: Request) -> Response:
        raise error

    return Starlette(routes=[Route("/fail", fail)], exception_handlers=EXCEPTION_HANDLERS)


async def _get(app: Starlette) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://takt") as client:
        return await client.get("/fail")


async def test_a_value_the_database_refuses_is_invalid_input_not_a_server_error() -> None:
    answer = await _get(_app(DataError("INSERT …", {}, Exception("integer out of range"))))
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_input"
    assert "integer out of range" not in answer.text  # the database's words stay in the log


async def test_anything_else_unexpected_is_a_500_in_the_error_shape() -> None:
    answer = await _get(_app(RuntimeError("boom")))
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert "boom" not in answer.text
