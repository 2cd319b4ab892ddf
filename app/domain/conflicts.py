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

    def as_message(self) -> dict[str, object]:
        """Everything of the conflict, for a hub message (`from_message` reads it back)."""
        return {
            "type": str(self.type),
            "task_ids": list(self.task_ids),
            "message": self.message,
            "operator_id": self.operator_id,
            "equipment_id": self.equipment_id,
            "job_id": self.job_id,
            "equipment_name": self.equipment_name,
        }

    @classmethod
    def from_message(cls, data: object) -> Conflict | None:
        """A conflict from `as_message()`'s dict; None if it is not one."""
        if not isinstance(data, dict):
            return None
        try:
            kind = ConflictType(data["type"])
            task_ids = tuple(int(task_id) for task_id in data["task_ids"])
            message = str(data["message"])
        except (KeyError, TypeError, ValueError):
            return None
        ids = [data.get(name) for name in ("operator_id", "equipment_id", "job_id")]
        if not all(i is None or (isinstance(i, int) and not isinstance(i, bool)) for i in ids):
            return None
        name = data.get("equipment_name")
        return cls(
            kind,
            task_ids,
            message,
            operator_id=ids[0],
            equipment_id=ids[1],
            job_id=ids[2],
            equipment_name=None if name is None else str(name),
        )

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
