"""The dashboard wall, server side: what it shows, who may see it, what it costs.

The world is the board's small plant (tests/web/board_plant.py) with a day's
trouble added: Cut done a few minutes ago, Frame 12 past its due time, Mill 2
broken down until two hours from now.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from board_plant import BoardWorld, board_world, log_in
from sqlalchemy import func, select

from app import clock
from app.db import tables as t
from app.db.plan_queries import load_plan
from app.domain.kpis import dashboard
from app.domain.validation import validate_plan
from app.realtime.wall_feed import WallFeed
from app.services.audit import verify_chain
from app.services.context import SYSTEM
from app.services.sessions import open_session
from app.services.wall import DashboardCache
from app.services.write_path import change
from app.web.session import SESSION_COOKIE, encode_session
from app.web.wall_render import SECTIONS


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[BoardWorld]:
    async with board_world(database_url, tmp_path) as world:
        await a_day_with_trouble(world)
        yield world


async def a_day_with_trouble(world: BoardWorld) -> None:
    now = clock.now()
    async with change(world.services, SYSTEM, "test.trouble") as tx:
        cut = await tx.session.get(t.Task, world.plant.cut)
        frame = await tx.session.get(t.Job, world.plant.frame)
        mill2 = await tx.session.get(t.Equipment, world.plant.mill2)
        assert cut is not None and frame is not None and mill2 is not None
        cut.status = "done"
        cut.actual_start, cut.actual_end = now - timedelta(minutes=70), now - timedelta(minutes=5)
        frame.due = now - timedelta(hours=1)
        mill2.status, mill2.expected_back = "down", now + timedelta(hours=2)


def wall_of(world: BoardWorld) -> WallFeed:
    feed: WallFeed = world.transport.app.state.wall  # type: ignore[attr-defined]
    return feed


def tile_value(page: str, tile: str) -> str:
    found = re.search(rf'id="tile-{tile}".*?class="tile-value">([^<]*)', page, re.S)
    assert found is not None, f"no tile {tile}"
    return found.group(1).strip()


def section(page: str, section_id: str) -> str:
    found = re.search(rf'<section id="{section_id}".*?</section>', page, re.S)
    assert found is not None, f"no section {section_id}"
    return found.group(0)


async def test_the_wall_shows_every_figure_of_the_dashboard(world: BoardWorld) -> None:
    await log_in(world.client, "maria", "/wall")
    page = (await world.client.get("/wall")).text
    figures = wall_of(world).cache.latest
    assert figures is not None
    # The cached figures are exactly what kpis.dashboard says about the plan.
    schedule_id = await world.services.live_schedule_id()
    async with world.services.db.read() as session:
        plan = await load_plan(session, schedule_id)
    now = figures.dashboard.now
    expected = dashboard(plan, validate_plan(plan, now=now), now=now, timezone=plan.timezone)
    assert figures.dashboard == expected
    # And the page shows them.
    assert tile_value(page, "down") == "1"
    assert tile_value(page, "late") == "1"
    assert tile_value(page, "conflicts") == str(sum(c.count for c in expected.open_conflicts))
    assert tile_value(page, "done-today") == str(expected.today.done_tasks)
    assert tile_value(page, "throughput") == str(expected.throughput[-1].completed)
    down = section(page, "wall-down")
    assert "Mill 2" in down and "back " in down and "Mill 1" not in down
    late = section(page, "wall-late")
    assert "Frame 12" in late and "past due" in late and "Bracket 4711" not in late
    for chart in ("machines", "operators", "throughput", "conflicts"):
        assert f'<svg xmlns="http://www.w3.org/2000/svg" id="wall-{chart}-chart"' in page
    assert "Weld cell 1" in section(page, "wall-machines")
    assert "Olga Petrova" in section(page, "wall-operators")
    revision = f'data-revision="{figures.revision}"'
    assert f'<meta id="wall-frame" name="wall-frame" {revision}' in page


async def test_operators_are_refused_and_strangers_sent_to_log_in(world: BoardWorld) -> None:
    stranger = world.another_browser()
    response = await stranger.get("/wall")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert (await stranger.get("/wall/sse")).status_code == 401
    assert (await stranger.get("/wall/poll?since=0")).status_code == 401
    await log_in(world.client, "olga", "/my")
    assert (await world.client.get("/wall")).status_code == 403
    assert (await world.client.get("/wall/sse")).status_code == 403
    poll = await world.client.get("/wall/poll?since=0")
    assert poll.status_code == 403 and poll.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("username", ["maria", "anna", "admin"])
async def test_managers_schedulers_and_admins_see_the_wall(
    world: BoardWorld, username: str
) -> None:
    await log_in(world.client, username, "/wall")
    response = await world.client.get("/wall")
    assert response.status_code == 200 and 'id="wall-tiles"' in response.text


async def test_opening_the_wall_is_audited_without_a_plan_revision(world: BoardWorld) -> None:
    await log_in(world.client, "anna")  # lands on the board: no wall yet
    async with world.services.db.read() as session:
        before = await session.scalar(select(t.Schedule.revision))
        anna = await session.scalar(select(t.User.id).where(t.User.username == "anna"))
    await world.client.get("/wall")
    await world.client.get("/wall/poll?since=0")  # following it is not another opening
    async with world.services.db.read() as session:
        after = await session.scalar(select(t.Schedule.revision))
        query = select(t.AuditEntry).where(t.AuditEntry.actor_id == anna)
        entries = (await session.execute(query)).scalars().all()
        changes = await session.scalar(select(func.count()).select_from(t.ChangeLogEntry))
    assert after == before
    assert [(e.action, e.entity, e.revision) for e in entries] == [
        ("report.viewed", "report", None)
    ]
    assert entries[0].after == {"report": "wall", "schedule_revision": before}
    assert changes == before  # one change-log row per revision, none for the view
    assert (await verify_chain(world.services)).intact


async def test_figures_are_computed_once_per_revision_and_hour(world: BoardWorld) -> None:
    cache = DashboardCache(world.services)
    now = clock.now()
    first, *others = await asyncio.gather(*(cache.current(now=now) for _ in range(5)))
    assert cache.computations == 1 and all(other is first for other in others)
    assert await cache.current(now=now) is first
    await a_day_with_trouble(world)  # a new revision
    moved = await cache.current(now=now)
    assert cache.computations == 2 and moved.revision == first.revision + 1
    next_hour = await cache.current(now=now + timedelta(hours=1))
    assert cache.computations == 3 and next_hour.hour == moved.hour + timedelta(hours=1)
    assert next_hour.key != moved.key and next_hour.revision == moved.revision


async def test_a_poll_sends_the_sections_or_only_the_clock(world: BoardWorld) -> None:
    await log_in(world.client, "maria", "/wall")
    stale = await world.client.get("/wall/poll?since=0")
    frame = wall_of(world).frame
    assert frame is not None
    assert stale.headers["x-takt-revision"] == str(frame.revision)
    for block in SECTIONS:
        assert stale.text.count('hx-swap-oob="true"') == len(SECTIONS), block
    current = await world.client.get(f"/wall/poll?since={frame.revision}&frame={frame.key}")
    assert 'id="wall-clock"' in current.text and 'id="wall-tiles"' not in current.text
    assert (await world.client.get("/wall/poll?since=soon")).status_code == 400


async def test_an_old_session_is_renewed_while_the_wall_is_watched(world: BoardWorld) -> None:
    async with world.services.db.read() as session:
        maria = await session.scalar(select(t.User).where(t.User.username == "maria"))
    assert maria is not None
    settings = world.services.settings
    record = await open_session(services=world.services, user=maria)
    ages = [clock.now() - timedelta(hours=hours) for hours in (7, 1)]
    old, young = (
        encode_session(settings=settings, user=maria, session_id=record.id, now=issued)
        for issued in ages
    )
    client = world.another_browser()
    client.cookies.set(SESSION_COOKIE, young)
    assert SESSION_COOKIE not in (await client.get("/wall/poll?since=0")).cookies
    client.cookies.set(SESSION_COOKIE, old)
    renewed = (await client.get("/wall/poll?since=0")).cookies.get(SESSION_COOKIE)
    assert renewed is not None
    claims = jwt.decode(renewed, options={"verify_signature": False})
    assert claims["csrf"] == jwt.decode(old, options={"verify_signature": False})["csrf"]
    assert claims["iat"] > clock.now().timestamp() - 60


async def test_late_jobs_are_named_by_their_order_reference(world: BoardWorld) -> None:
    """36 job names are shared by 2,490 jobs on the large plant: the wall says which order."""
    async with change(world.services, SYSTEM, "test.reference") as tx:
        frame = await tx.session.get(t.Job, world.plant.frame)
        assert frame is not None
        frame.reference = "SO-20012"
    await log_in(world.client, "maria", "/wall")
    late = section((await world.client.get("/wall")).text, "wall-late")
    assert "SO-20012 · Frame 12" in late
