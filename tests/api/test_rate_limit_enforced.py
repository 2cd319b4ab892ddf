"""Past 100 requests a minute a user gets 429 with Retry-After (SPEC §5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path)  # the real limits


async def test_the_101st_request_in_a_minute_is_refused(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    anna = await login("anna")
    statuses = [(await api.get("/health/ready")).status_code]  # not limited: not /api
    for _ in range(100):
        statuses.append((await api.get("/api/v1/equipment", headers=anna)).status_code)
    refused = await api.get("/api/v1/equipment", headers=anna)
    assert set(statuses) == {200}
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-remaining"] == "0"
    # Another user still has their own budget.
    other = await api.get("/api/v1/equipment", headers=await login("ben"))
    assert other.status_code == 200
