"""Flexible job-shop (FJSP) instances in the standard Brandimarte format.

    n_jobs n_machines [average machines per operation]
    k  c m t m t ...  c m t ...     one line per job: k operations in order, each
                                    with c alternative (machine, time) pairs

Machines are numbered from 0. `to_plant_data` turns an instance into a plant
where each operation is a task whose alternative routings are exactly its
machines: the task requires a capability that only those machines have (one
tag per distinct set of machines), takes its time on each of them, and its
own duration is the shortest of them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from app.domain.plants.jssp import (
    JSSP_SKILL,
    Shop,
    counted_jobs,
    plant_job,
    round_the_clock_operators,
    whole_number,
)
from app.domain.plants.plant_data import PlantData, PlantEquipment, PlantJob, PlantTask

# (machine, time) pairs an operation may run on, in file order.
Operation = tuple[tuple[int, int], ...]


FlexibleJobShop = Shop[Operation]


def read_fjsp(path: Path) -> FlexibleJobShop:
    """Parse a file; the instance is named after the file."""
    return parse_fjsp(path.read_text(encoding="utf-8"), name=path.name)


def parse_fjsp(text: str, *, name: str) -> FlexibleJobShop:
    """Parse the standard format; `ValueError` names the line that is wrong."""
    lines = [(n, line.split()) for n, line in enumerate(text.splitlines(), 1)]
    lines = [(n, fields) for n, fields in lines if fields and not fields[0].startswith("#")]
    n_machines, job_lines = counted_jobs(
        lines, name=name, header="n_jobs n_machines [average]", sizes=(2, 3)
    )
    jobs = tuple(_job(fields, n_machines, name, number) for number, fields in job_lines)
    return FlexibleJobShop(name=name, machines=n_machines, jobs=jobs)


def _job(fields: list[str], n_machines: int, name: str, line: int) -> tuple[Operation, ...]:
    numbers = [whole_number(field, name, line) for field in fields]
    count, at = numbers[0], 1
    operations: list[Operation] = []
    for step in range(count):
        if at >= len(numbers):
            raise ValueError(f"{name}, line {line}: operation {step} is missing")
        choices = numbers[at]
        pairs = numbers[at + 1 : at + 1 + 2 * choices]
        if choices <= 0 or len(pairs) != 2 * choices:
            raise ValueError(
                f"{name}, line {line}: operation {step} promises {choices} machines "
                f"and has {len(pairs) // 2}"
            )
        operation = tuple(zip(pairs[::2], pairs[1::2], strict=True))
        for machine, time in operation:
            if not 0 <= machine < n_machines:
                raise ValueError(
                    f"{name}, line {line}: machine {machine} is out of range 0..{n_machines - 1}"
                )
            if time <= 0:
                raise ValueError(
                    f"{name}, line {line}: operation {step} takes {time} on M{machine}"
                )
        if len({machine for machine, _ in operation}) != len(operation):
            raise ValueError(f"{name}, line {line}: operation {step} names a machine twice")
        operations.append(operation)
        at += 1 + 2 * choices
    if count <= 0 or at != len(numbers):
        raise ValueError(
            f"{name}, line {line}: expected {count} operations, the line holds "
            f"{'more' if at < len(numbers) else 'fewer'} numbers"
        )
    return tuple(operations)


def to_plant_data(
    instance: FlexibleJobShop, *, start: datetime, time_unit_minutes: int = 1
) -> PlantData:
    """One machine and one round-the-clock operator per FJSP machine; no assignments.

    Every job is released at `start`; its operations run in file order,
    finish-to-start.
    """
    if time_unit_minutes <= 0:
        raise ValueError("time_unit_minutes must be positive")
    routes = {_route(operation) for job in instance.jobs for operation in job}
    equipment = tuple(
        PlantEquipment(
            key=f"M{m}",
            name=f"M{m}",
            type="FJSP machine",
            capabilities=tuple(sorted(tag for tag in routes if m in _machines_of(tag))),
        )
        for m in range(instance.machines)
    )
    operators = round_the_clock_operators(instance.machines)
    jobs = tuple(
        _plant_job(instance.name, index, operations, start, time_unit_minutes)
        for index, operations in enumerate(instance.jobs)
    )
    return PlantData(name=instance.name, equipment=equipment, operators=operators, jobs=jobs)


def _plant_job(
    instance: str, index: int, operations: tuple[Operation, ...], start: datetime, unit: int
) -> PlantJob:
    tasks: list[PlantTask] = []
    for step, operation in enumerate(operations):
        tasks.append(
            PlantTask(
                key=f"J{index}/{step}",
                name=f"J{index} op {step}",
                duration_minutes=min(time for _, time in operation) * unit,
                required_skill=JSSP_SKILL,
                required_capability=_route(operation),
                predecessors=(tasks[-1].key,) if tasks else (),
                alternatives=tuple((f"M{machine}", time * unit) for machine, time in operation),
            )
        )
    return plant_job(instance, index, tasks, start)


def _route(operation: Operation) -> str:
    """The capability only the operation's machines have, e.g. "route-M0+M2"."""
    return "route-" + "+".join(f"M{m}" for m in sorted(machine for machine, _ in operation))


def _machines_of(route: str) -> set[int]:
    return {int(part[1:]) for part in route.removeprefix("route-").split("+")}
