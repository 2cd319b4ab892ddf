"""Request and response bodies of the JSON API (pydantic at the edge)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from app.clock import as_utc

Item = TypeVar("Item")

UTC = Annotated[AwareDatetime, AfterValidator(as_utc)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Tag = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
Level = Annotated[int, Field(ge=1, le=5)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    total: int
    limit: int
    offset: int


# --- auth ------------------------------------------------------------------------------------


class TokenRequest(Strict):
    username: Annotated[str, Field(min_length=1, max_length=100)]
    password: Annotated[str, Field(min_length=1, max_length=1000)]


class RefreshRequest(Strict):
    refresh_token: Annotated[str, Field(min_length=1, max_length=500)]


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


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


class EquipmentIn(Strict):
    name: Name
    type: Annotated[str, Field(min_length=1, max_length=100)]
    capabilities: list[Tag] = []
    status: Literal["available", "down", "maintenance"] = "available"
    expected_back: UTC | None = None
    downtime: list[DowntimeIn] = []


class EquipmentPatch(Strict):
    name: Name | None = None
    type: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    capabilities: list[Tag] | None = None
    status: Literal["available", "down", "maintenance"] | None = None
    expected_back: UTC | None = None
    downtime: list[DowntimeIn] | None = None


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
    start: time
    end: time


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


class OperatorIn(Strict):
    name: Name
    skills: list[SkillIn] = []
    shifts: list[ShiftIn] = []
    exceptions: list[CalendarExceptionIn] = []
    contact: ContactIn | None = None


class OperatorPatch(Strict):
    name: Name | None = None
    skills: list[SkillIn] | None = None
    shifts: list[ShiftIn] | None = None
    exceptions: list[CalendarExceptionIn] | None = None
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


class JobIn(Strict):
    name: Name
    customer: Annotated[str, Field(max_length=200)] = ""
    reference: Annotated[str, Field(max_length=100)] = ""
    priority: Annotated[int, Field(ge=0, le=100)] = 0
    release: UTC | None = None
    due: UTC | None = None
    status: Literal["open", "done", "cancelled"] = "open"

    @model_validator(mode="after")
    def _due_after_release(self) -> JobIn:
        if self.release and self.due and self.due <= self.release:
            raise ValueError("due must be after release")
        return self


class JobPatch(Strict):
    name: Name | None = None
    customer: Annotated[str, Field(max_length=200)] | None = None
    reference: Annotated[str, Field(max_length=100)] | None = None
    priority: Annotated[int, Field(ge=0, le=100)] | None = None
    release: UTC | None = None
    due: UTC | None = None
    status: Literal["open", "done", "cancelled"] | None = None


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


class TaskIn(Strict):
    job_id: int
    name: Name
    sequence: Annotated[int, Field(ge=0)] = 0
    duration_minutes: Annotated[int, Field(gt=0, le=60 * 24 * 30)]
    required_skill: Tag | None = None
    min_level: Level = 1
    required_capability: Tag | None = None
    instructions: Annotated[str, Field(max_length=5000)] = ""
    predecessors: list[int] = []


class TaskPatch(Strict):
    name: Name | None = None
    sequence: Annotated[int, Field(ge=0)] | None = None
    duration_minutes: Annotated[int, Field(gt=0, le=60 * 24 * 30)] | None = None
    required_skill: Tag | None = None
    min_level: Level | None = None
    required_capability: Tag | None = None
    instructions: Annotated[str, Field(max_length=5000)] | None = None
    predecessors: list[int] | None = None


class AssignmentIn(Strict):
    operator_id: int
    equipment_id: int
    start: UTC
    end: UTC

    @model_validator(mode="after")
    def _positive(self) -> AssignmentIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class AssignmentOut(BaseModel):
    operator_id: int
    equipment_id: int
    start: datetime
    end: datetime


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

    task_id: int | None = None
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


class UserIn(Strict):
    username: Annotated[str, Field(min_length=2, max_length=100, pattern=r"^[a-z0-9_.-]+$")]
    password: Annotated[str, Field(min_length=8, max_length=1000)]
    role: Literal["operator", "scheduler", "manager", "admin"]
    operator_id: int | None = None
    display_name: Annotated[str, Field(max_length=200)] = ""


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    operator_id: int | None
    active: bool
