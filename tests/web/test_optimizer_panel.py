"""The board's optimizer panel, server side: start, progress, diff, apply, stale apply, refusals."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from board_plant import BoardWorld, board_world, log_in
from sqlalchemy import func, select, update

from app import clock
from app.db import tables as t
from app.web import optimizer_pages
from app.web.optimizer_render import (
    duration_label,
    kpi_model,
    kpi_notes,
    kpis_model,
    progress_model,
    since_first_plan,
    solver_words,
)


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[BoardWorld]:
    async with board_world(database_url, tmp_path) as world:
        yield world


@pytest.fixture
async def anna(world: BoardWorld) -> dict[str, str]:
    """Anna (scheduler) logged in: the headers htmx sends."""
    csrf = await log_in(world.client, "anna")
    return {"X-CSRF-Token": csrf, "HX-Request": "true"}


def state_of(html: str) -> str:
    found = re.search(r'<section id="optimizer"[^>]*data-state="([a-z]+)"', html)
    assert found is not None, html[:400]
    return found.group(1)


async def drafts_count(world: BoardWorld) -> int:
    async with world.services.db.read() as session:
        query = select(func.count()).select_from(t.Schedule).where(t.Schedule.kind == "draft")
        return int((await session.execute(query)).scalar_one())


async def run_to_draft(world: BoardWorld, headers: dict[str, str]) -> str:
    """Start a 2 s run on all open jobs and poll its panel, as htmx does, until it is done."""
    started = await world.client.post(
        f"/board/optimizer/runs?{world.plant.day_view}",
        data={"time_limit": "2", "scope": "all"},
        headers=headers,
    )
    assert started.status_code == 200, started.text
    html = started.text
    while state_of(html) == "running":
        # Asked again at once until the first plan shows (the answer waits for it), then
        # one look a second.
        plans = re.search(r"(\d+) plans? found so far", html)
        assert plans is not None, html
        trigger = "every 1s" if int(plans.group(1)) else "load"
        assert f'hx-trigger="{trigger}"' in html
        poll = re.search(r'hx-get="([^"]+)"', html)
        assert poll is not None
        if int(plans.group(1)):
            await asyncio.sleep(0.2)
        html = (await world.client.get(poll.group(1).replace("&amp;", "&"), headers=headers)).text
    assert state_of(html) == "draft", html
    return html


async def live_revision(world: BoardWorld) -> int:
    async with world.services.db.read() as session:
        query = select(t.Schedule.revision).where(t.Schedule.kind == "live")
        return int((await session.execute(query)).scalar_one())


def action_url(html: str, action: str) -> str:
    found = re.search(rf'hx-post="(/board/optimizer/drafts/\d+/{action}[^"]*)"', html)
    assert found is not None, f"no {action} button"
    return found.group(1).replace("&amp;", "&")


# --- words -----------------------------------------------------------------------------------


def test_durations_and_deltas_read_as_a_scheduler_says_them() -> None:
    assert duration_label(45) == "45 min"
    assert duration_label(130) == "2 h 10 min"
    assert duration_label(60 * 24 * 3 + 240) == "3 d 4 h"
    less_late = kpi_model("Weighted lateness", 300, 60, unit="minutes", higher_is_better=False)
    assert (less_late["arrow"], less_late["tone"], less_late["delta"]) == (
        "▼",
        "better",
        "\u22124 h",
    )
    busier = kpi_model("Utilization", 0.5, 0.62, unit="share", higher_is_better=True)
    assert (busier["arrow"], busier["tone"], busier["delta"]) == ("▲", "better", "+12 pts")
    same = kpi_model("Makespan", 90, 90, unit="minutes", higher_is_better=False)
    assert (same["arrow"], same["tone"]) == ("→", "same")


def test_overdue_starts_show_only_when_there_are_some_and_say_why() -> None:
    calm = {"makespan": {"before": 90, "after": 60}, "overdue_starts": {"before": 0, "after": 0}}
    assert [k["label"] for k in kpis_model(calm)] == ["Makespan, jobs planned before"]
    assert kpi_notes(calm, 0) == []
    stale = {**calm, "overdue_starts": {"before": 729, "after": 0}}
    overdue = kpis_model(stale)[-1]
    assert (overdue["label"], overdue["before"], overdue["after"], overdue["tone"]) == (
        "Overdue starts",
        "729",
        "0",
        "better",
    )
    (note,) = kpi_notes(stale, 0)
    assert note.startswith("729 tasks were booked to start before now")


def test_tray_tasks_the_draft_schedules_are_named_beside_the_figures() -> None:
    (note,) = kpi_notes({}, 108)
    assert note.startswith("108 tasks come from the tray")
    assert kpi_notes({}, 1)[0].startswith("1 task comes from the tray")


def test_new_work_stands_on_its_own_line_beside_the_like_for_like_figures() -> None:
    work = {"jobs": 3, "tasks": 12, "weighted_lateness": 150, "makespan": 3000}
    (note,) = kpi_notes({"new_work": work}, 12)
    assert note.startswith("New work: 12 tasks of 3 jobs placed from the tray")
    assert "weighted lateness 2 h 30 min, done in 2 d 2 h" in note


def test_the_draft_says_what_the_solver_reached_and_what_improved() -> None:
    searched = {
        "reached": "best found",
        "ending": "time limit",
        "gap": None,
        "weighted_lateness_minutes": 600,
        "first_plan": {"weighted_lateness_minutes": 2880, "seconds": 1.4},
        "improvements": 14,
    }
    assert solver_words(searched) == (
        "Best found when time ran out",
        "Weighted lateness \u22121 d 14 h since the first plan, 14 improvements"
        " · first plan after 1.4 s",
    )
    assert solver_words({"reached": "feasible", "gap": 0.042})[0] == "Feasible · gap 4 %"
    assert solver_words({"reached": "optimal", "gap": 0.0})[0] == "Optimal"
    done = {"reached": "feasible", "gap": 0.0, "ending": "nothing left to gain"}
    assert solver_words(done)[0] == "Nothing left to improve"
    assert since_first_plan(None, 60, 0) == ""


def test_progress_after_the_first_plan_has_no_bound_to_show_a_gap_against() -> None:
    run = progress_model(
        "r1",
        "running",
        {
            "phase": "improving", "objective": 600, "best_bound": None, "elapsed_s": 3.2,
            "solutions": 4, "first_weighted_lateness_minutes": 900,
            "weighted_lateness_minutes": 600, "improvements": 3,
        },
        60,
    )  # fmt: skip
    assert run["gap"] == "\u2013" and run["gap_pct"] is None
    assert run["elapsed_label"] == "3 s" and run["solutions"] == 4
    assert run["since_first"] == "Weighted lateness \u22125 h since the first plan, 3 improvements"


# --- who may -------------------------------------------------------------------------------


async def test_schedulers_get_the_optimize_button_and_its_options(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    board = (await world.client.get(f"/board?{world.plant.day_view}")).text
    assert 'hx-get="/board/optimizer?' in board and 'id="optimizer"' in board
    panel = await world.client.get(f"/board/optimizer?{world.plant.day_view}", headers=anna)
    assert panel.status_code == 200
    assert state_of(panel.text) == "options"
    for seconds in ("10", "30", "60"):
        assert f'name="time_limit" value="{seconds}"' in panel.text
    assert 'value="window"' in panel.text and 'value="all"' in panel.text


@pytest.mark.parametrize("user", ["maria", "olga"])
async def test_managers_and_operators_may_not_optimize(world: BoardWorld, user: str) -> None:
    csrf = await log_in(world.client, user, next_url="/board" if user == "maria" else "/my")
    headers = {"X-CSRF-Token": csrf, "HX-Request": "true"}
    if user == "maria":
        board = (await world.client.get(f"/board?{world.plant.day_view}")).text
        assert "/board/optimizer" not in board
    refused = await world.client.get(f"/board/optimizer?{world.plant.day_view}", headers=headers)
    assert refused.status_code == 403
    started = await world.client.post(
        "/board/optimizer/runs", data={"time_limit": "2", "scope": "all"}, headers=headers
    )
    assert started.status_code == 403
    assert await drafts_count(world) == 0


async def test_bad_options_are_refused_and_nothing_runs(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    for form in (
        {"time_limit": "0", "scope": "all"},
        {"time_limit": "9999", "scope": "all"},
        {"time_limit": "ten", "scope": "all"},
        {"time_limit": "10", "scope": "everything"},
    ):
        refused = await world.client.post("/board/optimizer/runs", data=form, headers=anna)
        assert refused.status_code == 422, form
        assert 'id="notice"' in refused.text
    no_token = {"HX-Request": "true"}
    refused = await world.client.post(
        "/board/optimizer/runs", data={"time_limit": "2", "scope": "all"}, headers=no_token
    )
    assert refused.status_code == 403
    unknown = await world.client.get("/board/optimizer/runs/no%20such%20run", headers=anna)
    assert unknown.status_code in (404, 422)
    assert await drafts_count(world) == 0


# --- a run, its draft, applying it -----------------------------------------------------------


async def test_the_panel_asks_again_at_once_and_hears_when_the_first_plan_stands(
    world: BoardWorld, anna: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No poll interval between the first plan and the scheduler: the running panel
    without a plan asks again as soon as it is shown, and that look is answered when
    the plan stands (however long the machine takes to make it)."""
    monkeypatch.setattr(optimizer_pages, "FIRST_PLAN_WAIT_S", 120.0)
    started = await world.client.post(
        f"/board/optimizer/runs?{world.plant.day_view}",
        data={"time_limit": "2", "scope": "all"},
        headers=anna,
    )
    assert started.status_code == 200, started.text
    if "0 plans found so far" in started.text:
        assert 'hx-trigger="load"' in started.text
    poll = re.search(r'hx-get="([^"]+)"', started.text)
    assert poll is not None
    html = (await world.client.get(poll.group(1).replace("&amp;", "&"), headers=anna)).text
    if state_of(html) == "running":
        plans = re.search(r"(\d+) plans? found so far", html)
        assert plans is not None and int(plans.group(1)) >= 1, html
        assert 'hx-trigger="every 1s"' in html
    else:
        assert state_of(html) == "draft", html


