from __future__ import annotations

import argparse
import asyncio
import io
import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from app import clock
from app.auth import tokens
from app.auth.api_keys import sign_request, verify_signed_request
from app.cli import _parser, _read_password, main
from app.db import tables
from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.security.crypto import DataCipher
from app.services.context import Actor, Services
from app.settings import Settings


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


def _every_parser(
    name: str = "takt", parser: argparse.ArgumentParser | None = None
) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command and subcommand (`takt api-key create`), each with its parser."""
    parser = parser or _parser()
    found = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                found += _every_parser(f"{name} {sub_name}", sub)
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
        # Subcommands (`takt api-key create`) are listed under their command's --help.
        assert name.removeprefix("takt").strip().split(" ")[0] in listing


# --- the plant admin's commands: api-key, audit, keys, tokens --------------------------------


def services_of(database_url: str) -> Services:
    return Services(settings=Settings(), db=Database(database_url), hub=MemoryHub())


def audit_actions(database_url: str) -> list[str]:
    async def read() -> list[str]:
        db = Database(database_url)
        try:
            async with db.read() as session:
                found = await session.scalars(
                    select(tables.AuditEntry.action).order_by(tables.AuditEntry.id)
                )
                return list(found)
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_api_key_create_prints_the_secret_once_and_list_never_shows_it(
    migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["api-key", "create", "--name", "MES bridge", "--role", "scheduler"]) == 0
    out = capsys.readouterr().out
    key_id = re.search(r"Created API key (tk_[0-9a-f]+) \('MES bridge', role scheduler\)", out)
    secret = re.search(r"Secret \(shown only now.*\): (\S+)", out)
    assert key_id and secret
    assert main(["api-key", "list"]) == 0
    listing = capsys.readouterr().out
    assert key_id[1] in listing and "scheduler" in listing and "active" in listing
    assert "MES bridge" in listing
    assert secret[1] not in listing
    assert audit_actions(migrated) == ["api_key.created"]

    async def signed_in() -> Actor:
        services = services_of(migrated)
        headers = sign_request(key_id[1], secret[1], "GET", "/api/v1/tasks")
        try:
            return await verify_signed_request(
                services=services, authorization=headers["Authorization"],
                timestamp=headers["X-Takt-Timestamp"], method="GET", path="/api/v1/tasks",
                body=b"",
            )  # fmt: skip
        finally:
            await services.db.dispose()

    assert asyncio.run(signed_in()).role == "scheduler"


def test_api_key_create_with_an_expiry_lists_it(
    migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    create = ["api-key", "create", "--name", "audit export", "--role", "manager"]
    before = clock.now()
    assert main([*create, "--expires-days", "30"]) == 0
    after = clock.now()
    assert "role manager, expires in 30 days)." in capsys.readouterr().out
    assert main(["api-key", "list"]) == 0
    listing = capsys.readouterr().out
    days = {(moment + timedelta(days=30)).strftime("%Y-%m-%d") for moment in (before, after)}
    assert any(f"expires {day} " in listing for day in days)


def test_api_key_create_refuses_a_blank_name_an_unknown_role_and_no_lifetime(
    migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["api-key", "create", "--name", "  ", "--role", "admin"]) == 1
    assert "takt api-key create: error: an API key needs a name" in capsys.readouterr().err
    assert main(["api-key", "create", "--name", "x", "--role", "admin", "--expires-days", "0"]) == 1
    assert "expires after 1 day at the soonest" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["api-key", "create", "--name", "x", "--role", "robot"])
    assert exited.value.code == 2
    assert rows(migrated, tables.ApiKey) == 0


def test_api_key_revoke_revokes_once_and_refuses_unknown_ids(
    migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["api-key", "list"]) == 0
    assert "No API keys." in capsys.readouterr().out
    assert main(["api-key", "create", "--name", "wall", "--role", "manager"]) == 0
    key_id = re.findall(r"tk_[0-9a-f]+", capsys.readouterr().out)[0]
    assert main(["api-key", "revoke", key_id]) == 0
    assert f"Revoked API key {key_id}" in capsys.readouterr().out
    assert main(["api-key", "list"]) == 0
    assert "revoked " in capsys.readouterr().out
    for unknown in (key_id, "tk_0000000000000000"):
        assert main(["api-key", "revoke", unknown]) == 1
        assert f"no active API key {unknown!r}" in capsys.readouterr().err
    assert audit_actions(migrated) == ["api_key.created", "api_key.revoked"]


def test_audit_verify_passes_an_intact_chain_and_names_a_tampered_entry(
    migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("first", "second", "third"):
        assert main(["api-key", "create", "--name", name, "--role", "manager"]) == 0
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0
    assert "The audit chain is intact: 3 entries." in capsys.readouterr().out

    async def tamper() -> int:
        db = Database(migrated)
        try:
            async with db.write() as session:
                ids = await session.scalars(
                    select(tables.AuditEntry.id).order_by(tables.AuditEntry.id)
                )
                second = ids.all()[1]
                await session.execute(
                    update(tables.AuditEntry)
                    .where(tables.AuditEntry.id == second)
                    .values(after={"role": "admin", "revoked": False})
                )
                return int(second)
        finally:
            await db.dispose()

    tampered = asyncio.run(tamper())
    assert main(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert f"takt audit verify: error: the audit chain is broken at entry {tampered}:" in err
    assert "(1 entries before it are intact)" in err


def test_audit_verify_on_an_unmigrated_database_says_so(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify"]) == 1
    assert "run `takt migrate` first" in capsys.readouterr().err


def test_keys_rotate_reseals_every_value_with_the_newest_key_once(
    migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    keys_file = tmp_path / "data_keys"
    old, new = secrets.token_hex(32), secrets.token_hex(32)
    keys_file.write_text(old + "\n")
    monkeypatch.setenv("TAKT_DATA_KEYS_FILE", str(keys_file))
    assert main(["demo"]) == 0
    assert main(["api-key", "create", "--name", "MES", "--role", "scheduler"]) == 0
    capsys.readouterr()
    keys_file.write_text(f"{new}\n{old}\n")
    assert main(["keys", "rotate"]) == 0
    out = capsys.readouterr().out
    found = re.search(r"Re-encrypted (\d+) values .*\((\d+) operator contacts, 1 API key", out)
    assert found and int(found[1]) == int(found[2]) + 1 and int(found[2]) > 0
    assert audit_actions(migrated)[-1] == "data_keys.rotated"

    # Sealed with the new key alone now: the old one can leave the file.
    newest = DataCipher([bytes.fromhex(new)])
    for sealed, context in sealed_values(migrated):
        newest.decrypt(sealed, context=context)
    entries = len(audit_actions(migrated))
    assert main(["keys", "rotate"]) == 0
    assert "Re-encrypted 0 values with" in capsys.readouterr().out
    assert len(audit_actions(migrated)) == entries


def sealed_values(database_url: str) -> list[tuple[bytes, bytes]]:
    async def read() -> list[tuple[bytes, bytes]]:
        db = Database(database_url)
        try:
            async with db.read() as session:
                contacts = await session.scalars(
                    select(tables.Operator.contact_encrypted).where(
                        tables.Operator.contact_encrypted.is_not(None)
                    )
                )
                found = [(bytes(sealed), b"") for sealed in contacts if sealed is not None]
                keys = await session.execute(
                    select(tables.ApiKey.secret_encrypted, tables.ApiKey.key_id)
                )
                return found + [(bytes(sealed), key_id.encode()) for sealed, key_id in keys]
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_keys_rotate_refuses_a_missing_file_and_keys_that_open_nothing(
    migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    keys_file = tmp_path / "data_keys"
    monkeypatch.setenv("TAKT_DATA_KEYS_FILE", str(keys_file))
    assert main(["keys", "rotate"]) == 1
    assert "no such data keys file" in capsys.readouterr().err
    assert not keys_file.exists()

    keys_file.write_text(secrets.token_hex(32) + "\n")
    assert main(["api-key", "create", "--name", "MES", "--role", "scheduler"]) == 0
    before = sealed_values(migrated)
    keys_file.write_text(secrets.token_hex(32) + "\n")  # the only key that opened it is gone
    assert main(["keys", "rotate"]) == 1
    err = capsys.readouterr().err
    assert "takt keys rotate: error: the encrypted data of API key tk_" in err
    assert "put back the key" in err
    assert sealed_values(migrated) == before

    keys_file.write_text("not hex\n")
    assert main(["keys", "rotate"]) == 1
    assert "cannot read the data keys" in capsys.readouterr().err


def test_tokens_purge_deletes_expired_and_revoked_refresh_tokens(
    migrated: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password = tmp_path / "password"
    password.write_text("correct horse battery\n")
    user = ["create-user", "sam", "--role", "scheduler", "--password-file", str(password)]
    assert main(user) == 0

    async def sign_in_three_ways() -> None:
        services = services_of(migrated)
        days = services.settings.refresh_token_days
        try:
            sign_in = {"services": services, "username": "sam", "password": "correct horse battery"}
            await tokens.login(**sign_in, now=clock.now() - timedelta(days=days + 1))  # expired
            logged_out = await tokens.login(**sign_in)
            await tokens.logout(services=services, refresh_token=logged_out.refresh_token)
            await tokens.login(**sign_in)  # live
        finally:
            await services.db.dispose()

    asyncio.run(sign_in_three_ways())
    capsys.readouterr()
    assert rows(migrated, tables.RefreshToken) == 3
    assert main(["tokens", "purge"]) == 0
    assert "Deleted 2 expired or revoked refresh tokens." in capsys.readouterr().out
    assert rows(migrated, tables.RefreshToken) == 1
    assert main(["tokens", "purge"]) == 0
    assert "Deleted 0 " in capsys.readouterr().out


def test_tokens_purge_on_an_unmigrated_database_says_so(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tokens", "purge"]) == 1
    assert "run `takt migrate` first" in capsys.readouterr().err


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def plant_database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A migrated database of either kind, as `takt` finds it in its environment."""
    url = str(request.getfixturevalue(f"{request.param}_database_url"))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TAKT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("TAKT_DATA_KEYS_FILE", str(tmp_path / "data_keys"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    return url


def test_admin_commands_on_either_database(
    plant_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys_file = tmp_path / "data_keys"
    keys_file.write_text(secrets.token_hex(32) + "\n")
    for name in ("MES", "wall"):
        assert main(["api-key", "create", "--name", name, "--role", "manager"]) == 0
    revoked = re.findall(r"tk_[0-9a-f]+", capsys.readouterr().out)[-1]
    assert main(["api-key", "revoke", revoked]) == 0
    keys_file.write_text(secrets.token_hex(32) + "\n" + keys_file.read_text())
    assert main(["keys", "rotate"]) == 0
    assert "(0 operator contacts, 2 API key secrets)" in capsys.readouterr().out
    assert main(["tokens", "purge"]) == 0
    assert main(["audit", "verify"]) == 0
    assert "The audit chain is intact: 4 entries." in capsys.readouterr().out

    async def tamper() -> int:
        db = Database(plant_database)
        try:
            async with db.write() as session:
                first = await session.scalar(select(func.min(tables.AuditEntry.id)))
                await session.execute(
                    update(tables.AuditEntry)
                    .where(tables.AuditEntry.id == first)
                    .values(entity_id=tables.AuditEntry.entity_id + 1)
                )
                return int(first or 0)
        finally:
            await db.dispose()

    first = asyncio.run(tamper())
    assert main(["audit", "verify"]) == 1
    assert f"broken at entry {first}: " in capsys.readouterr().err
