"""Idempotent replays against a real server: once the first response has arrived, a
replay of its key always returns it (never `409 idempotency_in_progress`).

The middleware holds the first response back until its record is committed,
so there is no moment at which a client has the response and the record is
still pending. Several clients write at once, so the database is busy.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import func, select

from app.db import tables as t
from app.db.session import Database

CLIENTS = 6
KEYS = 120


async def _first_then_replay(
    client: httpx.AsyncClient, headers: dict[str, str], keys: list[str]
) -> list[tuple[int, int, bool]]:
    outcomes = []
    for key in keys:
        body = {"name": f"Lathe {key}", "type": "lathe"}
        sent = {**headers, "Idempotency-Key": key}
        first = await client.post("/api/v1/equipment", headers=sent, json=body)
        replay = await client.post("/api/v1/equipment", headers=sent, json=body)
        same = replay.content == first.content and replay.headers.get("etag") == first.headers.get(
            "etag"
        )
        outcomes.append((first.status_code, replay.status_code, same))
    return outcomes


async def test_a_replay_right_after_the_first_response_returns_it(
    database_url: str, plant: Any, live_server: Any, tmp_path: Any
) -> None:
    env = {"TAKT_RATE_LIMIT_USER": "100000/minute"}
    url = live_server(database_url=database_url, var_dir=tmp_path / "var", env=env)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        token = (
            await client.post(
                "/api/v1/auth/token", json={"username": "maria", "password": "takt-test-password"}
            )
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        keys = [f"k{n}" for n in range(KEYS)]
        results = await asyncio.gather(
            *(_first_then_replay(client, headers, keys[n::CLIENTS]) for n in range(CLIENTS))
        )
    outcomes = [outcome for part in results for outcome in part]
    statuses = Counter((first, replay) for first, replay, _ in outcomes)
    assert statuses == Counter({(201, 201): KEYS}), statuses
    assert all(same for _, _, same in outcomes)
    db = Database(database_url)
    try:
        async with db.read() as session:
            lathes = await session.scalar(select(func.count()).where(t.Equipment.type == "lathe"))
    finally:
        await db.dispose()
    assert lathes == KEYS  # every replay returned the first response; nothing twice
