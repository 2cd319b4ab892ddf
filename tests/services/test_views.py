"""Each view builds exactly the keys its TypedDict and the API's model declare, in order.

The views are plain dicts at run time, so nothing but these checks notices a key
the builder adds that the type does not name, or one the type names and the
builder forgets. No database: the rows are made in memory.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from app import clock
from app.api.schemas import EquipmentOut, JobOut, OperatorOut, TaskOut
from app.db import tables as t
from app.services.views import (
    TASK_COLUMNS,
    AlternativeView,
    EquipmentView,
    JobView,
    OperatorView,
    TaskView,
    equipment_view,
    job_view,
    operator_view,
    task_view,
    task_view_of_row,
)


def a_task() -> t.Task:
    return t.Task(
        id=7,
        job_id=1,
        name="Cut",
        sequence=1,
        duration_minutes=60,
        required_skill="milling",
        min_level=2,
        required_capability=None,
        instructions="",
        status="scheduled",
        actual_start=None,
        actual_end=None,
        version=3,
    )


def test_an_equipment_view_has_the_keys_of_its_type() -> None:
    now = clock.now()
    machine = t.Equipment(
        id=1,
        name="Mill 1",
        type="mill",
        capabilities=["milling"],
        status="available",
        expected_back=None,
        version=1,
        downtime=[t.EquipmentDowntime(start=now, end=now + timedelta(hours=1), reason="")],
    )
    view = equipment_view(machine)
    assert set(view) == EquipmentView.__required_keys__
    assert list(view) == list(EquipmentOut.model_fields)


def test_an_operator_view_has_the_keys_of_its_type() -> None:
    now = clock.now()
    olga = t.Operator(
        id=2,
        name="Olga",
        version=1,
        skills=[t.OperatorSkill(skill="milling", level=3)],
        shifts=[t.WeeklyShift(weekday=now.weekday(), start=now.time(), end=now.time())],
        exceptions=[],
    )
    view = operator_view(olga, None)
    assert set(view) == OperatorView.__required_keys__
    assert list(view) == list(OperatorOut.model_fields)


def test_a_job_view_has_the_keys_of_its_type() -> None:
    job = t.Job(id=1, name="Order", customer="", reference="", priority=0, status="open", version=1)
    view = job_view(job)
    assert set(view) == JobView.__required_keys__
    assert list(view) == list(JobOut.model_fields)


def test_a_task_view_is_the_same_from_an_orm_row_and_a_core_row() -> None:
    task, start = a_task(), clock.now()
    slot = t.Assignment(operator_id=2, equipment_id=1, start=start, end=start + timedelta(hours=1))
    alternatives: list[AlternativeView] = [{"equipment_id": 1, "duration_minutes": 50}]
    from_orm = task_view(task, [5, 3], slot, alternatives)
    core_row = SimpleNamespace(
        **{name: getattr(task, name) for name in TASK_COLUMNS},
        operator_id=2,
        equipment_id=1,
        start=start,
        end=start + timedelta(hours=1),
    )
    from_core = task_view_of_row(core_row, [5, 3], alternatives)
    assert from_orm == from_core
    assert list(from_orm) == list(from_core)
    assert set(from_orm) == TaskView.__required_keys__ == set(TaskOut.model_fields)
    # The columns first, in the order the Core select reads them; then the links.
    assert list(from_orm) == [*TASK_COLUMNS, "predecessors", "alternatives", "assignment"]
    assert from_orm["predecessors"] == [3, 5]
