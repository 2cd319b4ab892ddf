"""Reading plant data files: every row error, with its file, sheet, row and column."""

from __future__ import annotations

import io
from datetime import timedelta
from zoneinfo import ZoneInfo

from clocks import PlantTime
from openpyxl import Workbook

from app.domain.plants.layout import COLUMNS, RowError
from app.domain.plants.plant_sheets import Known, plant_rows, read_plant
from app.domain.plants.workbook import csv_bytes, read_file, xlsx_bytes

ZONE = ZoneInfo("Europe/Berlin")
EQUIPMENT = "name,type,capabilities,status,downtime\nMill 1,CNC mill,milling; drilling,available,\n"
OPERATORS = "name,skills,shifts,time_off,extra_shifts\nAnna,milling:4,Mon 06:00-14:00,,\n"
JOBS_HEADER = ",".join(COLUMNS["jobs"])


def jobs_csv(*rows: str) -> bytes:
    return "\n".join((JOBS_HEADER, *rows)).encode()


def job_row(step: int, *, job: str = "SO-1", minutes: str = "30", due: str = "",
            skill: str = "milling", before: str = "", routings: str = "") -> str:  # fmt: skip
    task = f"{step},Op {step},{minutes},{skill},1,milling,{before},{routings},"
    return f"{job},Frame,ACME,{job},1,,{due},{task}"


def plant_files(jobs: bytes) -> list[tuple[str, bytes]]:
    return [
        ("equipment.csv", EQUIPMENT.encode()),
        ("operators.csv", OPERATORS.encode()),
        ("jobs.csv", jobs),
    ]


def read(*files: tuple[str, bytes]) -> tuple[object, list[RowError]]:
    sheets, errors = [], []
    for name, data in files:
        found, problems = read_file(name, data)
        sheets += found
        errors += problems
    plant, row_errors = read_plant(sheets, zone=ZONE, known=Known())
    return plant, errors + row_errors.found


def where(errors: list[RowError]) -> set[tuple[str, str, int, str]]:
    return {(e.file, e.sheet, e.row, e.column) for e in errors}


def test_a_plant_in_three_csv_files_reads_without_errors(plant_time: PlantTime) -> None:
    due = (plant_time.now + timedelta(days=3)).astimezone(ZONE)
    jobs = jobs_csv(
        job_row(10, due=f"{due:%Y-%m-%d %H:%M}"),
        job_row(20, before="10", routings="Mill 1: 25"),
    )
    plant, errors = read(*plant_files(jobs))
    assert errors == []
    job = plant.jobs[0]  # type: ignore[attr-defined]
    assert [t.key for t in job.tasks] == ["SO-1/10", "SO-1/20"]
    assert job.tasks[1].predecessors == ("SO-1/10",)
    assert job.tasks[1].alternatives == (("Mill 1", 25),)
    assert job.due == due.replace(second=0, microsecond=0)


def test_bad_cells_are_each_an_error_on_their_row_and_column() -> None:
    jobs = jobs_csv(
        job_row(10, job="SO-3", due="next tuesday"),
        job_row(20, minutes="-5", skill="welding"),
        job_row(10),
        job_row(10),
        job_row(30, before="SO-9/10"),
    )
    _, errors = read(*plant_files(jobs))
    assert where(errors) == {
        ("jobs.csv", "", 2, "due"),  # a bad date
        ("jobs.csv", "", 3, "minutes"),
        ("jobs.csv", "", 3, "skill"),  # nobody has it
        ("jobs.csv", "", 5, "step"),  # the duplicate reference
        ("jobs.csv", "", 6, "predecessors"),  # no such job
    }
    by_column = {e.column: e.message for e in errors}
    assert "welding" in by_column["skill"]
    assert "already on row 4" in by_column["step"]


def test_a_circle_of_predecessors_is_an_error() -> None:
    jobs = jobs_csv(job_row(10, before="30"), job_row(20, before="10"), job_row(30, before="20"))
    _, errors = read(*plant_files(jobs))
    assert len(errors) == 1 and errors[0].column == "predecessors"
    assert "circle" in errors[0].message and "SO-1/10" in errors[0].message


def test_a_missing_column_is_named_and_no_row_is_read() -> None:
    _, errors = read(("equipment.csv", b"name,type,status,downtime\nMill 1,CNC mill,available,\n"))
    assert where(errors) == {("equipment.csv", "", 1, "capabilities")}


def test_a_sheet_takt_does_not_import_is_named() -> None:
    book = Workbook()
    book.active.title = "Machines"  # type: ignore[union-attr]
    book.active.append(["name", "type"])  # type: ignore[union-attr]
    out = io.BytesIO()
    book.save(out)
    _, errors = read(("plant.xlsx", out.getvalue()))
    assert [(e.sheet, e.row) for e in errors] == [("Machines", 0)]
    assert "Equipment, Operators, Jobs" in errors[0].message


def test_files_that_are_not_spreadsheets_or_empty_are_errors() -> None:
    assert "empty" in read(("jobs.csv", b""))[1][0].message
    assert "not an Excel" in read(("x.xlsx", b"PK\x03\x04garbage"))[1][0].message
    assert "not UTF-8" in read(("jobs.csv", "é,ß".encode("latin-1")))[1][0].message
    assert "no rows" in read(("jobs.csv", JOBS_HEADER.encode()))[1][0].message


def test_rows_written_read_back_the_same_plant_in_csv_and_excel(plant_time: PlantTime) -> None:
    due = (plant_time.now + timedelta(days=2)).replace(second=0, microsecond=0)
    jobs = jobs_csv(
        job_row(10, due=due.isoformat()),
        job_row(20, before="10", routings="Mill 1: 25"),
        job_row(10, job="SO-2", before="SO-1/20"),
    )
    plant, errors = read(*plant_files(jobs))
    assert errors == []
    rows = plant_rows(plant, zone=ZONE)  # type: ignore[arg-type]
    files = [(f"{kind}.csv", csv_bytes(kind, found)) for kind, found in rows.items()]
    assert read(*files) == (plant, [])
    assert read(("plant.xlsx", xlsx_bytes(rows))) == (plant, [])
