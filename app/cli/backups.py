"""`takt backup` and `takt restore`: the database to a file while Takt runs, and back.

    takt backup                       # var/backups/takt-20261206T1400Z.sqlite3 (or .dump)
    takt backup --to /mnt/backups/takt.dump
    takt restore FILE                 # into an empty database; then checks the audit chain

How (and how often) is in docs/operations.md, "Backups and restore".
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app import clock
from app.cli.common import CommandFailed, add_command, services_for, shown
from app.db import tables
from app.db.backup import BackupFailed, backup, kind_of, restore
from app.db.plan_queries import schedule_revision
from app.settings import Settings

_SUFFIX = {"sqlite": "sqlite3", "postgresql": "dump"}


def add_commands(commands: Any) -> None:
    made = add_command(commands, "backup", _backup, "copy the database to a file while Takt runs")
    made.add_argument(
        "--to",
        type=Path,
        help="the backup file, which must not exist (default: backups/ in the var directory)",
    )
    put = add_command(
        commands, "restore", _restore, "put a backup into an empty database and check it"
    )
    put.add_argument("file", metavar="FILE", type=Path, help="a file `takt backup` wrote")


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    url = settings.database_url
    try:
        kind = kind_of(url)
        stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
        to = args.to or settings.var_dir / "backups" / f"takt-{stamp}.{_SUFFIX[kind]}"
        backup(url, to, pg_bindir=settings.pg_bindir)
    except BackupFailed as error:
        raise CommandFailed(str(error)) from None
    print(f"Backed up {shown(url)} to {to} ({_size(to.stat().st_size)}).")
    return 0


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    url = settings.database_url
    try:
        restore(url, args.file, pg_bindir=settings.pg_bindir)
    except BackupFailed as error:
        raise CommandFailed(str(error)) from None
    revision, tasks, chain = asyncio.run(_what_came_back(settings))
    if not chain.intact:
        raise CommandFailed(
            f"restored {args.file}, but its audit chain is broken at entry {chain.broken_at}: "
            "the backup was changed outside Takt"
        )
    entries = f"{chain.entries} {'entry' if chain.entries == 1 else 'entries'}"
    print(
        f"Restored {args.file} into {shown(url)}: revision {revision}, {tasks} tasks; "
        f"the audit chain is intact ({entries})."
    )
    return 0


async def _what_came_back(settings: Settings) -> tuple[int, int, Any]:
    from app.services.audit import verify_chain

    async with services_for(settings) as services:
        async with services.db.read() as session:
            revision = await schedule_revision(session, await services.live_schedule_id())
            tasks = int(await session.scalar(select(func.count()).select_from(tables.Task)) or 0)
        return revision, tasks, await verify_chain(services)


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024**2:
        return f"{count / 1024:.1f} KB"
    return f"{count / 1024**2:.1f} MB"
