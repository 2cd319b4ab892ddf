"""Request and response bodies of the JSON API (pydantic at the edge).

Input is bounded here, once, by type (see `app/domain/bounds.py` for why):
`Id` for every database id, `UTC` for every time (aware, inside the plant
horizon, handed on in UTC), `WallTime` for a shift's local clock time, and
`omitted()` for a PATCH field that may be left out but not set to null.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from app.clock import as_utc
from app.domain.bounds import MAX_ID, MAX_INT32, horizon_error, slot_error

Item = TypeVar("Item")


def _in_horizon(value: datetime) -> datetime:
    if (error := horizon_error(value)) is not None:
        raise ValueError(error)
    return as_utc(value)


_WALL_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")


def _wall_time(value: object) -> object:
    """HH:MM[:SS] text (or a naive `time`) as a time; anything else is refused."""
    if isinstance(value, time) and value.tzinfo is None:
        return value
    found = _WALL_TIME.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise ValueError("a shift time is HH:MM or HH:MM:SS of plant time, without an offset")
    hour, minute, second = found.groups()
    return time(int(hour), int(minute), int(second or 0))


def omitted() -> Any:
    """A PATCH field's default: leave it out to keep the value; null is refused."""
    return Field(default=None, json_schema_extra=_no_default)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


# An aware time (an offset is required) inside the plant horizon, kept in UTC.
UTC = Annotated[
    AwareDatetime,
    AfterValidator(_in_horizon),
    Field(description="ISO 8601 with an offset, from 2000-01-01 to before 2100-01-01 (UTC)"),
]
# A time of day on the plant's wall clock (shifts): "06:00" or "06:00:00".
WallTime = Annotated[
    time,
    BeforeValidator(_wall_time),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
            "description": "plant time of day, HH:MM or HH:MM:SS, without an offset",
            "examples": ["06:00", "22:00:00"],
        }
    ),
]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Int32 = Annotated[int, Field(ge=0, le=MAX_INT32)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Tag = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
Tags = Annotated[list[Tag], Field(max_length=100)]
Level = Annotated[int, Field(ge=1, le=5)]
Duration = Annotated[int, Field(gt=0, le=60 * 24 * 30)]
Predecessors = Annotated[list[Id], Field(max_length=1000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    total: int
    limit: int
    offset: int


# --- equipment -------------------------------------------------------------------------------


class DowntimeIn(Strict):
    start: UTC
    end: UTC
    reason: Annotated[str, Field(max_length=200)] = ""

    @model_validator(mode="after")
    def _positive(self) -> DowntimeIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


EquipmentType = Annotated[str, Field(min_length=1, max_length=100)]
EquipmentStatus = Literal["available", "down", "maintenance"]
Downtime = Annotated[list[DowntimeIn], Field(max_length=1000)]


class EquipmentIn(Strict):
    name: Name
    type: EquipmentType
    capabilities: Tags = []
    status: EquipmentStatus = "available"
    expected_back: UTC | None = None
    downtime: Downtime = []


class EquipmentPatch(Strict):
    name: Name = omitted()
    type: EquipmentType = omitted()
    capabilities: Tags = omitted()
    status: EquipmentStatus = omitted()
    expected_back: UTC | None = None
    downtime: Downtime = omitted()


class BreakdownIn(Strict):
    note: Annotated[str, Field(max_length=500)] = ""
    expected_back: UTC | None = None


class EquipmentStatusIn(Strict):
    status: Literal["available", "down", "maintenance"]
    expected_back: UTC | None = None
    note: Annotated[str, Field(max_length=500)] = ""


class EquipmentStatusOut(BaseModel):
    equipment_id: int
    status: str
    expected_back: datetime | None
    affected_task_ids: list[int]
    revision: int


class DowntimeOut(BaseModel):
    start: datetime
    end: datetime
    reason: str


class EquipmentOut(BaseModel):
    id: int
    name: str
    type: str
    capabilities: list[str]
    status: str
    expected_back: datetime | None
    downtime: list[DowntimeOut]
    version: int


# --- operators -------------------------------------------------------------------------------


class SkillIn(Strict):
    skill: Tag
    level: Level


class ShiftIn(Strict):
    weekday: Annotated[int, Field(ge=0, le=6)]
    start: WallTime
    end: WallTime


class CalendarExceptionIn(Strict):
    kind: Literal["time_off", "extra_shift"]
    start: UTC
    end: UTC
    reason: Annotated[str, Field(max_length=200)] = ""

    @model_validator(mode="after")
    def _positive(self) -> CalendarExceptionIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ContactIn(Strict):
    phone: Annotated[str, Field(max_length=50)] | None = None
    email: Annotated[str, Field(max_length=200)] | None = None


def _each_skill_once(skills: list[SkillIn]) -> list[SkillIn]:
    names = [skill.skill for skill in skills]
    if len(set(names)) != len(names):
        raise ValueError("name each skill once, with its level")
    return skills


Skills = Annotated[list[SkillIn], Field(max_length=100), AfterValidator(_each_skill_once)]
Shifts = Annotated[list[ShiftIn], Field(max_length=100)]
Exceptions = Annotated[list[CalendarExceptionIn], Field(max_length=1000)]


class OperatorIn(Strict):
    name: Name
    skills: Skills = []
    shifts: Shifts = []
    exceptions: Exceptions = []
    contact: ContactIn | None = None


class OperatorPatch(Strict):
    name: Name = omitted()
    skills: Skills = omitted()
    shifts: Shifts = omitted()
    exceptions: Exceptions = omitted()
    contact: ContactIn | None = None


class OperatorOut(BaseModel):
    id: int
    name: str
    skills: list[SkillIn]
    shifts: list[ShiftIn]
    exceptions: list[CalendarExceptionIn]
    contact: ContactIn | None
    version: int


# --- jobs and tasks --------------------------------------------------------------------------


Customer = Annotated[str, Field(max_length=200)]
Reference = Annotated[str, Field(max_length=100)]
Priority = Annotated[int, Field(ge=0, le=100)]
JobStatus = Literal["open", "done", "cancelled"]


class JobIn(Strict):
    name: Name
    customer: Customer = ""
    reference: Reference = ""
    priority: Priority = 0
    release: UTC | None = None
    due: UTC | None = None
    status: JobStatus = "open"

    @model_validator(mode="after")
    def _due_after_release(self) -> JobIn:
        if self.release and self.due and self.due <= self.release:
            raise ValueError("due must be after release")
        return self


class JobPatch(Strict):
    name: Name = omitted()
    customer: Customer = omitted()
    reference: Reference = omitted()
    priority: Priority = omitted()
    release: UTC | None = None
    due: UTC | None = None
    status: JobStatus = omitted()


class JobOut(BaseModel):
    id: int
    name: str
    customer: str
    reference: str
    priority: int
    release: datetime | None
    due: datetime | None
    status: str
    version: int


Instructions = Annotated[str, Field(max_length=5000)]


class AlternativeIn(Strict):
    """An alternative routing: the task takes `duration_minutes` on this equipment."""

    equipment_id: Id
    duration_minutes: Duration


# Capable equipment not listed takes the task's own duration_minutes.
Alternatives = Annotated[list[AlternativeIn], Field(max_length=100)]


class TaskIn(Strict):
    job_id: Id
    name: Name
    sequence: Int32 = 0
    duration_minutes: Duration
    required_skill: Tag | None = None
    min_level: Level = 1
    required_capability: Tag | None = None
    instructions: Instructions = ""
    predecessors: Predecessors = []
    alternatives: Alternatives = []


class TaskPatch(Strict):
    name: Name = omitted()
    sequence: Int32 = omitted()
    duration_minutes: Duration = omitted()
    required_skill: Tag | None = None
    min_level: Level = omitted()
    required_capability: Tag | None = None
    instructions: Instructions = omitted()
    predecessors: Predecessors = omitted()
    alternatives: Alternatives = omitted()


class TaskActionIn(Strict):
    """Optional body of start/pause/complete: when the operator did it (ISO 8601 with
    offset), e.g. a tap queued on a phone while offline. Omitted: now. Accepted from
    24 hours ago up to 2 minutes ahead of the server's clock, and not before the task's
    previous action (422 / 409 otherwise)."""

    at: UTC | None = None


class AssignmentIn(Strict):
    """A slot: at most 31 days long, inside the plant horizon."""

    operator_id: Id
    equipment_id: Id
    start: UTC
    end: UTC

    @model_validator(mode="after")
    def _a_slot(self) -> AssignmentIn:
        if (error := slot_error(self.start, self.end)) is not None:
            raise ValueError(error)
        return self


class AssignmentOut(BaseModel):
    operator_id: int
    equipment_id: int
    start: datetime
    end: datetime


class AlternativeOut(BaseModel):
    equipment_id: int
    duration_minutes: int


class TaskOut(BaseModel):
    id: int
    job_id: int
    name: str
    sequence: int
    duration_minutes: int
    required_skill: str | None
    min_level: int
    required_capability: str | None
    instructions: str
    predecessors: list[int]
    # Durations on particular equipment; other capable equipment takes duration_minutes.
    alternatives: list[AlternativeOut]
    status: str
    actual_start: datetime | None
    actual_end: datetime | None
    assignment: AssignmentOut | None
    version: int


class ConflictOut(BaseModel):
    type: str
    severity: Literal["error", "warning"]
    task_ids: list[int]
    operator_id: int | None
    equipment_id: int | None
    job_id: int | None
    message: str


class AssignmentResult(BaseModel):
    task: TaskOut
    conflicts: list[ConflictOut]
    revision: int


class ValidateRequest(Strict):
    """Empty body: validate the whole plan. With `task_id` + `assignment`: a proposal."""

    task_id: Id | None = None
    assignment: AssignmentIn | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> ValidateRequest:
        if (self.task_id is None) != (self.assignment is None):
            raise ValueError("give both task_id and assignment, or neither")
        return self


class ValidateResponse(BaseModel):
    conflicts: list[ConflictOut]
    revision: int
    counts: dict[str, int]


class CriticalPathTask(BaseModel):
    task_id: int
    earliest_start: int
    earliest_finish: int
    latest_start: int
    latest_finish: int
    slack: int


class CriticalPathOut(BaseModel):
    job_id: int
    makespan_minutes: int
    critical_task_ids: list[int]
    tasks: list[CriticalPathTask]


class ChangeOut(BaseModel):
    revision: int
    kind: str
    entity: str
    entities: dict[str, list[int]]
    actor_id: int | None
    at: datetime


class ChangesResponse(BaseModel):
    revision: int
    changes: list[ChangeOut]
    # True when `since` is older than the feed keeps: reload everything instead.
    reload: bool


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody
