"""`takt import` and `takt export` on a real database file."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook
from test_cli import rows

from app.cli import main
from app.db import tables


@pytest.fixture
def migrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return migrated_at(tmp_path / "one", monkeypatch)


def migrated_at(folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite+aiosqlite:///{folder / 'takt.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TAKT_VAR_DIR", str(folder / "var"))
    monkeypatch.setenv("TAKT_PLANT_TIMEZONE", "Europe/Berlin")
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["migrate"]) == 0
    return url


def test_export_to_a_folder_then_import_into_an_empty_plant(
    migrated: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo"]) == 0
    assert main(["export", "--to", str(tmp_path / "out")]) == 0
    names = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert names == ["equipment.csv", "jobs.csv", "operators.csv", "plan.csv"]

    other = migrated_at(tmp_path / "two", monkeypatch)
    capsys.readouterr()
    files = [str(tmp_path / "out" / f"{kind}.csv") for kind in ("equipment", "operators", "jobs")]
    assert main(["import", *files, "--dry-run"]) == 0
    assert "Nothing was written" in capsys.readouterr().out
    assert rows(other, tables.Task) == 0

    assert main(["import", *files]) == 0
    assert "150 tasks" in capsys.readouterr().out
    assert rows(other, tables.Task) == 150
    assert main(["export", "--to", str(tmp_path / "again")]) == 0
    for kind in ("equipment", "operators", "jobs"):
        first = (tmp_path / "out" / f"{kind}.csv").read_bytes()
        assert (tmp_path / "again" / f"{kind}.csv").read_bytes() == first, kind


def test_export_to_a_workbook_has_a_sheet_per_kind_and_the_plan(
    migrated: str, tmp_path: Path
) -> None:
    assert main(["demo"]) == 0
    assert main(["export", "--to", str(tmp_path / "plant.xlsx")]) == 0
    book = load_workbook(tmp_path / "plant.xlsx", read_only=True)
    assert book.sheetnames == ["Equipment", "Operators", "Jobs", "Plan"]
    assert len(list(book["Jobs"].iter_rows())) == 151
    # The header, then a row per placed task.
    assert len(list(book["Plan"].iter_rows())) == rows(migrated, tables.Assignment) + 1


def test_import_lists_every_problem_and_writes_nothing(
    migrated: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "equipment.csv"
    path.write_text(
        "name,type,capabilities,status,downtime\n"
        "Saw 1,Saw,sawing,broken,\n"
        "Saw 1,Saw,sawing,available,\n"
        ",Saw,sawing,available,2026-01-01 08:00/2025-01-01 08:00\n"
    )
    assert main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "3 problem(s)" in err or "4 problem(s)" in err
    assert "equipment.csv, row 2, column status: 'broken' is not a status" in err
    assert "row 4, column name: name is required" in err
    assert "row 4, column downtime" in err
    assert rows(migrated, tables.Equipment) == 0


def test_import_explains_files_it_cannot_read(
    migrated: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(tmp_path / "missing.csv")]) == 1
    assert "cannot read it" in capsys.readouterr().err
    (tmp_path / "photo.xlsx").write_bytes(b"PK\x03\x04 not really")
    assert main(["import", str(tmp_path / "photo.xlsx")]) == 1
    assert "not an Excel workbook" in capsys.readouterr().err
