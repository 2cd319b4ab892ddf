"""A client far behind the change feed is told to reload instead of replaying."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from clocks import iso_z

from app.settings import Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Any) -> Settings:
    # A short feed window, to see clients told to reload when they are far behind.
    return Settings(
        database_url=database_url,
        var_dir=tmp_path,
        change_feed_window=1,
        rate_limit_user="10000/minute",
    )


async def test_a_client_too_far_behind_is_told_to_reload(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    anna = await login("anna")
    response = await api.put(
        f"/api/v1/tasks/{plant.cut}/assignment",
        headers={**anna, "If-Match": '"1"'},
        json={
            "operator_id": plant.olga,
            "equipment_id": plant.mill,
            "start": iso_z(plant.at(8, days=1)),
            "end": iso_z(plant.at(9, days=1)),
        },
    )
    assert response.status_code == 200
    feed = (await api.get("/api/v1/changes?since=0", headers=anna)).json()
    assert feed == {"revision": feed["revision"], "changes": [], "reload": True}
