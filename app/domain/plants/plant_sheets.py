"""Plant data files <-> `PlantData`: every row checked, every problem listed.

`read_plant` turns the sheets of an import into a `PlantData` (keys are the
names the files use: equipment and operators by name, a job by its `job`
column, a task as `job/step`) and lists every row error it finds rather
than stopping at the first, so the preview shows them all at once.
`plant_rows` writes a `PlantData` back as rows of the same layout.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TypeVar
from zoneinfo import ZoneInfo

from app.domain.plan import EquipmentStatus
from app.domain.plants import cells
from app.domain.plants.layout import REQUIRED, Cell, Errors, Kind, Sheet, SheetRow
from app.domain.plants.plant_data import (
    CalendarException,
    CalendarExceptionKind,
    DowntimeWindow,
    PlantData,
    PlantEquipment,
    PlantJob,
    PlantOperator,
    PlantTask,
)

T = TypeVar("T")
STATUSES = tuple(str(status) for status in EquipmentStatus)


@dataclass(frozen=True, slots=True)
class Known:
    """What the plant has already, that imported rows may refer to."""

    skills: Collection[str] = ()
    capabilities: Collection[str] = ()


@dataclass
class _Reader:
    sheet: Sheet
    row: SheetRow
    errors: Errors
    failed: bool = field(default=False)

    def cell(self, column: str) -> Cell:
        return self.row.cells.get(column)

    def text(self, column: str) -> str:
        return cells.text(self.cell(column))

    def read(self, column: str, parse: Callable[[Cell], T], default: T) -> T:
        if not self.text(column):
            if column in REQUIRED[self.sheet.kind]:
                self.fail(column, f"{column} is required")
            return default
        try:
            return parse(self.cell(column))
        except ValueError as error:
            self.fail(column, str(error))
            return default

    def listed(self, column: str, parse: Callable[[Cell], T]) -> T:
        """A column of several values: empty reads as none."""
        return self.read(column, parse, parse(None))

    def fail(self, column: str, message: str) -> None:
        self.failed = True
        self.errors.add(self.sheet, self.row.number, column, message)


def read_plant(
    sheets: Iterable[Sheet], *, zone: ZoneInfo, known: Known = Known(), name: str = "import"
) -> tuple[PlantData, Errors]:
    """The plant the sheets describe, and every row error in them (none: import it)."""
    errors = Errors()
    by_kind: dict[Kind, list[Sheet]] = {"equipment": [], "operators": [], "jobs": []}
    for sheet in sheets:
        by_kind[sheet.kind].append(sheet)
    equipment = _unique(
        errors, [_equipment(s, r, errors, zone) for s, r in _rows(by_kind, "equipment")]
    )
    operators = _unique(
        errors, [_operator(s, r, errors, zone) for s, r in _rows(by_kind, "operators")]
    )
    skills = set(known.skills) | {skill for _, o in operators for skill in o.skills}
    capabilities = set(known.capabilities) | {c for _, e in equipment for c in e.capabilities}
    names = {unit.key for _, unit in equipment}
    jobs = _Jobs(errors, zone, Known(skills, capabilities), names)
    for sheet, row in _rows(by_kind, "jobs"):
        jobs.add(sheet, row)
    plant = PlantData(
        name=name,
        equipment=tuple(unit for _, unit in equipment),
        operators=tuple(operator for _, operator in operators),
        jobs=jobs.finished(),
    )
    return plant, errors


def _rows(by_kind: dict[Kind, list[Sheet]], kind: Kind) -> Iterable[tuple[Sheet, SheetRow]]:
    for sheet in by_kind[kind]:
        for row in sheet.rows:
            yield sheet, row


_Keyed = TypeVar("_Keyed", PlantEquipment, PlantOperator)


def _unique(
    errors: Errors, found: list[tuple[_Reader, _Keyed | None]]
) -> list[tuple[_Reader, _Keyed]]:
    """Rows that read well, each name once: a second row with a name is an error."""
    first: dict[str, int] = {}
    kept = []
    for reader, item in found:
        if item is None:
            continue
        if item.key in first:
            reader.fail("name", f"{item.key!r} is already on row {first[item.key]}")
            continue
        first[item.key] = reader.row.number
        kept.append((reader, item))
    return kept


def _equipment(
    sheet: Sheet, row: SheetRow, errors: Errors, zone: ZoneInfo
) -> tuple[_Reader, PlantEquipment | None]:
    r = _Reader(sheet, row, errors)
    name, kind = r.read("name", cells.text, ""), r.read("type", cells.text, "")
    status = r.read("status", _status, EquipmentStatus.AVAILABLE)
    downtime = r.listed("downtime", lambda v: cells.windows(v, zone))
    capabilities = tuple(dict.fromkeys(r.listed("capabilities", cells.items)))
    if r.failed:
        return r, None
    windows = tuple(DowntimeWindow(start, end, reason) for start, end, reason in downtime)
    return r, PlantEquipment(name, name, kind, capabilities, status, windows)


def _status(value: Cell) -> EquipmentStatus:
    raw = cells.text(value).lower()
    if raw not in STATUSES:
        raise ValueError(f"{raw!r} is not a status: {', '.join(STATUSES)}")
    return EquipmentStatus(raw)


_EXCEPTION_COLUMNS: tuple[tuple[CalendarExceptionKind, str], ...] = (
    ("time_off", "time_off"),
    ("extra_shift", "extra_shifts"),
)


def _operator(
    sheet: Sheet, row: SheetRow, errors: Errors, zone: ZoneInfo
) -> tuple[_Reader, PlantOperator | None]:
    r = _Reader(sheet, row, errors)
    name = r.read("name", cells.text, "")
    skills = r.listed("skills", cells.skills)
    weekly = r.listed("shifts", cells.shifts)
    exceptions = [
        CalendarException(start, end, kind, reason)
        for kind, column in _EXCEPTION_COLUMNS
        for start, end, reason in r.listed(column, lambda v: cells.windows(v, zone))
    ]
    if r.failed:
        return r, None
    exceptions.sort(key=lambda e: e.start)
    return r, PlantOperator(name, name, skills, weekly, tuple(exceptions))


@dataclass
class _Step:
    reader: _Reader
    task: PlantTask
    predecessors: list[str]


@dataclass
class _Job:
    first: _Reader
    job: PlantJob
    steps: dict[int, _Step] = field(default_factory=dict)


_JOB_COLUMNS = ("name", "customer", "reference", "priority", "release", "due")


class _Jobs:
    """Rows of the jobs sheet gathered into jobs, then predecessors resolved and checked."""

    def __init__(self, errors: Errors, zone: ZoneInfo, known: Known, equipment: set[str]) -> None:
        self.errors, self.zone, self.known, self.equipment = errors, zone, known, equipment
        self.jobs: dict[str, _Job] = {}

    def add(self, sheet: Sheet, row: SheetRow) -> None:
        r = _Reader(sheet, row, self.errors)
        key = r.read("job", cells.text, "")
        if key and "/" in key:
            r.fail("job", f"{key!r}: a job's reference may not contain '/'")
        job = self.jobs.get(key)
        if job is None and key and not r.failed:
            job = self._new_job(r, key)
        elif job is not None:
            self._same_job(r, job)
        step = r.read("step", lambda v: cells.whole_number(v, low=0, high=1_000_000), 0)
        task = self._task(r, key, step)
        if job is None or task is None or r.failed:
            return
        if step in job.steps:
            r.fail(
                "step",
                f"step {step} of job {key!r} is already on row {job.steps[step].reader.row.number}",
            )
            return
        job.steps[step] = _Step(r, task, r.listed("predecessors", cells.items))

    def _new_job(self, r: _Reader, key: str) -> _Job | None:
        values = self._job_values(r)
        if r.failed:
            return None
        job = _Job(r, PlantJob(key=key, tasks=(), **values))  # type: ignore[arg-type]
        self.jobs[key] = job
        return job

    def _job_values(self, r: _Reader) -> dict[str, object]:
        return {
            "name": r.read("name", cells.text, "") or r.text("job"),
            "customer": r.read("customer", cells.text, ""),
            "reference": r.read("reference", cells.text, ""),
            "priority": r.read("priority", lambda v: cells.whole_number(v, low=0, high=1000), 1),
            "release": r.read("release", lambda v: cells.plant_time(v, self.zone), None),
            "due": r.read("due", lambda v: cells.plant_time(v, self.zone), None),
        }

    def _same_job(self, r: _Reader, job: _Job) -> None:
        """A job's columns may repeat on each of its rows, but must not contradict the first."""
        values = self._job_values(r)
        for column in _JOB_COLUMNS:
            if r.text(column) and values[column] != getattr(job.job, column):
                r.fail(column, f"differs from row {job.first.row.number} of the same job")

    def _task(self, r: _Reader, key: str, step: int) -> PlantTask | None:
        name = r.read("task", cells.text, "")
        minutes = r.read("minutes", lambda v: cells.whole_number(v, low=1, high=100_000), 1)
        skill = r.read("skill", cells.text, "") or None
        level = r.read("min_level", lambda v: cells.whole_number(v, low=1, high=5), 1)
        capability = r.read("capability", cells.text, "") or None
        routings = r.listed("routings", cells.routings)
        if skill is not None and skill not in self.known.skills:
            r.fail("skill", f"no operator has the skill {skill!r}")
        if capability is not None and capability not in self.known.capabilities:
            r.fail("capability", f"no equipment has the capability {capability!r}")
        for unit, _ in routings:
            if unit not in self.equipment:
                r.fail("routings", f"unknown equipment {unit!r}: list it in the equipment sheet")
        if r.failed:
            return None
        return PlantTask(
            key=f"{key}/{step}",
            name=name,
            duration_minutes=minutes,
            required_skill=skill,
            min_level=level,
            required_capability=capability,
            instructions=r.read("instructions", cells.text, ""),
            alternatives=tuple(routings),
        )

    def finished(self) -> tuple[PlantJob, ...]:
        tasks = {s.task.key: s for job in self.jobs.values() for s in job.steps.values()}
        resolved: dict[str, tuple[str, ...]] = {}
        for job in self.jobs.values():
            for step in job.steps.values():
                resolved[step.task.key] = self._predecessors(job.job.key, step, tasks)
        self._check_cycles(resolved, tasks)
        return tuple(
            PlantJob(
                **{**_job_fields(job.job), "tasks": tuple(
                    _with(step.task, resolved[step.task.key])
                    for _, step in sorted(job.steps.items())
                )}  # type: ignore[arg-type]
            )
            for job in self.jobs.values()
        )  # fmt: skip

    def _predecessors(self, job: str, step: _Step, tasks: dict[str, _Step]) -> tuple[str, ...]:
        found = []
        for item in step.predecessors:
            other, _, number = item.rpartition("/")
            key = f"{other or job}/{cells.text(number)}"
            if key not in tasks:
                step.reader.fail("predecessors", f"{item!r} is not a step of the jobs imported")
            elif key == step.task.key:
                step.reader.fail("predecessors", f"step {item!r} cannot come before itself")
            else:
                found.append(key)
        return tuple(dict.fromkeys(found))

    def _check_cycles(self, resolved: dict[str, tuple[str, ...]], tasks: dict[str, _Step]) -> None:
        """Each cycle of finish-to-start links is an error on the row that closes it."""
        state: dict[str, int] = {}  # 1: on the path, 2: done
        for start in resolved:
            if state.get(start):
                continue
            path, stack = [start], [iter(resolved[start])]
            state[start] = 1
            while stack:
                following = next(stack[-1], None)
                if following is None:
                    state[path.pop()] = 2
                    stack.pop()
                elif state.get(following) == 1:
                    cycle = " -> ".join(reversed([*path[path.index(following) :], following]))
                    tasks[path[-1]].reader.fail(
                        "predecessors", f"the steps wait for each other in a circle: {cycle}"
                    )
                elif not state.get(following):
                    state[following] = 1
                    path.append(following)
                    stack.append(iter(resolved[following]))


