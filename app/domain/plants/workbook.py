"""Reading and writing plant data files: CSV (one kind per file) and Excel workbooks.

A workbook has a sheet per kind (`SHEET_NAMES`; a "Plan" sheet is passed
over); a CSV file holds one kind, told by `--kind`, else by its header,
else by its file name. A header must have every column of its kind's
layout (an extra column is passed over). Whatever cannot be read is a
`RowError`, never an exception, so the preview can list it.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import PurePath

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils.exceptions import InvalidFileException

from app.domain.plants.layout import (
    COLUMNS,
    KINDS,
    PLAN_SHEET,
    SHEET_NAMES,
    Cell,
    Errors,
    Kind,
    RowError,
    Sheet,
    SheetRow,
)

MAX_ROWS = 200_000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def read_file(
    name: str, data: bytes, *, kind: Kind | None = None
) -> tuple[list[Sheet], list[RowError]]:
    """The sheets of one uploaded file, or the errors that keep it from being read."""
    errors = Errors()
    if not data.strip():
        return [], [RowError(name, "", 0, "", "the file is empty")]
    if data[:4] == b"PK\x03\x04":
        sheets = _read_workbook(name, data, kind, errors)
    else:
        sheets = _read_csv(name, data, kind, errors)
    if not errors and not any(sheet.rows for sheet in sheets):
        errors.found.append(RowError(name, "", 0, "", "there are no rows to import"))
    return sheets, errors.found


def _read_workbook(name: str, data: bytes, kind: Kind | None, errors: Errors) -> list[Sheet]:
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError):
        errors.found.append(RowError(name, "", 0, "", "this is not an Excel workbook (.xlsx)"))
        return []
    sheets = []
    expected = {title.lower(): k for k, title in SHEET_NAMES.items()}
    try:
        for sheet in book.worksheets:
            found = expected.get(sheet.title.strip().lower())
            if sheet.title.strip().lower() == PLAN_SHEET.lower() or (kind and found != kind):
                continue
            if found is None:
                names = ", ".join(SHEET_NAMES.values())
                message = f"a sheet Takt does not import: expected {names} (or {PLAN_SHEET})"
                errors.found.append(RowError(name, sheet.title, 0, "", message))
                continue
            rows = sheet.iter_rows(values_only=True)
            sheets.append(_sheet(name, sheet.title, found, rows, errors))
    finally:
        book.close()
    return sheets


def _read_csv(name: str, data: bytes, kind: Kind | None, errors: Errors) -> list[Sheet]:
    if b"\x00" in data[:4096]:
        errors.found.append(RowError(name, "", 0, "", "this is not a CSV file or a workbook"))
        return []
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        errors.found.append(RowError(name, "", 0, "", "this CSV file is not UTF-8 text"))
        return []
    first = content.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    rows = list(csv.reader(io.StringIO(content, newline=""), delimiter=delimiter))
    header = [_column(cell) for cell in rows[0]] if rows else []
    found = kind or _kind_of(header, name)
    if found is None:
        message = "cannot tell whether this file holds equipment, operators or jobs: pass the kind"
        errors.found.append(RowError(name, "", 1, "", message))
        return []
    return [_sheet(name, "", found, iter(rows), errors)]


def _kind_of(header: Sequence[str], file_name: str) -> Kind | None:
    for kind in KINDS:
        if set(COLUMNS[kind]) <= set(header):
            return kind
    stem = PurePath(file_name).stem.lower()
    return next((kind for kind in KINDS if kind in stem), None)


def _sheet(
    file: str, title: str, kind: Kind, rows: Iterator[Sequence[object]], errors: Errors
) -> Sheet:
    sheet = Sheet(file, title, kind)
    header = [_column(cell) for cell in next(rows, ())]
    missing = [column for column in COLUMNS[kind] if column not in header]
    for column in missing:
        errors.add(sheet, 1, column, f"the column {column!r} is missing")
    if missing:
        return sheet
    found = []
    for number, values in enumerate(rows, 2):
        if number > MAX_ROWS:
            errors.add(sheet, number, "", f"more than {MAX_ROWS} rows: split the file")
            break
        cells = {
            column: _value(value)
            for column, value in zip(header, values, strict=False)
            if column in COLUMNS[kind]
        }
        if any(value not in (None, "") for value in cells.values()):
            found.append(SheetRow(number, cells))
    return Sheet(file, title, kind, tuple(found))


def _column(cell: object) -> str:
    return str(cell or "").strip().lower().replace(" ", "_")


def _value(value: object) -> Cell:
    if isinstance(value, str):
        value = value.strip()
        # Written as text by the export so a spreadsheet would not run it as a formula.
        return value[1:] if value[:1] == "'" and value[1:2] in _FORMULA_START else value
    if value is None or isinstance(value, int | float) or hasattr(value, "isoformat"):
        return value  # type: ignore[return-value]
    return str(value)


# --- writing ---------------------------------------------------------------------------------


def csv_bytes(kind: Kind, rows: Iterable[Sequence[Cell]]) -> bytes:
    """UTF-8 with a byte-order mark, so a spreadsheet opened by double-click reads "ü" right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS[kind])
    for row in rows:
        writer.writerow(_safe(cell) for cell in row)
    return ("\ufeff" + out.getvalue()).encode()


def xlsx_bytes(
    sheets: dict[Kind, list[tuple[Cell, ...]]],
    *,
    plan: tuple[Sequence[str], Iterable[Sequence[Cell]]] | None = None,
) -> bytes:
    """One workbook, a sheet per kind (and the plan, read-only, when given)."""
    book = Workbook(write_only=True)
    bold = Font(bold=True)
    for kind, rows in sheets.items():
        _write_sheet(book, SHEET_NAMES[kind], COLUMNS[kind], rows, bold)
    if plan is not None:
        _write_sheet(book, PLAN_SHEET, plan[0], plan[1], bold)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _write_sheet(
    book: Workbook,
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    bold: Font,
) -> None:
    sheet = book.create_sheet(title)
    sheet.freeze_panes = "A2"
    cells = []
    for column in header:
        cell = WriteOnlyCell(sheet, value=column)
        cell.font = bold
        cells.append(cell)
    sheet.append(cells)
    for row in rows:
        sheet.append([_safe(cell) for cell in row])


def _safe(cell: Cell) -> Cell:
    """A text cell a spreadsheet would run as a formula is written as text (CSV injection)."""
    if isinstance(cell, str) and cell[:1] in _FORMULA_START:
        return "'" + cell
    return cell
