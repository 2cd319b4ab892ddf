"""Classic job-shop (JSSP) instances in the standard OR-Library format.

    # comment lines start with '#'
    n_jobs n_machines
    m d m d ...        one line per job: (machine, duration) pairs in order

Machines are numbered from 0; whitespace is irregular. `to_plant_data` turns
an instance into a plant where only the machines constrain the plan, so the
optimizer's makespan can be compared with the published optimum.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

from app.domain.plan import WeeklyShift
from app.domain.plants.plant_data import (
    PlantData,
    PlantEquipment,
    PlantJob,
    PlantOperator,
    PlantTask,
)

JSSP_SKILL = "jssp"
# A shift whose end is not after its start runs into the next day: 00:00-00:00 is 24 h.
ALL_DAY = tuple(WeeklyShift(weekday=day, start=time(0), end=time(0)) for day in range(7))


class Operation(NamedTuple):
    machine: int
    duration: int


Op = TypeVar("Op")


@dataclass(frozen=True)  # no slots: a slotted generic dataclass breaks on Shop[Op](...)
class Shop(Generic[Op]):
    """An instance as read: each job's operations in order, on `machines` machines (an
    operation is a JSSP `Operation` here, the FJSP's alternatives in fjsp.py)."""

    name: str
    machines: int
    jobs: tuple[tuple[Op, ...], ...]

    @property
    def operations(self) -> int:
        return sum(len(job) for job in self.jobs)


JobShopInstance = Shop[Operation]


def read_jssp(path: Path) -> JobShopInstance:
    """Parse a file; the instance is named after the file."""
    return parse_jssp(path.read_text(encoding="utf-8"), name=path.name)


def parse_jssp(text: str, *, name: str) -> JobShopInstance:
    """Parse the standard format; `ValueError` names the line that is wrong."""
    lines = [
        (number, line.split("#", 1)[0].split())
        for number, line in enumerate(text.splitlines(), 1)
        if not line.lstrip().startswith("#")
    ]
    lines = [(number, fields) for number, fields in lines if fields]
    n_machines, job_lines = counted_jobs(lines, name=name, header="n_jobs n_machines", sizes=(2,))
    jobs = tuple(_job(fields, n_machines, name, number) for number, fields in job_lines)
    return JobShopInstance(name=name, machines=n_machines, jobs=jobs)


def _job(fields: list[str], n_machines: int, name: str, line: int) -> tuple[Operation, ...]:
    if len(fields) != 2 * n_machines:
        raise ValueError(
            f"{name}, line {line}: expected {2 * n_machines} numbers "
            f"({n_machines} machine/duration pairs), got {len(fields)}"
        )
    numbers = [whole_number(field, name, line) for field in fields]
    operations = tuple(Operation(m, d) for m, d in zip(numbers[::2], numbers[1::2], strict=True))
    for operation in operations:
        if not 0 <= operation.machine < n_machines:
            raise ValueError(
                f"{name}, line {line}: machine {operation.machine} is out of range "
                f"0..{n_machines - 1}"
            )
        if operation.duration < 0:
            raise ValueError(f"{name}, line {line}: negative duration {operation.duration}")
    return operations


def counted_jobs(
    lines: list[tuple[int, list[str]]], *, name: str, header: str, sizes: Collection[int]
) -> tuple[int, list[tuple[int, list[str]]]]:
    """The machine count and the job lines of a job-shop file's (number, fields) lines,
    held to the header's counts; JSSP and FJSP files begin alike.

    `header` is the header line as the format spells it, `sizes` how many fields it may have.
    """
    if not lines:
        raise ValueError(f"{name}: no header line 'n_jobs n_machines' found")
    header_line, fields = lines[0]
    if len(fields) not in sizes:
        raise ValueError(
            f"{name}, line {header_line}: expected '{header}', got {len(fields)} fields"
        )
    n_jobs, n_machines = (positive_count(field, name, header_line) for field in fields[:2])
    job_lines = lines[1:]
    if len(job_lines) != n_jobs:
        where = job_lines[n_jobs][0] if len(job_lines) > n_jobs else header_line
        raise ValueError(
            f"{name}, line {where}: the header promises {n_jobs} job lines, "
            f"the file has {len(job_lines)}"
        )
    return n_machines, job_lines


def whole_number(field: str, name: str, line: int) -> int:
    try:
        return int(field)
    except ValueError:
        raise ValueError(f"{name}, line {line}: {field!r} is not a whole number") from None


def positive_count(field: str, name: str, line: int) -> int:
    value = whole_number(field, name, line)
    if value <= 0:
        raise ValueError(f"{name}, line {line}: expected a positive count, got {value}")
    return value


def to_plant_data(
    instance: JobShopInstance, *, start: datetime, time_unit_minutes: int = 1
) -> PlantData:
    """One machine and one round-the-clock operator per JSSP machine; no assignments.

    Every job is released at `start`; its operations run in file order,
    finish-to-start. Zero-length operations constrain nothing and are left out
    (a task must take time).
    """
    if time_unit_minutes <= 0:
        raise ValueError("time_unit_minutes must be positive")
    machines = range(instance.machines)
    equipment = tuple(
        PlantEquipment(
            key=f"M{m}", name=f"M{m}", type="JSSP machine", capabilities=(_capability(m),)
        )
        for m in machines
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
    for step, (machine, duration) in enumerate(operations):
        if duration == 0:
            continue
        tasks.append(
            PlantTask(
                key=f"J{index}/{step}",
                name=f"J{index} op {step} on M{machine}",
                duration_minutes=duration * unit,
                required_skill=JSSP_SKILL,
                required_capability=_capability(machine),
                predecessors=(tasks[-1].key,) if tasks else (),
            )
        )
    return plant_job(instance, index, tasks, start)


def round_the_clock_operators(machines: int) -> tuple[PlantOperator, ...]:
    """One operator per machine, at work all week: only the machines constrain the plan."""
    return tuple(
        PlantOperator(
            key=f"operator-M{m}",
            name=f"Operator M{m}",
            skills={JSSP_SKILL: 1},
            weekly_shifts=ALL_DAY,
        )
        for m in range(machines)
    )


def plant_job(instance: str, index: int, tasks: Sequence[PlantTask], start: datetime) -> PlantJob:
    """The instance's job `index`, released at `start`."""
    return PlantJob(
        key=f"J{index}",
        name=f"{instance} J{index}",
        tasks=tuple(tasks),
        reference=f"{instance}/J{index}",
        release=start,
    )


def _capability(machine: int) -> str:
    return f"machine-{machine}"
