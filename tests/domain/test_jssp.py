from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.domain.calendar import availability
from app.domain.plan import Interval
from app.domain.plants.jssp import JobShopInstance, Operation, parse_jssp, read_jssp, to_plant_data
from app.domain.plants.plant_data import as_operator, check_references

START = datetime(2026, 3, 2, 6, tzinfo=UTC)


def test_every_shared_instance_parses_to_its_published_size(jssp_dir: Path) -> None:
    with (jssp_dir / "instances.csv").open(newline="") as table:
        published = list(csv.DictReader(table))
    expected = {row["name"]: (int(row["jobs"]), int(row["machines"])) for row in published}
    files = sorted((jssp_dir / "instances").iterdir())
    assert len(files) >= 50
    for path in files:
        instance = read_jssp(path)
        assert (len(instance.jobs), instance.machines) == expected[path.name], path.name
        for job in instance.jobs:
            assert sorted(operation.machine for operation in job) == list(range(instance.machines))


def test_ft06_is_six_jobs_on_six_machines(jssp_dir: Path) -> None:
    instance = read_jssp(jssp_dir / "instances" / "ft06")
    assert instance.name == "ft06"
    assert (len(instance.jobs), instance.machines, instance.operations) == (6, 6, 36)
    assert instance.jobs[0][:2] == (Operation(2, 1), Operation(0, 3))


def test_comments_and_irregular_whitespace_are_fine() -> None:
    text = "# a comment\n\n  2\t 2  \n0 1    1 2 # trailing note\n\n1  3 0\t4\n"
    instance = parse_jssp(text, name="tiny")
    assert instance == JobShopInstance(
        "tiny", 2, ((Operation(0, 1), Operation(1, 2)), (Operation(1, 3), Operation(0, 4)))
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no header"),
        ("# only a comment\n", "no header"),
        ("2\n0 1\n", "line 1: expected 'n_jobs n_machines'"),
        ("# c\n2 two\n", "line 2: 'two' is not a whole number"),
        ("0 2\n", "line 1: expected a positive count"),
        ("2 2\n0 1 1 2\n", "line 1: the header promises 2 job lines, the file has 1"),
        ("1 2\n0 1 1 2\n1 1 0 1\n", "line 3: the header promises 1 job lines, the file has 2"),
        ("2 2\n0 1 1 2\n0 1 1\n", "line 3: expected 4 numbers"),
        ("# c\n1 2\n0 1 2 2\n", "line 3: machine 2 is out of range 0..1"),
        ("1 2\n0 1 1 -2\n", "line 2: negative duration -2"),
        ("1 2\n0 1 1 2.5\n", "line 2: '2.5' is not a whole number"),
    ],
)
def test_malformed_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        parse_jssp(text, name="broken")
    assert str(raised.value).startswith("broken")


def test_plant_has_one_machine_and_one_operator_per_jssp_machine(ft06_text: str) -> None:
    plant = to_plant_data(parse_jssp(ft06_text, name="ft06"), start=START)
    check_references(plant)
    assert [unit.name for unit in plant.equipment] == [f"M{m}" for m in range(6)]
    assert plant.equipment[2].capabilities == ("machine-2",)
    assert len(plant.operators) == 6
    assert all(operator.skills == {"jssp": 1} for operator in plant.operators)
    assert plant.counts() == {
        "equipment": 6, "operators": 6, "jobs": 6, "tasks": 36, "assignments": 0, "users": 0,
    }  # fmt: skip


def test_jobs_are_chains_in_file_order_released_at_start(ft06_text: str) -> None:
    plant = to_plant_data(parse_jssp(ft06_text, name="ft06"), start=START, time_unit_minutes=5)
    job = plant.jobs[0]
    assert job.release == START
    assert [task.required_capability for task in job.tasks] == [
        "machine-2", "machine-0", "machine-1", "machine-3", "machine-5", "machine-4",
    ]  # fmt: skip
    assert [task.duration_minutes for task in job.tasks] == [5, 15, 30, 35, 15, 30]
    assert job.tasks[0].predecessors == ()
    assert all(
        after.predecessors == (before.key,)
        for before, after in zip(job.tasks, job.tasks[1:], strict=False)
    )


def test_operators_are_available_round_the_clock(ft06_text: str) -> None:
    plant = to_plant_data(parse_jssp(ft06_text, name="ft06"), start=START)
    week = Interval(START, START + timedelta(days=9))
    for zone in ("UTC", "Europe/Berlin"):
        assert availability(as_operator(plant.operators[0]), zone, week) == [week]


def test_zero_length_operations_are_left_out_of_the_chain() -> None:
    instance = parse_jssp("1 3\n0 4 1 0 2 5\n", name="gap")
    tasks = to_plant_data(instance, start=START).jobs[0].tasks
    assert [task.required_capability for task in tasks] == ["machine-0", "machine-2"]
    assert tasks[1].predecessors == (tasks[0].key,)


def test_time_unit_must_be_positive(ft06_text: str) -> None:
    with pytest.raises(ValueError, match="time_unit_minutes"):
        to_plant_data(parse_jssp(ft06_text, name="ft06"), start=START, time_unit_minutes=0)
