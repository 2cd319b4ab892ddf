"""A copy of the plant's database taken while Takt runs, and putting one back.

    backup(url, Path("takt-….sqlite3"))      # SQLite: the online backup API
    backup(url, Path("takt-….dump"))         # PostgreSQL: pg_dump, custom format
    restore(url, Path(...))                  # into an empty database only

Both copies are consistent snapshots: SQLite's backup copies every page
under one read transaction (writers wait, readers do not), pg_dump reads
everything in one repeatable-read transaction. A write the app acknowledged
before the backup began is in it; one acknowledged after is not, and nothing
is ever half there. The copy is written beside its destination and renamed
into place when complete, so a crash leaves no truncated backup behind.

A restore refuses a database that holds any table: it never mixes two plants
or overwrites one. Personal data in the copy is sealed with the data keys
(`TAKT_DATA_KEYS_FILE`), which are not in it: keep them apart, as secrets.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import URL, make_url

__all__ = ["BackupFailed", "backup", "kind_of", "restore", "tables_in"]

# pg_dump / pg_restore may take this long at most (a large plant dumps in seconds).
_TOOL_TIMEOUT_S = 3600


class BackupFailed(Exception):
    """The copy could not be made or put back; the message says why."""


def kind_of(database_url: str) -> str:
    """ "sqlite" or "postgresql"."""
    backend = make_url(database_url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupFailed(f"backups know SQLite and PostgreSQL, not {backend}")
    return backend


def backup(database_url: str, to: Path, *, pg_bindir: Path | None = None) -> None:
    """A consistent copy of the database at `to` (which must not exist yet)."""
    if to.exists():
        raise BackupFailed(f"{to} exists already: a backup never overwrites a file")
    to.parent.mkdir(parents=True, exist_ok=True)
    partial = to.with_name(f".{to.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        if kind_of(database_url) == "sqlite":
            _sqlite_copy(_sqlite_path(database_url), partial)
        else:
            url = make_url(database_url)
            _run_tool(pg_bindir, "pg_dump", url, "--format=custom", f"--file={partial}")
        partial.replace(to)
    finally:
        partial.unlink(missing_ok=True)


def restore(database_url: str, source: Path, *, pg_bindir: Path | None = None) -> None:
    """Put the backup at `source` into the (empty) database of `database_url`."""
    if not source.is_file():
        raise BackupFailed(f"{source}: no such backup file")
    if found := tables_in(database_url, pg_bindir=pg_bindir):
        raise BackupFailed(
            f"the database is not empty ({len(found)} tables, e.g. {sorted(found)[0]}): "
            "a restore goes into an empty database only"
        )
    if kind_of(database_url) == "sqlite":
        _check_sqlite_backup(source)
        _sqlite_copy(source, _sqlite_path(database_url))
        return
    url = make_url(database_url)
    # One transaction: a restore that fails half way leaves the database empty.
    _run_tool(
        pg_bindir,
        "pg_restore",
        url,
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        str(source),
    )


def tables_in(database_url: str, *, pg_bindir: Path | None = None) -> set[str]:
    """The tables the database holds (none in an empty one; a missing SQLite file is empty)."""
    if kind_of(database_url) == "sqlite":
        path = _sqlite_path(database_url)
        if not path.exists():
            return set()
        with _closing(sqlite3.connect(path)) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {name for (name,) in rows}
    url = make_url(database_url)
    query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    listed = _run_tool(
        pg_bindir, "psql", url, "--no-psqlrc", "--tuples-only", "--no-align", "-c", query
    )
    return {line for line in listed.splitlines() if line}


# --- SQLite ------------------------------------------------------------------------------------


def _sqlite_path(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise BackupFailed("an in-memory SQLite database has nothing to back up")
    return Path(database)


def _sqlite_copy(source: Path, to: Path) -> None:
    if not source.is_file():
        raise BackupFailed(f"{source}: no such database file")
    try:
        with _closing(sqlite3.connect(source)) as src, _closing(sqlite3.connect(to)) as dst:
            src.backup(dst)
    except sqlite3.Error as error:
        raise BackupFailed(f"SQLite could not copy {source}: {error}") from None


def _check_sqlite_backup(source: Path) -> None:
    try:
        with _closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as db:
            (verdict,) = db.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.DatabaseError as error:
        raise BackupFailed(f"{source} is not a SQLite backup: {error}") from None
    if verdict != "ok":
        raise BackupFailed(f"{source} is damaged: {verdict}")


class _closing:
    """sqlite3's connection as a context manager that also closes it."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        return self.connection

    def __exit__(self, *_: object) -> None:
        self.connection.close()


# --- PostgreSQL ----------------------------------------------------------------------------------


def _run_tool(pg_bindir: Path | None, tool: str, url: URL, *args: str) -> str:
    """Run a PostgreSQL client tool on `url`'s database; its output. The password goes
    through the environment, never the command line (other users see that)."""
    program = str(pg_bindir / tool) if pg_bindir else shutil.which(tool)
    if program is None or not Path(program).exists():
        raise BackupFailed(
            f"{tool} was not found: install the PostgreSQL client tools "
            "(or name their directory in TAKT_PG_BINDIR)"
        )
    env = {**os.environ, "PGPASSWORD": url.password or "", "PGCONNECT_TIMEOUT": "10"}
    if url.password is None:
        env.pop("PGPASSWORD")
    target = f"--dbname={_libpq_url(url)}"
    try:
        done = subprocess.run(
            [program, target, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=_TOOL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BackupFailed(f"{tool} did not finish within {_TOOL_TIMEOUT_S} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise BackupFailed(f"{tool} failed: {last}")
    return done.stdout


def _libpq_url(url: URL) -> str:
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False)
