"""The plant pages for tasks, operators and equipment, server side.

The world: the board plant (tests/web/board_plant.py): Cut of "Bracket 4711"
planned on Mill 1 for Olga, then Weld (after Cut) on the weld cell for Omar;
Drill of "Frame 12" in the tray. maria is a manager.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import time, timedelta
from pathlib import Path

import pytest
from board_plant import BoardWorld, board_world, log_in

from app.services import resources, tasks
from app.services.context import SYSTEM


@pytest.fixture
async def world(sqlite_database_url: str, tmp_path: Path) -> AsyncIterator[BoardWorld]:
    async with board_world(sqlite_database_url, tmp_path / "var") as world:
        yield world


async def as_maria(world: BoardWorld) -> dict[str, str]:
    csrf = await log_in(world.client, "maria")
    return {"X-CSRF-Token": csrf, "HX-Request": "true"}


def version_in(html: str) -> str:
    found = re.search(r'name="version" value="(\d+)"', html)
    assert found is not None
    return found.group(1)


def task_form(**fields: str) -> dict[str, str]:
    return {
        "sequence": "3",
        "name": "Paint",
        "duration_minutes": "40",
        "required_skill": "painting",
        "min_level": "2",
        "required_capability": "painting",
        "predecessors": "",
        "alt-0-equipment": "",
        "alt-0-minutes": "",
    } | fields


async def test_a_task_is_added_with_predecessors_and_a_routing(world: BoardWorld) -> None:
    plant, headers = world.plant, await as_maria(world)
    form = task_form(**{"alt-0-equipment": str(plant.mill2), "alt-0-minutes": "55"})
    answer = await world.client.post(
        f"/plant/jobs/{plant.job}/tasks",
        data=form | {"pred": [str(plant.weld)], "predecessors": f"#{plant.drill}"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    assert "Task Paint added." in answer.text and 'id="tasks"' in answer.text
    found, _ = await tasks.list_tasks(
        services=world.services,
        actor=SYSTEM,
        filters=tasks.TaskFilter(job_id=plant.job),
        limit=10,
        offset=0,
    )
    paint = next(t for t in found if t["name"] == "Paint")
    assert sorted(paint["predecessors"]) == sorted([plant.weld, plant.drill])
    assert paint["alternatives"] == [{"equipment_id": plant.mill2, "duration_minutes": 55}]
    assert (paint["duration_minutes"], paint["required_skill"], paint["min_level"]) == (
        40,
        "painting",
        2,
    )


async def test_an_invalid_task_writes_nothing(world: BoardWorld) -> None:
    plant, headers = world.plant, await as_maria(world)
    bad = task_form(
        duration_minutes="0",
        required_skill="spray paint",
        **{"alt-0-minutes": "30"},  # minutes without a machine
    )
    answer = await world.client.post(f"/plant/jobs/{plant.job}/tasks", data=bad, headers=headers)
    assert answer.status_code == 422
    assert "Minutes must be a whole number from 1 to 43200" in answer.text
    assert 'id="new-task-required_skill-error"' in answer.text
    assert "is required when minutes are given" in answer.text
    _, total = await tasks.list_tasks(
        services=world.services,
        actor=SYSTEM,
        filters=tasks.TaskFilter(job_id=plant.job),
        limit=10,
        offset=0,
    )
    assert total == 2


async def test_a_cycle_of_predecessors_is_refused_at_the_field(world: BoardWorld) -> None:
    plant, headers = world.plant, await as_maria(world)
    page = await world.client.get(f"/plant/tasks/{plant.cut}")
    form = task_form(name="Cut", required_skill="milling", required_capability="milling")
    answer = await world.client.post(
        f"/plant/tasks/{plant.cut}",
        data=form | {"pred": [str(plant.weld)], "version": version_in(page.text)},
        headers=headers,
    )
    assert answer.status_code == 422
    assert 'id="task-predecessors-error"' in answer.text and "cycle" in answer.text
    cut = await tasks.get_task(services=world.services, actor=SYSTEM, task_id=plant.cut)
    assert (cut["name"], cut["predecessors"], cut["duration_minutes"]) == ("Cut", [], 60)


async def test_a_stale_task_edit_names_who_changed_it(world: BoardWorld) -> None:
    plant, headers = world.plant, await as_maria(world)
    seen = version_in((await world.client.get(f"/plant/tasks/{plant.drill}")).text)
    async with world.another_browser() as other:
        csrf = await log_in(other, "admin")
        first = await other.post(
            f"/plant/tasks/{plant.drill}",
            data=task_form(name="Drill deep", version=seen),
            headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
        )
        assert first.status_code == 200, first.text
    stale = await world.client.post(
        f"/plant/tasks/{plant.drill}", data=task_form(name="Drill", version=seen), headers=headers
    )
    assert stale.status_code == 412
    assert "Administrator changed this task while you were editing it" in stale.text
    assert 'value="Drill deep"' in stale.text


def operator_form(**fields: str) -> dict[str, str]:
    form = {"name": "Olga Petrova", "skill-0-name": "milling", "skill-0-level": "4"}
    form |= {"skill-1-name": "turning", "skill-1-level": "2"}
    for day in range(7):
        form |= {f"shift-{day}-weekday": str(day), f"shift-{day}-start": "", f"shift-{day}-end": ""}
    for day in range(5):
        form |= {f"shift-{day}-start": "06:00", f"shift-{day}-end": "14:00"}
    return form | fields


async def test_an_operator_gets_skills_shifts_and_time_off(world: BoardWorld) -> None:
    plant, headers = world.plant, await as_maria(world)
    page = await world.client.get(f"/plant/operators/{plant.olga}")
    away = plant.at(0, days=10)
    form = operator_form(
        version=version_in(page.text),
        **{
            "off-0-kind": "time_off",
            "off-0-start": away.strftime("%Y-%m-%dT%H:%M"),
            "off-0-end": (away + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
            "off-0-reason": "dentist",
            "phone": "+49 170 555 0101",
        },
    )
    answer = await world.client.post(f"/plant/operators/{plant.olga}", data=form, headers=headers)
    assert answer.status_code == 200, answer.text
    olga = await resources.get_operator(
        services=world.services, actor=SYSTEM, operator_id=plant.olga
    )
    assert sorted((s["skill"], s["level"]) for s in olga["skills"]) == [
        ("milling", 4),
        ("turning", 2),
    ]
    assert sorted(s["weekday"] for s in olga["shifts"]) == [0, 1, 2, 3, 4]
    assert {(s["start"], s["end"]) for s in olga["shifts"]} == {(time(6), time(14))}
    assert [(e["kind"], e["start"], e["reason"]) for e in olga["exceptions"]] == [
        ("time_off", away, "dentist")
    ]
    assert olga["contact"] == {"phone": "+49 170 555 0101", "email": None}
    assert (
        'value="+49 170 555 0101"'
        in (await world.client.get(f"/plant/operators/{plant.olga}")).text
    )


async def test_an_invalid_operator_form_writes_nothing(world: BoardWorld) -> None:
    plant, headers = world.plant, await as_maria(world)
    page = await world.client.get(f"/plant/operators/{plant.olga}")
    form = operator_form(
        version=version_in(page.text),
        email="olga at home",
        **{"skill-0-level": "9", "shift-1-end": "25:00", "off-0-start": "2026-13-01T08:00"},
    )
    answer = await world.client.post(f"/plant/operators/{plant.olga}", data=form, headers=headers)
    assert answer.status_code == 422
    for field in ("skill-0-level", "shift-1-end", "off-0-start", "email"):
        assert f'id="op-{field}-error"' in answer.text
    olga = await resources.get_operator(
        services=world.services, actor=SYSTEM, operator_id=plant.olga
    )
    assert [(s["skill"], s["level"]) for s in olga["skills"]] == [("milling", 3)]
    assert len(olga["shifts"]) == 7


async def test_a_machine_gets_a_downtime_window(world: BoardWorld) -> None:
    plant, headers = world.plant, await as_maria(world)
    page = await world.client.get(f"/plant/equipment/{plant.mill2}")
    start = plant.at(6, days=3)
    form = {
        "version": version_in(page.text),
        "name": "Mill 2",
        "type": "cnc_mill",
        "capabilities": "milling, drilling",
        "status": "available",
        "down-0-start": start.strftime("%Y-%m-%dT%H:%M"),
        "down-0-end": (start + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
        "down-0-reason": "spindle service",
    }
    answer = await world.client.post(f"/plant/equipment/{plant.mill2}", data=form, headers=headers)
    assert answer.status_code == 200, answer.text
    mill2 = await resources.get_equipment(
        services=world.services, actor=SYSTEM, equipment_id=plant.mill2
    )
    assert mill2["capabilities"] == ["drilling", "milling"]
    assert [(w["start"], w["end"], w["reason"]) for w in mill2["downtime"]] == [
        (start, start + timedelta(hours=4), "spindle service")
    ]


async def test_a_machine_name_taken_is_shown_at_the_name(world: BoardWorld) -> None:
    headers = await as_maria(world)
    answer = await world.client.post(
        "/plant/equipment", data={"name": "Mill 1", "type": "cnc_mill"}, headers=headers
    )
    assert answer.status_code == 422
    assert 'id="new-machine-name-error"' in answer.text and "is taken" in answer.text


async def test_deleting_a_machine_or_operator_with_planned_tasks_says_what_depends(
    world: BoardWorld,
) -> None:
    plant, headers = world.plant, await as_maria(world)
    page = await world.client.get(f"/plant/equipment/{plant.mill}")
    refused = await world.client.post(
        f"/plant/equipment/{plant.mill}/delete",
        data={"version": version_in(page.text)},
        headers=headers,
    )
    assert refused.status_code == 409
    assert "1 task of job Bracket 4711 is planned on Mill 1; move them first" in refused.text
    page = await world.client.get(f"/plant/operators/{plant.omar}")
    refused = await world.client.post(
        f"/plant/operators/{plant.omar}/delete",
        data={"version": version_in(page.text)},
        headers=headers,
    )
    assert refused.status_code == 409
    assert "1 task of job Bracket 4711 is planned for this operator" in refused.text
    assert (
        await resources.get_equipment(
            services=world.services, actor=SYSTEM, equipment_id=plant.mill
        )
    )["name"] == "Mill 1"
    # Mill 2 has nothing planned: it goes, and the page leads back to the list.
    page = await world.client.get(f"/plant/equipment/{plant.mill2}")
    gone = await world.client.post(
        f"/plant/equipment/{plant.mill2}/delete",
        data={"version": version_in(page.text)},
        headers=headers,
    )
    assert gone.status_code == 200 and gone.headers["HX-Redirect"] == "/plant/equipment"


async def test_two_managers_saving_at_once_one_wins_the_other_is_told_by_whom(
    world: BoardWorld,
) -> None:
    plant = world.plant
    headers = await as_maria(world)
    seen = version_in((await world.client.get(f"/plant/equipment/{plant.welder}")).text)
    form = {"version": seen, "type": "welding_cell", "status": "available"}
    async with world.another_browser() as other:
        csrf = await log_in(other, "admin")
        answers = await asyncio.gather(
            world.client.post(
                f"/plant/equipment/{plant.welder}",
                data=form | {"name": "Weld cell A", "capabilities": "welding"},
                headers=headers,
            ),
            other.post(
                f"/plant/equipment/{plant.welder}",
                data=form | {"name": "Weld cell B", "capabilities": "welding, brazing"},
                headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
            ),
        )
    assert sorted(a.status_code for a in answers) == [200, 412]
    won, lost = ("A", answers[1]) if answers[0].status_code == 200 else ("B", answers[0])
    winner = "Administrator" if won == "B" else "Maria Schneider"
    assert f"{winner} changed this machine while you were editing it" in lost.text
    welder = await resources.get_equipment(
        services=world.services, actor=SYSTEM, equipment_id=plant.welder
    )
    assert welder["name"] == f"Weld cell {won}" and welder["version"] == int(seen) + 1
