from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.cli import _parser, _read_password, main
from app.db import tables
from app.db.session import Database


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The environment `takt` reads: a fresh SQLite file, not migrated yet."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'takt.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TAKT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("TAKT_PLANT_TIMEZONE", "Europe/Berlin")
    monkeypatch.delenv("REDIS_URL", raising=False)
    return url


@pytest.fixture
def migrated(database_url: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["migrate"]) == 0
    assert "newest schema" in capsys.readouterr().out
    return database_url


@pytest.fixture
def ft06_file(tmp_path: Path, ft06_text: str) -> Path:
    path = tmp_path / "ft06"
    path.write_text(ft06_text)
    return path


def rows(database_url: str, table: type[tables.Base]) -> int:
    async def count() -> int:
        db = Database(database_url)
        try:
            async with db.read() as session:
                return int(await session.scalar(select(func.count()).select_from(table)) or 0)
        finally:
            await db.dispose()

    return asyncio.run(count())


def test_demo_loads_and_prints_the_logins(
    migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--size", "small"]) == 0
    out = capsys.readouterr().out
    assert "Demo plant (small) loaded" in out
    assert "http://127.0.0.1:8000" in out
    for username in ("anna", "ben", "olga", "omar", "maria", "admin"):
        assert f"| {username} " in out
    assert "takt-demo" in out
    assert "conflicts to resolve" in out
    assert rows(migrated, tables.Task) >= 150


def test_demo_if_empty_leaves_a_plant_with_data_alone(
    migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo"]) == 0
    tasks = rows(migrated, tables.Task)
    assert main(["demo", "--if-empty"]) == 0
    assert "not loaded" in capsys.readouterr().out
    assert main(["demo"]) == 1
    assert "the plant is not empty" in capsys.readouterr().err
    assert rows(migrated, tables.Task) == tasks


def test_demo_keeps_users_that_exist_already(
    migrated: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("my own admin password\n")
    assert main(["create-user", "admin", "--role", "admin", "--password-file", str(secret)]) == 0
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "Existing users kept with their own passwords: admin." in out
    assert rows(migrated, tables.User) == 6


def test_import_jssp_prints_what_it_created(
    migrated: str, ft06_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = ["--start", "2026-03-02T06:00"]
    assert main(["import-jssp", str(ft06_file), *start, "--time-unit-minutes", "5"]) == 0
    out = capsys.readouterr().out
    assert "ft06: 6 jobs x 6 machines, 36 operations" in out
    assert "2026-03-02T06:00:00+01:00" in out
    assert "6 equipment, 6 operators, 6 jobs, 36 tasks" in out
    assert rows(migrated, tables.Task) == 36


def test_import_fjsp_writes_each_operations_routings(
    migrated: str, fjsp_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mk01 = fjsp_dir / "instances" / "mk01"
    assert main(["import-fjsp", str(mk01), "--start", "2026-03-02T06:00"]) == 0
    out = capsys.readouterr().out
    assert "flexible job-shop instance mk01: 10 jobs x 6 machines, 55 operations" in out
    assert "6 equipment, 6 operators, 10 jobs, 55 tasks" in out
    assert rows(migrated, tables.Task) == 55
    # Every operation's machines, each with its own time (mk01: 115 in all).
    assert rows(migrated, tables.TaskAlternative) == 115


def test_import_fjsp_explains_bad_files(
    migrated: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "instance"
    path.write_text("1 2\n1 1 5 3\n")
    assert main(["import-fjsp", str(path)]) == 1
    assert "line 2: machine 5 is out of range 0..1" in capsys.readouterr().err
    assert rows(migrated, tables.Job) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("2 2\n0 1 1 2\n0 1 x 2\n", "line 3: 'x' is not a whole number"),
    ],
)
def test_import_jssp_explains_bad_files(
    migrated: str, tmp_path: Path, content: str | None, message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    path = tmp_path / "instance"
    if content is not None:
        path.write_text(content)
    assert main(["import-jssp", str(path)]) == 1
    assert message in capsys.readouterr().err
    assert rows(migrated, tables.Job) == 0


def test_commands_on_an_unmigrated_database_say_so(
    database_url: str, ft06_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo"]) == 1
    assert "run `takt migrate` first" in capsys.readouterr().err
    assert main(["import-jssp", str(ft06_file)]) == 1
    assert "run `takt migrate` first" in capsys.readouterr().err


def test_create_user_reads_the_password_from_a_file(
    migrated: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "password"
    secret.write_text("correct horse battery\n")
    args = ["create-user", "Sam", "--role", "scheduler", "--display-name", "Sam S"]
    assert main([*args, "--password-file", str(secret)]) == 0
    assert "Created user 'sam' (role scheduler" in capsys.readouterr().out
    assert main([*args, "--password-file", str(secret)]) == 1
    assert "taken" in capsys.readouterr().err


def test_create_user_rejects_a_short_password(
    migrated: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "password"
    secret.write_text("short")
    assert main(["create-user", "sam", "--role", "manager", "--password-file", str(secret)]) == 1
    assert "password: must be 8" in capsys.readouterr().err


def test_password_comes_from_piped_stdin_without_its_newline() -> None:
    assert _read_password(None, io.StringIO("piped secret\n")) == "piped secret"


def test_password_is_never_a_plain_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["create-user", "sam", "--role", "admin", "--password", "hunter22"])
    assert exited.value.code == 2


def test_serve_refuses_several_workers_without_redis(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--workers", "2"]) == 1
    assert "REDIS_URL" in capsys.readouterr().err


def _every_parser() -> list[tuple[str, argparse.ArgumentParser]]:
    parser = _parser()
    found = [("takt", parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += [(f"takt {name}", sub) for name, sub in action.choices.items()]
    return found


@pytest.mark.parametrize("name", [name for name, _ in _every_parser()])
def test_every_command_and_option_says_what_it_is_for(name: str) -> None:
    parser = dict(_every_parser())[name]
    undocumented = [
        action.option_strings or [action.dest]
        for action in parser._actions
        if not action.help and not isinstance(action, argparse._HelpAction)
    ]
    assert undocumented == [], f"{name}: no --help text for {undocumented}"


def test_every_command_is_listed_with_its_purpose(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    commands = dict(_every_parser())
    for name in commands:
        assert name.removeprefix("takt").strip() in listing
