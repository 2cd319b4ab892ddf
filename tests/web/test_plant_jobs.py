"""The plant pages for jobs and tasks, server side (httpx against the app in-process).

The world: the board plant (tests/web/board_plant.py): job "Bracket 4711" with
Cut (planned on Mill 1 for Olga) then Weld, job "Frame 12" with Drill in the
tray; maria is a manager, anna and ben schedulers, olga an operator.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from board_plant import BoardWorld, board_world, log_in
from sqlalchemy import func, select, update

from app.db import tables as t


@pytest.fixture
async def world(sqlite_database_url: str, tmp_path: Path) -> AsyncIterator[BoardWorld]:
    async with board_world(sqlite_database_url, tmp_path / "var") as world:
        yield world


async def as_user(world: BoardWorld, username: str) -> dict[str, str]:
    csrf = await log_in(world.client, username, "/my" if username == "olga" else "/board")
    return {"X-CSRF-Token": csrf, "HX-Request": "true"}


async def count(world: BoardWorld, table: type[t.Base]) -> int:
    async with world.services.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def job_row(world: BoardWorld, job_id: int) -> t.Job:
    async with world.services.db.read() as session:
        row = await session.get(t.Job, job_id)
        assert row is not None
        return row


def version_in(html: str) -> int:
    found = re.search(r'name="version" value="(\d+)"', html)
    assert found is not None
    return int(found.group(1))


def job_form(**fields: str) -> dict[str, str]:
    return {
        "reference": "J-104",
        "name": "Gearbox housing",
        "customer": "Acme",
        "priority": "10",
        "release": "",
        "due": "",
        "status": "open",
    } | fields


async def test_a_manager_creates_a_job_and_lands_on_its_page(world: BoardWorld) -> None:
    headers = await as_user(world, "maria")
    before = await count(world, t.Job)
    made = await world.client.post("/plant/jobs", data=job_form(), headers=headers)
    assert made.status_code == 200, made.text
    target = made.headers["HX-Redirect"]
    assert re.fullmatch(r"/plant/jobs/\d+", target)
    assert await count(world, t.Job) == before + 1
    page = await world.client.get(target)
    assert "Gearbox housing" in page.text and 'value="J-104"' in page.text


async def test_an_invalid_job_is_shown_next_to_its_fields_and_writes_nothing(
    world: BoardWorld,
) -> None:
    headers = await as_user(world, "maria")
    before = await count(world, t.Job)
    plant = world.plant
    bad = job_form(
        name="", priority="300", release=plant.form(8, days=2), due=plant.form(8, days=1)
    )
    answer = await world.client.post("/plant/jobs", data=bad, headers=headers)
    assert answer.status_code == 422
    html = answer.text
    for field, says in [
        ("name", "Name is required"),
        ("priority", "Priority must be a whole number from 0 to 100"),
        ("due", "Due must be after the release"),
    ]:
        assert f'id="new-job-{field}-error"' in html and says in html
        tag = re.search(rf'<input id="new-job-{field}"[^>]*>', html)
        assert tag is not None
        assert 'aria-invalid="true"' in tag.group(0)
        assert f"new-job-{field}-error" in tag.group(0)  # aria-describedby names the message
    assert 'value="J-104"' in html  # what was typed stays
    assert await count(world, t.Job) == before


async def test_a_stale_job_edit_is_refused_by_name(world: BoardWorld) -> None:
    job = world.plant.job
    headers = await as_user(world, "maria")
    seen = version_in((await world.client.get(f"/plant/jobs/{job}")).text)
    async with world.another_browser() as other:
        csrf = await log_in(other, "admin")
        saved = await other.post(
            f"/plant/jobs/{job}",
            data=job_form(name="Bracket 4711 rev B", version=str(seen)),
            headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
        )
        assert saved.status_code == 200, saved.text
    stale = await world.client.post(
        f"/plant/jobs/{job}", data=job_form(name="Mine", version=str(seen)), headers=headers
    )
    assert stale.status_code == 412
    assert "Administrator changed this job while you were editing it" in stale.text
    assert "Bracket 4711 rev B" in stale.text  # the form now shows their version
    assert version_in(stale.text) == seen + 1
    assert (await job_row(world, job)).name == "Bracket 4711 rev B"


async def test_a_save_without_a_version_is_refused(world: BoardWorld) -> None:
    headers = await as_user(world, "maria")
    answer = await world.client.post(
        f"/plant/jobs/{world.plant.job}", data=job_form(name="No version"), headers=headers
    )
    assert answer.status_code == 428
    assert (await job_row(world, world.plant.job)).name == "Bracket 4711"


@pytest.mark.parametrize("username", ["anna", "olga"])
async def test_schedulers_and_operators_may_not_change_jobs(
    world: BoardWorld, username: str
) -> None:
    headers = await as_user(world, username)
    before = await count(world, t.Job)
    made = await world.client.post("/plant/jobs", data=job_form(), headers=headers)
    assert made.status_code == 403
    deleted = await world.client.post(
        f"/plant/jobs/{world.plant.frame}/delete", data={"version": "1"}, headers=headers
    )
    assert deleted.status_code == 403
    assert await count(world, t.Job) == before


async def test_a_scheduler_reads_the_plant_pages_without_forms(world: BoardWorld) -> None:
    await as_user(world, "anna")
    listing = await world.client.get("/plant/jobs")
    assert listing.status_code == 200
    assert "Bracket 4711" in listing.text and "New job" not in listing.text
    page = await world.client.get(f"/plant/jobs/{world.plant.job}")
    assert "read-only" in page.text and "<fieldset disabled" in page.text
    assert "Delete job" not in page.text


async def test_the_board_links_to_the_plant_pages_for_managers(world: BoardWorld) -> None:
    await as_user(world, "maria")
    assert 'href="/plant/jobs">Plant</a>' in (await world.client.get("/board")).text
    async with world.another_browser() as anna:
        await log_in(anna, "anna")
        assert 'href="/plant/jobs"' not in (await anna.get("/board")).text


async def test_an_operator_may_not_open_the_plant_pages(world: BoardWorld) -> None:
    await as_user(world, "olga")
    for path in ("/plant/jobs", "/plant/operators", "/plant/equipment"):
        assert (await world.client.get(path)).status_code == 403


async def test_the_job_list_is_searched_and_paged(world: BoardWorld) -> None:
    headers = await as_user(world, "maria")
    for n in range(55):
        made = await world.client.post(
            "/plant/jobs", data=job_form(reference=f"P-{n:03}", name=f"Pallet {n}"), headers=headers
        )
        assert made.status_code == 200
    first = (await world.client.get("/plant/jobs")).text
    assert first.count('href="/plant/jobs/') == 50
    assert "1\u201350 of 57" in first and 'href="/plant/jobs?offset=50"' in first
    second = (await world.client.get("/plant/jobs?offset=50")).text
    assert second.count('href="/plant/jobs/') == 7
    found = (await world.client.get("/plant/jobs?q=p-04")).text
    assert found.count('href="/plant/jobs/') == 10 and "Pallet 41" in found
    literal = (await world.client.get("/plant/jobs?q=P_0")).text
    assert "None found" in literal  # "_" is a character here, not a wildcard


async def test_a_job_with_a_started_task_is_not_deleted(world: BoardWorld) -> None:
    headers = await as_user(world, "maria")
    async with world.services.db.write() as session:
        await session.execute(
            update(t.Task).where(t.Task.id == world.plant.cut).values(status="in_progress")
        )
    page = await world.client.get(f"/plant/jobs/{world.plant.job}")
    refused = await world.client.post(
        f"/plant/jobs/{world.plant.job}/delete",
        data={"version": str(version_in(page.text))},
        headers=headers,
    )
    assert refused.status_code == 409
    assert "1 started or done tasks" in refused.text
    assert (await job_row(world, world.plant.job)).name == "Bracket 4711"


async def test_a_job_is_deleted_after_saying_what_leaves_the_plan(world: BoardWorld) -> None:
    headers = await as_user(world, "maria")
    bracket = (await world.client.get(f"/plant/jobs/{world.plant.job}")).text
    assert "its 2 tasks? 2 of them are planned and leave the plan." in bracket
    frame = (await world.client.get(f"/plant/jobs/{world.plant.frame}")).text
    assert "its 1 task?" in frame and "planned" not in frame.split("hx-confirm=")[1][:80]
    gone = await world.client.post(
        f"/plant/jobs/{world.plant.frame}/delete",
        data={"version": str(version_in(frame))},
        headers=headers,
    )
    assert gone.status_code == 200 and gone.headers["HX-Redirect"] == "/plant/jobs"
    async with world.services.db.read() as session:
        assert await session.get(t.Job, world.plant.frame) is None
        assert await session.get(t.Task, world.plant.drill) is None


async def test_without_scripts_a_save_redirects_and_a_refusal_is_the_whole_page(
    world: BoardWorld,
) -> None:
    csrf = (await as_user(world, "maria"))["X-CSRF-Token"]
    made = await world.client.post("/plant/jobs", data=job_form(csrf_token=csrf))
    assert made.status_code == 303 and made.headers["location"].startswith("/plant/jobs/")
    refused = await world.client.post("/plant/jobs", data=job_form(name="", csrf_token=csrf))
    assert refused.status_code == 422
    assert refused.text.lstrip().startswith("<!doctype html>")
    assert 'id="new-job-name-error"' in refused.text
