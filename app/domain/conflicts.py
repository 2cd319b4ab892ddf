"""What validation finds: structured conflicts with the SPEC's type names."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ConflictType(enum.StrEnum):
    SKILL_MISMATCH = "skill_mismatch"
    CAPABILITY_MISMATCH = "capability_mismatch"
    # A task with alternative routings booked for other than its duration there.
    DURATION_MISMATCH = "duration_mismatch"
    OPERATOR_DOUBLE_BOOKED = "operator_double_booked"
    EQUIPMENT_DOUBLE_BOOKED = "equipment_double_booked"
    EQUIPMENT_UNAVAILABLE = "equipment_unavailable"
    OUTSIDE_SHIFT = "outside_shift"
    DEPENDENCY_VIOLATION = "dependency_violation"
    BEFORE_RELEASE = "before_release"
    LATE = "late"


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


SEVERITY: dict[ConflictType, Severity] = {
    kind: (Severity.WARNING if kind is ConflictType.LATE else Severity.ERROR)
    for kind in ConflictType
}


@dataclass(frozen=True, slots=True)
class Conflict:
    type: ConflictType
    # The tasks involved, sorted; the first is the one the conflict is "on".
    task_ids: tuple[int, ...]
    message: str
    operator_id: int | None = None
    equipment_id: int | None = None
    job_id: int | None = None
    # The equipment's name, for lists grouped by machine on any board (rows by
    # operator too); not part of a conflict's identity.
    equipment_name: str | None = field(default=None, compare=False)

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.type]

    def as_dict(self) -> dict[str, object]:
        return {
            "type": str(self.type),
            "severity": str(self.severity),
            "task_ids": list(self.task_ids),
            "operator_id": self.operator_id,
            "equipment_id": self.equipment_id,
            "job_id": self.job_id,
            "message": self.message,
        }