def _job_fields(job: PlantJob) -> dict[str, object]:
    return {name: getattr(job, name) for name in PlantJob.__slots__ if name != "tasks"}


def _with(task: PlantTask, predecessors: tuple[str, ...]) -> PlantTask:
    return PlantTask(
        key=task.key,
        name=task.name,
        duration_minutes=task.duration_minutes,
        required_skill=task.required_skill,
        min_level=task.min_level,
        required_capability=task.required_capability,
        predecessors=predecessors,
        instructions=task.instructions,
        alternatives=task.alternatives,
    )


# --- writing ---------------------------------------------------------------------------------


def plant_rows(plant: PlantData, *, zone: ZoneInfo) -> dict[Kind, list[tuple[Cell, ...]]]:
    """The plant as rows of each kind's columns (keys as `read_plant` makes them)."""
    return {
        "equipment": [
            (e.key, e.type, cells.joined(e.capabilities), str(e.status),
             cells.windows_cell(((d.start, d.end, d.reason) for d in e.downtime), zone))
            for e in plant.equipment
        ],
        "operators": [
            (o.key, cells.skills_cell(o.skills), cells.shifts_cell(o.weekly_shifts),
             _exceptions(o, "time_off", zone), _exceptions(o, "extra_shift", zone))
            for o in plant.operators
        ],
        "jobs": [row for job in plant.jobs for row in _job_rows(job, zone)],
    }  # fmt: skip


def _exceptions(operator: PlantOperator, kind: str, zone: ZoneInfo) -> str:
    return cells.windows_cell(
        ((e.start, e.end, e.reason) for e in operator.exceptions if e.kind == kind), zone
    )


def _job_rows(job: PlantJob, zone: ZoneInfo) -> Iterable[tuple[Cell, ...]]:
    for task in job.tasks:
        step = task.key.rpartition("/")[2]
        before = [p.rpartition("/")[2] if p.rpartition("/")[0] == job.key else p
                  for p in task.predecessors]  # fmt: skip
        yield (
            job.key,
            job.name,
            job.customer,
            job.reference,
            job.priority,
            "" if job.release is None else cells.time_cell(job.release, zone),
            "" if job.due is None else cells.time_cell(job.due, zone),
            int(step),
            task.name,
            task.duration_minutes,
            task.required_skill or "",
            task.min_level,
            task.required_capability or "",
            cells.joined(before),
            cells.routings_cell(task.alternatives),
            task.instructions,
        )
