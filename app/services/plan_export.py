"""The plan in view as a table: what the board shows, for a spreadsheet or a printout.

One row per placed task that overlaps the window (and passes the board's
filters), in start order, in plant time, with the order reference, the
people and machines by name, and the conflicts it is in (the plant-wide
validation of `schedule.validate_schedule`, so the same as the conflict list).
CSV and Excel (openpyxl) are written from the same rows.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font
from sqlalchemy import select

from app.clock import as_utc
from app.db import tables as t
from app.db.board_queries import BoardFilter
from app.db.plan_queries import schedule_timezone
from app.domain.plan import Interval
from app.services.context import Actor, Services
from app.services.schedule import validate_schedule

__all__ = ["HEADERS", "PlanRow", "csv_bytes", "plan_in_view", "xlsx_bytes"]

HEADERS = (
    "Task #",
    "Order reference",
    "Job",
    "Customer",
    "Task",
    "Status",
    "Operator",
    "Equipment",
    "Start",
    "End",
    "Minutes",
    "Conflicts",
)
_TIME = "%Y-%m-%d %H:%M"


@dataclass(frozen=True, slots=True)
class PlanRow:
    task_id: int
    reference: str
    job: str
    customer: str
    task: str
    status: str
    operator: str
    equipment: str
    start: datetime  # plant time
    end: datetime
    conflicts: str

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    def cells(self) -> tuple[object, ...]:
        return (
            self.task_id,
            self.reference,
            self.job,
            self.customer,
            self.task,
            self.status,
            self.operator,
            self.equipment,
            self.start.strftime(_TIME),
            self.end.strftime(_TIME),
            self.minutes,
            self.conflicts,
        )


async def plan_in_view(
    *, services: Services, actor: Actor, window: Interval, filters: BoardFilter
) -> list[PlanRow]:
    """The placed tasks of the window, as the board filters them, in start order."""
    validation = await validate_schedule(services=services, actor=actor)
    conflicts: dict[int, set[str]] = defaultdict(set)
    for conflict in validation.conflicts:
        for task_id in conflict.task_ids:
            conflicts[task_id].add(str(conflict.type).replace("_", " "))
    schedule_id = await services.live_schedule_id()
    a, tk, jb = t.Assignment.__table__.c, t.Task.__table__.c, t.Job.__table__.c
    op, eq = t.Operator.__table__.c, t.Equipment.__table__.c
    query = (
        select(
            tk.id,
            jb.reference,
            jb.name.label("job"),
            jb.customer,
            tk.name,
            tk.status,
            op.name.label("operator"),
            eq.name.label("equipment"),
            a.start,
            a.end,
        )
        .join_from(t.Assignment.__table__, t.Task.__table__, a.task_id == tk.id)
        .join(t.Job.__table__, jb.id == tk.job_id)
        .join(t.Operator.__table__, op.id == a.operator_id)
        .join(t.Equipment.__table__, eq.id == a.equipment_id)
        .where(a.schedule_id == schedule_id, a.start < window.end, a.end > window.start)
        .order_by(a.start, a.task_id)
    )
    if filters.job_id is not None:
        query = query.where(tk.job_id == filters.job_id)
    if filters.skill:
        query = query.where(tk.required_skill == filters.skill)
    if filters.equipment_type:
        query = query.where(eq.type == filters.equipment_type)
    async with services.db.read() as session, session.begin():
        zone = ZoneInfo(await schedule_timezone(session, schedule_id))
        rows = list(await session.execute(query))
    return [
        PlanRow(
            task_id=row.id,
            reference=row.reference or "",
            job=row.job,
            customer=row.customer or "",
            task=row.name,
            status=row.status,
            operator=row.operator,
            equipment=row.equipment,
            start=as_utc(row.start).astimezone(zone).replace(tzinfo=None),
            end=as_utc(row.end).astimezone(zone).replace(tzinfo=None),
            conflicts=", ".join(sorted(conflicts.get(row.id, ()))),
        )
        for row in rows
    ]


def csv_bytes(rows: list[PlanRow]) -> bytes:
    """UTF-8 with a byte-order mark, so a spreadsheet opened by double-click reads "ü" right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    for row in rows:
        writer.writerow(_safe(cell) for cell in row.cells())
    return ("\ufeff" + out.getvalue()).encode()


def xlsx_bytes(rows: list[PlanRow], *, title: str) -> bytes:
    """A workbook written row by row (openpyxl's write-only mode: a week is ~5,000 rows)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Plan")
    widths = (8, 14, 30, 22, 24, 11, 20, 18, 17, 17, 9, 30)
    for column, width in zip("ABCDEFGHIJKL", widths, strict=True):
        sheet.column_dimensions[column].width = width
    sheet.freeze_panes = "A3"
    sheet.auto_filter.ref = f"A2:L{len(rows) + 2}"
    heading = WriteOnlyCell(sheet, value=title)
    heading.font = Font(bold=True, size=13)
    sheet.append([heading])
    bold = Font(bold=True)
    sheet.append([_styled(WriteOnlyCell(sheet, value=name), bold) for name in HEADERS])
    for row in rows:
        cells: list[object] = [_safe(c) for c in row.cells()]
        start, end = WriteOnlyCell(sheet, value=row.start), WriteOnlyCell(sheet, value=row.end)
        start.number_format = end.number_format = "yyyy-mm-dd hh:mm"
        cells[8], cells[9] = start, end  # real date-times in Excel
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _styled(cell: Cell, font: Font) -> Cell:
    cell.font = font
    return cell


def _safe(cell: object) -> object:
    """A text cell a spreadsheet would run as a formula is written as text (CSV injection)."""
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell
