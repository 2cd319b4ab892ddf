"""The column layout of plant data files: one sheet (or CSV file) per kind.

    equipment   name, type, capabilities, status, downtime
    operators   name, skills, shifts, time_off, extra_shifts
    jobs        one row per task: job, name, customer, reference, priority,
                release, due, step, task, minutes, skill, min_level,
                capability, predecessors, routings, instructions

`docs/plant-data.md` documents every column; the export writes exactly
these, so what Takt exports it imports again. A problem with a file is a
`RowError` naming the file, the sheet, the row (1 = the header) and the
column, so a manager can find it in the spreadsheet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Kind = Literal["equipment", "operators", "jobs"]
KINDS: tuple[Kind, ...] = ("equipment", "operators", "jobs")
Cell = str | int | float | datetime | None

COLUMNS: dict[Kind, tuple[str, ...]] = {
    "equipment": ("name", "type", "capabilities", "status", "downtime"),
    "operators": ("name", "skills", "shifts", "time_off", "extra_shifts"),
    "jobs": (
        "job",
        "name",
        "customer",
        "reference",
        "priority",
        "release",
        "due",
        "step",
        "task",
        "minutes",
        "skill",
        "min_level",
        "capability",
        "predecessors",
        "routings",
        "instructions",
    ),
}
# Columns a row must fill; the others may stay empty.
REQUIRED: dict[Kind, frozenset[str]] = {
    "equipment": frozenset({"name", "type"}),
    "operators": frozenset({"name"}),
    "jobs": frozenset({"job", "step", "task", "minutes"}),
}
# The sheet of a workbook each kind is read from (and written to).
SHEET_NAMES: dict[Kind, str] = {"equipment": "Equipment", "operators": "Operators", "jobs": "Jobs"}
# A workbook's sheet the import passes over: the plan is exported, never imported.
PLAN_SHEET = "Plan"


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in a file; `row` 0 is the file itself, 1 its header row."""

    file: str
    sheet: str
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.sheet:
            where.append(f"sheet {self.sheet}")
        if self.row:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}"


@dataclass(frozen=True, slots=True)
class SheetRow:
    number: int  # in the spreadsheet: the header is row 1
    cells: dict[str, Cell]


@dataclass(frozen=True, slots=True)
class Sheet:
    """The rows of one kind, as read from a CSV file or a workbook's sheet."""

    file: str
    name: str  # the workbook's sheet name; "" for a CSV file
    kind: Kind
    rows: tuple[SheetRow, ...] = ()

    def error(self, row: int, column: str, message: str) -> RowError:
        return RowError(self.file, self.name, row, column, message)


@dataclass
class Errors:
    """Row errors as they are found; the preview lists every one."""

    found: list[RowError] = field(default_factory=list)

    def add(self, sheet: Sheet, row: int, column: str, message: str) -> None:
        self.found.append(sheet.error(row, column, message))

    def __bool__(self) -> bool:
        return bool(self.found)