async def test_a_run_shows_progress_then_the_diff_and_applies(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    html = await run_to_draft(world, anna)
    # Drill was in the tray: the draft schedules it, and says where.
    assert "Newly scheduled" in html
    drill = re.search(rf'data-task-id="{world.plant.drill}".*?</li>', html, re.S)
    assert drill is not None and "Drill" in drill.group(0) and "Frame 12" in drill.group(0)
    assert "not scheduled" in drill.group(0)
    assert "Weighted lateness" in html and "Makespan" in html and "Utilization" in html
    assert f'data-task-id="{world.plant.drill}" data-name="Drill"' in html  # its ghost
    async with world.services.db.read() as session:
        revision_before = (
            await session.execute(select(t.Schedule.revision).where(t.Schedule.kind == "live"))
        ).scalar_one()

    applied = await world.client.post(action_url(html, "apply"), headers=anna)
    assert applied.status_code == 200, applied.text
    assert state_of(applied.text) == "applied"
    assert re.search(r"Applied \d+ changes?", applied.text)
    async with world.services.db.read() as session:
        placed = (
            await session.execute(
                select(t.Assignment)
                .join(t.Schedule, t.Schedule.id == t.Assignment.schedule_id)
                .where(t.Schedule.kind == "live", t.Assignment.task_id == world.plant.drill)
            )
        ).scalar_one_or_none()
        revision_after = (
            await session.execute(select(t.Schedule.revision).where(t.Schedule.kind == "live"))
        ).scalar_one()
    assert placed is not None
    assert revision_after == revision_before + 1  # one transaction, one revision


async def test_an_expired_draft_is_refused_in_the_panel_with_a_run_again(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    html = await run_to_draft(world, anna)
    found = re.search(r"/board/optimizer/drafts/(\d+)/apply", html)
    assert found is not None
    then = clock.now() - timedelta(hours=25)
    async with world.services.db.write() as session:
        await session.execute(
            update(t.Draft)
            .where(t.Draft.schedule_id == int(found.group(1)))
            .values(created_at=then)
        )
    before = await live_revision(world)

    refused = await world.client.post(action_url(html, "apply"), headers=anna)

    assert refused.status_code == 409
    assert state_of(refused.text) == "ended"
    assert "drafts can be applied for 24 hours" in refused.text
    assert "Run again" in refused.text and "/board/optimizer/runs?" in refused.text
    assert await live_revision(world) == before


async def test_a_stale_apply_names_the_tasks_that_changed_and_offers_a_rerun(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    html = await run_to_draft(world, anna)
    # Meanwhile Ben schedules Drill himself, on Mill 2.
    ben = world.another_browser()
    ben_csrf = await log_in(ben, "ben")
    moved = await ben.post(
        f"/board/tasks/{world.plant.drill}/place?{world.plant.day_view}",
        data={
            "version": "1",
            "operator_id": str(world.plant.olga),
            "equipment_id": str(world.plant.mill2),
            "starts_at": world.plant.form(14),
            "ends_at": world.plant.form(14, 45),
        },
        headers={"X-CSRF-Token": ben_csrf, "HX-Request": "true"},
    )
    assert moved.status_code == 200, moved.text

    refused = await world.client.post(action_url(html, "apply"), headers=anna)
    assert refused.status_code == 409
    assert state_of(refused.text) == "stale"
    assert "Drill" in refused.text and "Ben Hoffmann" in refused.text
    assert "Re-run" in refused.text and "/board/optimizer/runs?" in refused.text
    async with world.services.db.read() as session:
        drill = await session.get(
            t.Assignment, (await world.services.live_schedule_id(), world.plant.drill)
        )
    assert drill is not None and drill.equipment_id == world.plant.mill2  # Ben's edit stands
    await ben.aclose()
