"""Flexible job-shop instances: the Brandimarte files parsed into plants with routings."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.domain.conflicts import Severity
from app.domain.optimizer import OptimizerSettings, Progress, SolveStatus, optimize
from app.domain.plants.fjsp import FlexibleJobShop, parse_fjsp, read_fjsp, to_plant_data
from app.domain.plants.plant_data import as_plan, check_references

START = datetime(2026, 3, 2, 6, tzinfo=UTC)


# instances.json says 15 machines for mk06; its file's header says 10, and no
# operation names a machine past M9. The file is what gets imported.
FILE_SAYS = {"mk06": 10}


def test_every_brandimarte_instance_parses_to_its_published_size(fjsp_dir: Path) -> None:
    published = json.loads((fjsp_dir / "instances.json").read_text())
    assert len(published) == 15
    for entry in published:
        instance = read_fjsp(fjsp_dir / entry["file"])
        assert instance.name == entry["name"]
        machines = FILE_SAYS.get(entry["name"], entry["machines"])
        assert (len(instance.jobs), instance.machines) == (entry["jobs"], machines)
        for job in instance.jobs:
            for operation in job:
                assert operation and all(0 <= m < instance.machines for m, _ in operation)


def test_mk01_starts_with_its_first_job_as_written(fjsp_dir: Path) -> None:
    instance = read_fjsp(fjsp_dir / "instances" / "mk01")
    # "6 2 0 5 2 4 3 4 3 2 5 1 1 ...": six operations, the first on M0 (5) or M2 (4).
    assert len(instance.jobs[0]) == 6
    assert instance.jobs[0][0] == ((0, 5), (2, 4))
    assert instance.jobs[0][1] == ((4, 3), (2, 5), (1, 1))
    assert instance.operations == 55


def test_a_plant_gives_each_operation_its_machines_and_their_durations(
    fjsp_dir: Path,
) -> None:
    instance = read_fjsp(fjsp_dir / "instances" / "mk01")
    plant = to_plant_data(instance, start=START, time_unit_minutes=5)
    check_references(plant)
    first = plant.jobs[0].tasks[0]
    assert first.alternatives == (("M0", 25), ("M2", 20))
    assert first.duration_minutes == 20  # the fastest routing
    machines = {e.key: e for e in plant.equipment}
    capable = {key for key, e in machines.items() if first.required_capability in e.capabilities}
    assert capable == {"M0", "M2"}
    second = plant.jobs[0].tasks[1]
    assert second.predecessors == (first.key,)
    plan = as_plan(plant)
    task = plan.tasks[1]
    assert {a.duration_minutes for a in task.alternatives} == {25, 20}
    m0 = next(e.id for e in plan.equipment.values() if e.name == "M0")
    assert task.duration_on(m0) == 25


def test_small_instances_reach_their_optimum_with_each_task_on_a_machine_of_its_own(
    fjsp_dir: Path,
) -> None:
    instance = read_fjsp(fjsp_dir / "instances" / "mk01")
    plan = as_plan(to_plant_data(instance, start=START))
    result = optimize(plan, now=START, settings=OptimizerSettings(time_limit_s=20, workers=2))
    assert result.offered and result.conflicts == ()
    assert result.makespan_minutes == 40  # the proven optimum
    for task_id, slot in result.assignments.items():
        task = plan.tasks[task_id]
        assert slot.end - slot.start == timedelta(minutes=task.duration_on(slot.equipment_id))
        assert plan.equipment[slot.equipment_id].name in {
            plan.equipment[a.equipment_id].name for a in task.alternatives
        }


def test_the_header_may_carry_the_average_machines_per_operation() -> None:
    text = "2 2 1.5\n1 2 0 3 1 4\n2 1 1 2 1 0 5\n"
    assert parse_fjsp(text, name="tiny") == FlexibleJobShop(
        "tiny", 2, ((((0, 3), (1, 4)),), (((1, 2),), ((0, 5),)))
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no header"),
        ("2\n", "line 1: expected 'n_jobs n_machines [average]'"),
        ("1 two\n1 1 0 3\n", "line 1: 'two' is not a whole number"),
        ("2 2\n1 1 0 3\n", "the header promises 2 job lines, the file has 1"),
        ("1 2\n1 1 2 3\n", "line 2: machine 2 is out of range 0..1"),
        ("1 2\n1 1 0 0\n", "line 2: operation 0 takes 0 on M0"),
        ("1 2\n1 2 0 3 0 4\n", "line 2: operation 0 names a machine twice"),
        ("1 2\n2 1 0 3\n", "line 2: operation 1 is missing"),
        ("1 2\n1 2 0 3\n", "line 2: operation 0 promises 2 machines and has 1"),
        ("1 2\n1 1 0 3 7\n", "line 2: expected 1 operations, the line holds more numbers"),
    ],
)
def test_a_bad_file_names_the_line_that_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_fjsp(text, name="bad")


def test_a_long_run_reports_progress_and_stops_when_asked(fjsp_dir: Path) -> None:
    # mk10 is far from proved optimal in any short time.
    plan = as_plan(to_plant_data(read_fjsp(fjsp_dir / "instances" / "mk10"), start=START))
    seen: list[Progress] = []

    def should_stop() -> bool:
        return len(seen) >= 2

    result = optimize(
        plan,
        now=START,
        settings=OptimizerSettings(time_limit_s=60, workers=1),
        on_progress=seen.append,
        should_stop=should_stop,
    )

    assert result.offered and result.status is SolveStatus.FEASIBLE
    assert [c for c in result.conflicts if c.severity is Severity.ERROR] == []
    spans = [p.makespan_minutes for p in seen]
    assert spans == sorted(spans, reverse=True)
    assert result.makespan_minutes <= spans[-1]
    assert result.solve_seconds < 30  # stopped, not run to its minute
