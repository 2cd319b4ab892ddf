"""The scheduler's tools and the board's fixes, server side: search, the plant's
conflicts, the qualified group, notices that say what was saved."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from board_plant import BoardWorld, board_world, log_in
from openpyxl import load_workbook
from sqlalchemy import func, select, update

from app.db import tables as t
from app.services.context import SYSTEM
from app.services.write_path import change


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[BoardWorld]:
    async with board_world(database_url, tmp_path) as world:
        async with change(world.services, SYSTEM, "test.plant") as tx:
            await tx.session.execute(
                update(t.Job).where(t.Job.id == world.plant.job).values(reference="SO-4711")
            )
            tx.session.add(
                t.Operator(name="Lena Novice", skills=[t.OperatorSkill(skill="milling", level=1)])
            )
        yield world


@pytest.fixture
async def anna(world: BoardWorld) -> dict[str, str]:
    csrf = await log_in(world.client, "anna")
    return {"X-CSRF-Token": csrf, "HX-Request": "true"}


async def revision(world: BoardWorld) -> int:
    async with world.services.db.read() as session:
        return int((await session.execute(select(func.max(t.Schedule.revision)))).scalar_one())


def assert_error_shape(response: Any, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"] and error["details"]["field"] == field


# --- the "Qualified" group asks the domain's check (skill and level) --------------------------


async def test_the_qualified_group_leaves_out_operators_below_the_tasks_level(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    # Cut needs milling level 2: Olga (milling 3) qualifies, Lena (milling 1) does not.
    detail = (await world.client.get(f"/board/tasks/{world.plant.cut}")).text
    operators_at, machines_at = (
        detail.index('name="operator_id"'),
        detail.index('name="equipment_id"'),
    )
    operator_select = detail[operators_at:machines_at]
    qualified, others = operator_select.split('label="Others"')
    assert "Olga Petrova" in qualified and "Lena Novice" not in qualified
    assert "Lena Novice" in others
    machines = detail[machines_at:]
    capable, other_machines = machines.split('label="Others"', 1)
    assert "Mill 1" in capable and "Weld cell 1" not in capable
    assert "Weld cell 1" in other_machines.split("</select>")[0]


# --- notices say what the drop did ------------------------------------------------------------


async def test_a_drop_into_a_conflict_is_saved_with_a_warning_naming_it(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    response = await world.client.post(
        f"/board/tasks/{plant.weld}/place?{plant.day_view}",
        data={"version": "1", "starts_at": plant.form(8, 30), "ends_at": plant.form(10)},
        headers=anna,
    )
    assert response.status_code == 200, response.text
    notice = re.search(r'<div id="notice" class="notice notice-(\w+)" role="(\w+)"', response.text)
    assert notice is not None and notice.groups() == ("warning", "alert")
    assert "placed with 1 conflict" in response.text
    assert "before its predecessor" in response.text or "predecessor" in response.text


async def test_a_clean_drop_is_saved_with_a_green_notice(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    response = await world.client.post(
        f"/board/tasks/{plant.weld}/place?{plant.day_view}",
        data={"version": "1", "starts_at": plant.form(11), "ends_at": plant.form(12, 30)},
        headers=anna,
    )
    assert response.status_code == 200, response.text
    assert 'class="notice notice-ok" role="status"' in response.text
    assert "conflict" not in response.text.split('id="notice"')[1].split("</div>")[0]


# --- the conflict panel names the machine whatever the rows -----------------------------------


async def test_rows_by_operator_name_the_machine_out_of_service(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    async with change(world.services, SYSTEM, "test.downtime") as tx:
        tx.session.add(
            t.EquipmentDowntime(
                equipment_id=plant.mill, start=plant.at(7), end=plant.at(12), reason="spindle"
            )
        )
    for rows in ("equipment", "operator"):
        view = plant.day_view.replace("rows=equipment", f"rows={rows}")
        page = (await world.client.get(f"/board?{view}")).text
        panel = page[page.index('id="conflicts"') :]
        machine = re.search(r'<p class="machine-name">([^<]*)</p>', panel)
        assert machine is not None and machine.group(1) == "Mill 1", rows


# --- the skip link lands on the board ---------------------------------------------------------


async def test_the_skip_links_point_at_what_is_on_the_page(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    page = (await world.client.get(f"/board?{world.plant.day_view}")).text
    targets = re.findall(r'<a class="skip-link" href="#([\w-]+)"', page)
    assert "board-main" in targets and "tray" in targets
    for target in targets:
        assert f'id="{target}"' in page, target


# --- search -----------------------------------------------------------------------------------


async def search(world: BoardWorld, text: str, **params: str) -> list[dict[str, Any]]:
    response = await world.client.get("/board/search", params={"q": text, **params})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def test_search_finds_a_job_by_its_order_reference_and_where_it_starts(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    results = await search(world, "so-4711")
    job = next(r for r in results if r["kind"] == "job")
    assert job["id"] == plant.job and job["label"].startswith("SO-4711")
    assert job["task_id"] == plant.cut  # the job's first placed task
    assert job["start"] == plant.at(8).isoformat()


async def test_search_finds_tasks_operators_and_machines(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    drill = next(r for r in await search(world, "drill") if r["kind"] == "task")
    assert drill["task_id"] == plant.drill and drill["start"] is None  # in the tray
    by_number = await search(world, f"#{plant.weld}")
    assert by_number[0]["kind"] == "task" and by_number[0]["task_id"] == plant.weld
    olga = next(r for r in await search(world, "olga") if r["kind"] == "operator")
    assert (olga["id"], olga["rows"]) == (plant.olga, "operator")
    mills = [r["id"] for r in await search(world, "mill") if r["kind"] == "equipment"]
    assert mills == [plant.mill, plant.mill2]
    assert await search(world, "100%_\\") == []  # wildcards are plain characters


async def test_the_job_filter_asks_for_jobs_only_and_names_the_chosen_job(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    # "4711" is in the job's reference and name, and in no task, person or machine;
    # "mill" only in machines: the filter's search answers jobs alone.
    jobs = await search(world, "4711", kind="job")
    assert [(r["kind"], r["id"]) for r in jobs] == [("job", plant.job)]
    assert await search(world, "mill", kind="job") == []
    assert [r["kind"] for r in await search(world, "mill", kind="equipment")] == ["equipment"] * 2
    # The board filtered by that job names it in the filter; no list of every job.
    page = (await world.client.get(f"/board?{plant.day_view}&job={plant.job}")).text
    box = re.search(r'<input id="job-filter-input"[^>]*>', page)
    assert box is not None and 'value="SO-4711 · Bracket 4711"' in box.group(0)
    assert f'<input type="hidden" name="job" value="{plant.job}">' in page
    assert '<select name="job"' not in page


async def test_a_bad_search_kind_gets_a_422(world: BoardWorld, anna: dict[str, str]) -> None:
    response = await world.client.get("/board/search", params={"q": "SO", "kind": "jobs"})
    assert_error_shape(response, 422, "kind")


@pytest.mark.parametrize("text", ["", "   ", "x" * 101])
async def test_bad_searches_get_a_422_in_the_one_error_shape(
    world: BoardWorld, anna: dict[str, str], text: str
) -> None:
    response = await world.client.get("/board/search", params={"q": text})
    assert_error_shape(response, 422, "q")


async def test_search_needs_a_session(world: BoardWorld) -> None:
    response = await world.client.get("/board/search", params={"q": "SO"})
    assert response.status_code in (303, 401)


# --- the plant's conflicts --------------------------------------------------------------------


async def test_the_plant_list_holds_conflicts_outside_the_window(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    # Cut moved three days out, after Weld: a dependency violation whose first task
    # is far outside the day view.
    await world.client.post(
        f"/board/tasks/{plant.cut}/place?{plant.day_view}",
        data={"version": "1", "starts_at": plant.form(8, days=3), "ends_at": plant.form(9, days=3)},
        headers=anna,
    )
    window = (await world.client.get(f"/board?{plant.day_view}")).text
    page = (await world.client.get("/board/conflicts/all")).text
    assert "dependency violation" in page and "SO-4711" in page
    goto = re.search(r'data-goto-task="(\d+)" data-goto-start="([^"]+)"', page)
    assert goto is not None and int(goto.group(1)) in (plant.cut, plant.weld)
    assert 'data-total="1"' in page
    # The day view's own panel sees Weld (today) and so lists it too; next week's view
    # would not: the plant list is the one to trust.
    assert "dependency violation" in window
    warnings = (await world.client.get("/board/conflicts/all?severity=warning")).text
    assert 'data-total="0"' in warnings and "No warnings in the plan." in warnings


async def test_the_plant_list_pages(world: BoardWorld, anna: dict[str, str]) -> None:
    plant = world.plant
    # Every task of the plant on Mill 1 at 08:00: overlapping pairs, and more.
    await world.client.post(
        f"/board/tasks/{plant.weld}/place?{plant.day_view}",
        data={
            "version": "1",
            "equipment_id": str(plant.mill),
            "operator_id": str(plant.olga),
            "starts_at": plant.form(8),
            "ends_at": plant.form(9, 30),
        },
        headers=anna,
    )
    first = (await world.client.get("/board/conflicts/all")).text
    total = int(re.search(r'data-total="(\d+)"', first).group(1))  # type: ignore[union-attr]
    assert total >= 3
    assert "Previous</button>" in first and "disabled>Previous" in first.replace("\n", "")
    beyond = (await world.client.get(f"/board/conflicts/all?offset={total}")).text
    assert "<li" not in beyond.split('class="pager"')[0].split("plant-conflicts-filter")[1]


@pytest.mark.parametrize(
    ("query", "field"),
    [("offset=-1", "offset"), ("offset=ten", "offset"), ("severity=fatal", "severity")],
)
async def test_bad_conflict_list_queries_get_a_422(
    world: BoardWorld, anna: dict[str, str], query: str, field: str
) -> None:
    before = await revision(world)
    response = await world.client.get(f"/board/conflicts/all?{query}")
    assert_error_shape(response, 422, field)
    assert await revision(world) == before


async def test_tools_need_a_role_that_reads_the_plan(world: BoardWorld) -> None:
    await log_in(world.client, "olga", next_url="/my")
    for url in ("/board/search?q=SO", "/board/conflicts/all", "/board/export.csv"):
        response = await world.client.get(url)
        assert response.status_code == 403, url


# --- undo: each edit answers with what it changed; an undo is an ordinary edit ----------------


async def test_an_edit_answers_with_the_record_to_undo_it(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    moved = await world.client.post(
        f"/board/tasks/{plant.cut}/place?{plant.day_view}",
        data={"version": "1", "starts_at": plant.form(11), "ends_at": plant.form(12)},
        headers=anna,
    )
    assert moved.status_code == 200, moved.text
    record = re.search(
        r'id="last-edit"[^>]*data-version="(\d+)" data-before=\'([^\']*)\'', moved.text
    )
    assert record is not None and record.group(1) == "2"
    before = json.loads(html.unescape(record.group(2)))
    assert before["equipment_id"] == plant.mill and before["start"] == plant.at(8).isoformat()
    # The undo: the "before" sent back with the version the edit left.
    undone = await world.client.post(
        f"/board/tasks/{plant.cut}/place?{plant.day_view}",
        data={
            "version": "2",
            "intent": "undo",
            "operator_id": str(before["operator_id"]),
            "equipment_id": str(before["equipment_id"]),
            "starts_at": before["start"],
            "ends_at": before["end"],
        },
        headers=anna,
    )
    assert undone.status_code == 200, undone.text
    async with world.services.db.read() as session:
        key = {"schedule_id": await world.services.live_schedule_id(), "task_id": plant.cut}
        placed = await session.get(t.Assignment, key)
        assert placed is not None and placed.start.hour == 8


async def test_an_undo_after_someone_else_changed_the_task_is_refused_by_name(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    await world.client.post(
        f"/board/tasks/{plant.cut}/place?{plant.day_view}",
        data={"version": "1", "starts_at": plant.form(11), "ends_at": plant.form(12)},
        headers=anna,
    )
    async with world.another_browser() as bens_browser:
        ben = {"X-CSRF-Token": await log_in(bens_browser, "ben"), "HX-Request": "true"}
        response = await bens_browser.post(
            f"/board/tasks/{plant.cut}/place?{plant.day_view}",
            data={"version": "2", "starts_at": plant.form(14), "ends_at": plant.form(15)},
            headers=ben,
        )
        assert response.status_code == 200
    before = await revision(world)
    refused = await world.client.post(
        f"/board/tasks/{plant.cut}/place?{plant.day_view}",
        data={
            "version": "2",
            "intent": "undo",
            "starts_at": plant.form(8),
            "ends_at": plant.form(9),
        },
        headers=anna,
    )
    assert refused.status_code == 412
    assert "Not undone: Ben Hoffmann changed this task after your change" in refused.text
    assert 'id="last-edit"' not in refused.text
    assert await revision(world) == before


async def test_back_to_the_tray_answers_with_where_the_task_was(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    response = await world.client.post(
        f"/board/tasks/{plant.weld}/unschedule?{plant.day_view}",
        data={"version": "1"},
        headers=anna,
    )
    assert response.status_code == 200, response.text
    record = re.search(r'id="last-edit"[^>]*data-before=\'([^\']*)\'', response.text)
    assert record is not None
    before = json.loads(html.unescape(record.group(1)))
    assert before["equipment_id"] == plant.welder and before["start"] == plant.at(9).isoformat()


# --- export of the plan in view ---------------------------------------------------------------


async def test_the_plan_in_view_exports_as_csv(world: BoardWorld, anna: dict[str, str]) -> None:
    plant = world.plant
    response = await world.client.get(f"/board/export.csv?{plant.day_view}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="takt-plan-' in response.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert lines[0][:3] == ["Task #", "Order reference", "Job"]
    by_task = {int(line[0]): line for line in lines[1:]}
    assert set(by_task) == {plant.cut, plant.weld}  # Drill is in the tray
    cut = by_task[plant.cut]
    assert cut[1:3] == ["SO-4711", "Bracket 4711"]
    assert cut[6:11] == [
        "Olga Petrova",
        "Mill 1",
        plant.at(8).strftime("%Y-%m-%d %H:%M"),
        plant.at(9).strftime("%Y-%m-%d %H:%M"),
        "60",
    ]
    # Another day, or a job filter that leaves them out: no rows.
    other_day = plant.day_view.replace(
        quote(plant.day.isoformat()), quote(plant.at(0, days=2).isoformat())
    )
    assert (await world.client.get(f"/board/export.csv?{other_day}")).text.count("\n") == 1
    filtered = await world.client.get(f"/board/export.csv?{plant.day_view}&job={plant.frame}")
    assert filtered.text.count("\n") == 1


async def test_the_plan_in_view_exports_as_an_excel_workbook(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    response = await world.client.get(f"/board/export.xlsx?{plant.day_view}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1][0] == "Task #"
    cut = next(row for row in rows[2:] if row[0] == plant.cut)
    assert cut[1] == "SO-4711" and cut[8] == plant.at(8).replace(tzinfo=None)


async def test_export_writes_formula_like_names_as_text(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    async with change(world.services, SYSTEM, "test.rename") as tx:
        await tx.session.execute(
            update(t.Job).where(t.Job.id == world.plant.job).values(name="=HYPERLINK(1)")
        )
    text = (await world.client.get(f"/board/export.csv?{world.plant.day_view}")).text
    assert "'=HYPERLINK(1)" in text


async def test_unknown_export_formats_are_not_found(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    response = await world.client.get(f"/board/export.pdf?{world.plant.day_view}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- moving a selection together --------------------------------------------------------------


async def test_a_selection_move_starts_a_bulk_run(world: BoardWorld, anna: dict[str, str]) -> None:
    plant = world.plant
    response = await world.client.post(
        "/board/selection/shift",
        data={"tasks": f"{plant.cut}:1,{plant.weld}:1", "minutes": "-30"},
        headers=anna,
    )
    assert response.status_code == 202, response.text
    run = await world.client.get(f"/board/runs/{response.json()['run_id']}")
    assert run.status_code == 200 and run.json()["status"] in ("waiting", "active", "done")


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"tasks": "", "minutes": "30"}, "tasks"),
        ({"tasks": "1:x", "minutes": "30"}, "tasks"),
        ({"tasks": "1:1", "minutes": "half"}, "minutes"),
        ({"tasks": "1:1", "minutes": "0"}, "minutes"),
    ],
    ids=["no tasks", "bad version", "bad minutes", "no move"],
)
async def test_bad_selection_moves_get_a_422_and_queue_nothing(
    world: BoardWorld, anna: dict[str, str], form: dict[str, str], field: str
) -> None:
    before = await revision(world)
    response = await world.client.post("/board/selection/shift", data=form, headers=anna)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["message"] and (
        field in error["details"] or error["details"].get("field") == field
    )
    assert await revision(world) == before


async def test_runs_are_only_shown_to_who_started_them(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    assert (await world.client.get("/board/runs/no-such-run")).status_code == 404


# --- the job's network: links, critical path, slack -------------------------------------------


async def test_a_jobs_network_has_its_links_and_each_tasks_slack(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    async with change(world.services, SYSTEM, "test.extra-task") as tx:
        paint = t.Task(
            job_id=plant.job, name="Paint", sequence=3, duration_minutes=30, required_skill=None
        )
        tx.session.add(paint)
        await tx.session.flush()
        tx.session.add(t.TaskDependency(task_id=paint.id, predecessor_id=plant.cut))
        paint_id = paint.id
    response = await world.client.get(f"/board/jobs/{plant.job}/network")
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(map(tuple, body["links"])) == sorted(
        [(plant.cut, plant.weld), (plant.cut, paint_id)]
    )
    timing = {task["task_id"]: task for task in body["tasks"]}
    # Cut (60) then Weld (90) is the longest chain; Paint (30) may slip an hour.
    assert body["critical_task_ids"] == [plant.cut, plant.weld]
    assert timing[paint_id]["slack_minutes"] == 60 and not timing[paint_id]["critical"]
    assert timing[plant.weld]["earliest_start"] is not None


async def test_a_network_of_a_missing_job_or_a_loop_is_refused(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    missing = await world.client.get("/board/jobs/999/network")
    assert missing.status_code == 404 and missing.json()["error"]["code"]
    async with change(world.services, SYSTEM, "test.loop") as tx:
        tx.session.add(t.TaskDependency(task_id=world.plant.cut, predecessor_id=world.plant.weld))
    loop = await world.client.get(f"/board/jobs/{world.plant.job}/network")
    assert loop.status_code == 409 and loop.json()["error"]["code"] == "dependency_cycle"
    # The job's critical path (the board's "Show critical path") is refused the same way.
    critical = await world.client.get(f"/board/jobs/{world.plant.job}/critical")
    assert critical.status_code == 409
    assert critical.json()["error"]["code"] == "dependency_cycle"
    assert sorted(critical.json()["error"]["details"]["tasks"]) == sorted(
        [world.plant.cut, world.plant.weld]
    )
