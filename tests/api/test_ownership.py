"""Who may act is checked before anything about the entity is told (SPEC §5 ownership).

The policy, everywhere:
- a role that may never do an action (an operator placing a task, a manager
  starting one) gets 403 for every id, existing or not, stale `If-Match` or not;
- an operator asking about a task that is not theirs gets exactly what a
  missing task gets: 404 with the same body, never 412 with a version and who
  changed it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from app import clock

MISSING = 987654


def slot(hours: int = 1) -> dict[str, str]:
    start = clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)
    return {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}


async def place(api: httpx.AsyncClient, login: Any, task: int, operator: int, machine: int) -> None:
    current = await api.get(f"/api/v1/tasks/{task}", headers=await login("anna"))
    response = await api.put(
        f"/api/v1/tasks/{task}/assignment",
        headers={**await login("anna"), "If-Match": current.headers["etag"]},
        json={"operator_id": operator, "equipment_id": machine, **slot()},
    )
    assert response.status_code == 200, response.text


def same_refusal(theirs: httpx.Response, missing: httpx.Response, their_id: int) -> None:
    """Nothing tells the two apart but the id the client sent itself."""
    assert theirs.status_code == missing.status_code
    assert theirs.text.replace(str(their_id), "ID") == missing.text.replace(str(MISSING), "ID")


@pytest.mark.parametrize("action", ["start", "pause", "complete"])
@pytest.mark.parametrize("if_match", [None, '"1"', '"2"', '"99"'])
async def test_another_operators_task_answers_as_a_missing_one(
    api: httpx.AsyncClient, plant: Any, login: Any, action: str, if_match: str | None
) -> None:
    await place(api, login, plant.cut, plant.olga, plant.mill)
    omar = await login("omar")
    headers = omar if if_match is None else {**omar, "If-Match": if_match}
    theirs = await api.post(f"/api/v1/tasks/{plant.cut}/{action}", headers=headers)
    missing = await api.post(f"/api/v1/tasks/{MISSING}/{action}", headers=headers)
    assert theirs.status_code == 404, theirs.text
    assert "current_version" not in theirs.text and "changed_by" not in theirs.text
    same_refusal(theirs, missing, plant.cut)
    # Olga's task is untouched.
    task = (await api.get(f"/api/v1/tasks/{plant.cut}", headers=await login("olga"))).json()
    assert task["status"] == "scheduled"


async def test_an_unscheduled_task_is_nobodys_and_answers_as_missing(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    omar = await login("omar")
    unscheduled = await api.post(
        f"/api/v1/tasks/{plant.cut}/start", headers={**omar, "If-Match": '"7"'}
    )
    missing = await api.post(f"/api/v1/tasks/{MISSING}/start", headers={**omar, "If-Match": '"7"'})
    same_refusal(unscheduled, missing, plant.cut)


async def test_the_owner_with_a_stale_version_still_learns_it_is_stale(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    await place(api, login, plant.cut, plant.olga, plant.mill)
    olga = await login("olga")
    stale = await api.post(f"/api/v1/tasks/{plant.cut}/start", headers={**olga, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["error"]["details"]["current_version"] == 2
    current = await api.get(f"/api/v1/tasks/{plant.cut}", headers=olga)
    fresh = await api.post(
        f"/api/v1/tasks/{plant.cut}/start", headers={**olga, "If-Match": current.headers["etag"]}
    )
    assert fresh.status_code == 200, fresh.text


async def test_a_scheduler_gets_404_for_missing_and_412_for_stale(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    await place(api, login, plant.cut, plant.olga, plant.mill)
    anna = await login("anna")
    stale = {**anna, "If-Match": '"1"'}
    assert (await api.post(f"/api/v1/tasks/{MISSING}/start", headers=stale)).status_code == 404
    assert (await api.post(f"/api/v1/tasks/{plant.cut}/start", headers=stale)).status_code == 412
    unplaced = await api.post(f"/api/v1/tasks/{plant.weld}/start", headers=anna)
    assert unplaced.status_code == 409


async def test_a_manager_may_not_run_tasks_whatever_the_id(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    await place(api, login, plant.cut, plant.olga, plant.mill)
    maria = {**await login("maria"), "If-Match": '"1"'}
    for task in (plant.cut, plant.weld, MISSING):
        response = await api.post(f"/api/v1/tasks/{task}/start", headers=maria)
        assert response.status_code == 403, (task, response.text)
        assert response.json()["error"]["code"] == "forbidden"


# Every route that takes If-Match, as (method, path template, body) for an operator.
IF_MATCH_ROUTES = [
    ("PUT", "/api/v1/tasks/{task}/assignment", "placement"),
    ("DELETE", "/api/v1/tasks/{task}/assignment", None),
    ("PATCH", "/api/v1/tasks/{task}", {"name": "x"}),
    ("DELETE", "/api/v1/tasks/{task}", None),
    ("PATCH", "/api/v1/jobs/{job}", {"name": "x"}),
    ("DELETE", "/api/v1/jobs/{job}", None),
    ("PATCH", "/api/v1/equipment/{machine}", {"name": "x"}),
    ("DELETE", "/api/v1/equipment/{machine}", None),
    ("PATCH", "/api/v1/operators/{operator}", {"name": "x"}),
    ("DELETE", "/api/v1/operators/{operator}", None),
]


@pytest.mark.parametrize(("method", "template", "body"), IF_MATCH_ROUTES)
async def test_an_operator_is_refused_by_role_before_any_lookup(
    api: httpx.AsyncClient, plant: Any, login: Any, method: str, template: str, body: Any
) -> None:
    await place(api, login, plant.cut, plant.olga, plant.mill)
    omar = await login("omar")
    if body == "placement":
        body = {"operator_id": plant.omar, "equipment_id": plant.welder, **slot()}
    ids = {"task": plant.cut, "job": plant.job, "machine": plant.mill, "operator": plant.olga}
    answers = []
    for if_match in ('"1"', '"2"', '"99"'):
        for path in (template.format(**ids), template.format(**dict.fromkeys(ids, MISSING))):
            response = await api.request(
                method, path, headers={**omar, "If-Match": if_match}, json=body
            )
            answers.append((response.status_code, response.json()["error"]["code"]))
    assert set(answers) == {(403, "forbidden")}, answers
