"""POST /api/v1/repairs through a real server on the demo plant, SQLite and PostgreSQL.

A machine with work booked in the next hours goes down; one call returns a
repair draft that moves only what it must, and applied, the plan has no error
conflict on anything it moved and none on the machine any more. Bad input of
every kind gets a 4xx in the error shape and writes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers import load_demo
from sqlalchemy import func, select

from app import clock
from app.clock import as_utc
from app.db import tables as t
from app.db.session import Database

PASSWORD = "takt-demo"


async def busiest_machine(database_url: str) -> tuple[int, int, datetime]:
    """The machine with the most open tasks booked in the 8 hours from the next booked
    start (now, on a working day; at a weekend or at night, the next shift's), how many,
    and that first start."""
    now = clock.now()
    database = Database(database_url)
    try:
        async with database.read() as session:
            a = t.Assignment
            scheduled = (t.Task.status == "scheduled", a.start >= now)
            first = as_utc(
                await session.scalar(
                    select(func.min(a.start)).join(t.Task, t.Task.id == a.task_id).where(*scheduled)
                )
            )
            row = (
                await session.execute(
                    select(a.equipment_id, func.count())
                    .join(t.Task, t.Task.id == a.task_id)
                    .where(*scheduled, a.start < first + timedelta(hours=8))
                    .group_by(a.equipment_id)
                    .order_by(func.count().desc(), a.equipment_id)
                    .limit(1)
                )
            ).one()
            return int(row[0]), int(row[1]), first
    finally:
        await database.dispose()


async def written(database_url: str) -> tuple[int, int]:
    """(drafts, live revision): what a refused call must leave as it was."""
    database = Database(database_url)
    try:
        async with database.read() as session:
            drafts = await session.scalar(select(func.count()).select_from(t.Draft))
            revision = await session.scalar(
                select(t.Schedule.revision).where(t.Schedule.kind == "live")
            )
            return int(drafts or 0), int(revision or 0)
    finally:
        await database.dispose()


@pytest.fixture
async def demo(database_url: str, live_server: Any, tmp_path: Path) -> Any:
    load_demo(database_url, tmp_path, "small")
    base_url = live_server(database_url=database_url, var_dir=tmp_path)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        yield http


async def login(http: httpx.AsyncClient, user: str) -> dict[str, str]:
    found = await http.post("/api/v1/auth/token", json={"username": user, "password": PASSWORD})
    assert found.status_code == 200, found.text
    return {"Authorization": f"Bearer {found.json()['access_token']}"}


def errors(conflicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in conflicts if c["severity"] == "error"]


async def validate(demo: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = (
        await demo.post("/api/v1/schedule/validate", json={}, headers=auth)
    ).json()
    return found


def unavailable_on(validation: dict[str, Any], machine: int) -> set[int]:
    """The tasks validation finds booked while `machine` is unavailable."""
    return {
        c["task_ids"][0]
        for c in validation["conflicts"]
        if c["type"] == "equipment_unavailable" and c.get("equipment_id") == machine
    }


async def test_a_breakdown_repaired_in_one_call_and_applied(
    demo: httpx.AsyncClient, database_url: str
) -> None:
    anna = await login(demo, "anna")
    machine, booked, first = await busiest_machine(database_url)
    assert booked > 0
    # Back after everything booked on it in those 8 hours has started.
    back = (max(first, clock.now()) + timedelta(hours=12)).replace(microsecond=0)
    # Some of the machine's tasks may clash with its planned downtime already
    # (the demo plans maintenance): the breakdown hits those it makes unavailable.
    already = unavailable_on(await validate(demo, anna), machine)
    down = await demo.put(
        f"/api/v1/equipment/{machine}/status",
        json={"status": "down", "expected_back": back.isoformat()},
        headers=anna,
    )
    assert down.status_code == 200, down.text
    before = await validate(demo, anna)
    unavailable = unavailable_on(before, machine)
    assert unavailable - already

    made = await demo.post(
        "/api/v1/repairs", json={"cause": "breakdown", "equipment_id": machine}, headers=anna
    )
    assert made.status_code == 201, made.text
    repair = made.json()
    # The machine's own expected-back time is the window's end.
    assert repair["cause"]["type"] == "breakdown" and repair["cause"]["equipment_id"] == machine
    assert datetime.fromisoformat(repair["cause"]["until"]) == back
    assert (unavailable - already) - set(repair["left"]) <= set(repair["hit"]) <= unavailable
    draft = repair["draft"]
    assert draft["draft_id"] == repair["draft_id"] and draft["changes"] == repair["changes"]
    moved = {item["task_id"] for group in ("moved", "reassigned") for item in draft[group]}
    assert set(repair["hit"]) <= moved | set(repair["to_tray"])
    assert (await demo.get(repair["draft_url"], headers=anna)).json()["changes"] == repair[
        "changes"
    ]

    applied = await demo.post(f"/api/v1/drafts/{repair['draft_id']}/apply", headers=anna)
    assert applied.status_code == 200, applied.text
    after = (await demo.post("/api/v1/schedule/validate", json={}, headers=anna)).json()
    changed = moved | set(repair["to_tray"])
    on_changed = [c for c in errors(after["conflicts"]) if set(c["task_ids"]) & changed]
    assert on_changed == []
    still_down = [
        c
        for c in after["conflicts"]
        if c["type"] == "equipment_unavailable" and set(c["task_ids"]) & set(repair["hit"])
    ]
    assert still_down == []
    # Nothing got worse elsewhere: every error now was there before.
    was = {(c["type"], tuple(c["task_ids"])) for c in errors(before["conflicts"])}
    assert {(c["type"], tuple(c["task_ids"])) for c in errors(after["conflicts"])} <= was


LATER, SOONER, PAST = "2030-01-02T00:00:00Z", "2030-01-01T00:00:00Z", "2001-01-01T00:00:00Z"
BAD_INPUT, NOT_FOUND = (422, "invalid_input"), (404, "not_found")
AWAY = {"cause": "absence", "operator_id": 1, "start": SOONER, "end": LATER}
BAD = [
    # (what is wrong, body, (status, code))
    ("no machine", {"cause": "breakdown"}, BAD_INPUT),
    ("unknown cause", {"cause": "flood", "equipment_id": 1}, BAD_INPUT),
    ("another cause's field", {"cause": "breakdown", "equipment_id": 1, "task_id": 2}, BAD_INPUT),
    ("unknown machine", {"cause": "breakdown", "equipment_id": 999_999}, NOT_FOUND),
    ("back in the past", {"cause": "breakdown", "equipment_id": 1, "until": PAST}, BAD_INPUT),
    ("not a time", {"cause": "breakdown", "equipment_id": 1, "until": "tomorrow"}, BAD_INPUT),
    ("no offset", {"cause": "breakdown", "equipment_id": 1, "until": LATER[:-1]}, BAD_INPUT),
    ("absence without end", {"cause": "absence", "operator_id": 1, "start": LATER}, BAD_INPUT),
    ("absence ending first", {**AWAY, "start": LATER, "end": SOONER}, BAD_INPUT),
    ("unknown operator", {**AWAY, "operator_id": 999_999}, NOT_FOUND),
    ("unknown task", {"cause": "late", "task_id": 999_999, "expected_end": LATER}, NOT_FOUND),
    ("late ending earlier", {"cause": "late", "task_id": 1, "expected_end": PAST}, BAD_INPUT),
    ("a list", [], BAD_INPUT),
]  # fmt: skip


async def test_bad_repair_requests_are_refused_and_write_nothing(
    demo: httpx.AsyncClient, database_url: str
) -> None:
    anna = await login(demo, "anna")
    before = await written(database_url)
    for wrong, body, (status, code) in BAD:
        refused = await demo.post("/api/v1/repairs", json=body, headers=anna)
        assert refused.status_code == status, (wrong, refused.text)
        error = refused.json()["error"]
        assert error["code"] == code and error["message"], wrong
    olga = await login(demo, "olga")
    refused = await demo.post(
        "/api/v1/repairs", json={"cause": "breakdown", "equipment_id": 1}, headers=olga
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert await written(database_url) == before
