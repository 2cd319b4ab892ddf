"""Keeping what a plant must keep, and no longer.

    await run_retention(services=s, actor=SYSTEM)     # all of it, by the settings' ages
    await archive_audit(services=s, actor=SYSTEM, before=cut, into=folder)
    await compact_change_log(services=s, actor=SYSTEM, before=cut)
    await purge_finished_runs(services=s, actor=SYSTEM, before=cut)

- **The audit trail** stays in the database for `TAKT_AUDIT_KEEP_DAYS` (at
  least a year); older entries move, in chain order and in stretches of
  `AUDIT_STRETCH`, to gzip'd JSON-line files in the archive folder
  (`app/db/audit_archive.py`), each recorded in `audit_archives` with its
  first link, last hash and the file's sha256. The chain still verifies
  across the cut (`services.audit.verify_chain`), and the files on their own.
  The newest entry always stays: the next change chains onto it.
- **The change log** (what boards resume from) keeps `TAKT_CHANGE_LOG_KEEP_DAYS`
  and never less than the feed's window (`TAKT_CHANGE_FEED_WINDOW`
  revisions); a client further behind reloads, as it does today.
- **Finished background runs** (done, cancelled, failed: the dead letters)
  go after `TAKT_FINISHED_RUNS_KEEP_DAYS`.
- **Ended sessions** (logged out, ended, expired) and dead refresh tokens go
  after `TAKT_ENDED_SESSIONS_KEEP_DAYS`.
- **Finished jobs** (every task done) move to archive files
  `TAKT_FINISHED_JOBS_KEEP_DAYS` after their last task ended
  (`services.job_archive`).

Each takes the schedule's row lock first (`write_path.upkeep`), so two
workers never archive the same stretch, and writes one audit entry saying
what it did. The queue's sweep runs `when_due` every
`TAKT_RETENTION_EVERY_HOURS`; `takt retention run` runs it by hand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select

from app import clock
from app.db import tables as t
from app.db.audit_archive import write_entries
from app.services.context import SYSTEM, Actor, Services
from app.services.errors import StateConflict
from app.services.job_archive import archive_finished_jobs
from app.services.write_path import GENESIS_HASH, upkeep

__all__ = [
    "AUDIT_STRETCH",
    "Retention",
    "archive_audit",
    "archive_folder",
    "compact_change_log",
    "purge_ended_sessions",
    "purge_finished_runs",
    "run_retention",
    "when_due",
]

# Audit entries per archive file (and per transaction holding the schedule's lock).
AUDIT_STRETCH = 20_000
_FINISHED = ("done", "cancelled", "failed")


@dataclass(frozen=True, slots=True)
class Retention:
    archived_entries: int
    archive_files: tuple[str, ...]
    change_log_rows: int
    finished_runs: int
    archived_jobs: int = 0
    job_files: tuple[str, ...] = ()
    ended_sessions: int = 0


def archive_folder(services: Services) -> Path:
    settings = services.settings
    return settings.archive_dir or settings.var_dir / "archive"


async def run_retention(*, services: Services, actor: Actor = SYSTEM) -> Retention:
    settings = services.settings
    now = clock.now()
    archived, files = await archive_audit(
        services=services,
        actor=actor,
        before=now - timedelta(days=settings.audit_keep_days),
        into=archive_folder(services),
    )
    changes = await compact_change_log(
        services=services, actor=actor, before=now - timedelta(days=settings.change_log_keep_days)
    )
    runs = await purge_finished_runs(
        services=services,
        actor=actor,
        before=now - timedelta(days=settings.finished_runs_keep_days),
    )
    sessions = await purge_ended_sessions(
        services=services,
        actor=actor,
        before=now - timedelta(days=settings.ended_sessions_keep_days),
    )
    jobs, job_files = await archive_finished_jobs(
        services=services,
        actor=actor,
        before=now - timedelta(days=settings.finished_jobs_keep_days),
        into=archive_folder(services),
    )
    return Retention(archived, tuple(files), changes, runs, jobs, tuple(job_files), sessions)


def when_due(services: Services) -> Callable[[], Awaitable[Retention | None]]:
    """For the queue's sweep, which calls it every round: retention at once, then again
    once `TAKT_RETENTION_EVERY_HOURS` have passed (in this process)."""
    last: list[float] = []

    async def chore() -> Retention | None:
        every_s = services.settings.retention_every_hours * 3600
        if last and time.monotonic() - last[0] < every_s:
            return None
        last[:] = [time.monotonic()]
        return await run_retention(services=services)

    return chore


# --- the audit trail ---------------------------------------------------------------------------


async def archive_audit(
    *, services: Services, actor: Actor, before: datetime, into: Path
) -> tuple[int, list[str]]:
    """Move the entries older than `before` to files in `into`; how many, and the files."""
    total, files = 0, []
    async with services.db.read() as session:
        # The newest entry now stays (the next change chains onto it), and so does every
        # entry written from here on, this run's own among them.
        newest = await session.scalar(select(func.max(t.AuditEntry.id)))
    if newest is None:
        return 0, []
    while (stretch := await _archive_stretch(services, actor, before, into, newest)) is not None:
        total += stretch[0]
        files.append(stretch[1])
    return total, files


async def _archive_stretch(
    services: Services, actor: Actor, before: datetime, into: Path, newest: int
) -> tuple[int, str] | None:
    ae, archive = t.AuditEntry, t.AuditArchive
    async with upkeep(services, actor, "audit.archived") as work:
        session = work.session
        # Everything up to the last entry older than `before`, in id (chain) order:
        # a stretch without holes, whatever the clocks of the instances said.
        cut = await session.scalar(select(func.max(ae.id)).where(ae.at < before, ae.id < newest))
        if cut is None:
            return None
        rows = list(
            (
                await session.execute(
                    select(ae).where(ae.id <= cut).order_by(ae.id).limit(AUDIT_STRETCH)
                )
            ).scalars()
        )
        if not rows:
            return None
        last = await session.scalar(select(archive).order_by(archive.last_entry_id.desc()).limit(1))
        if rows[0].prev_hash != (GENESIS_HASH if last is None else last.last_hash):
            raise StateConflict(
                "the audit trail does not continue the last archive: nothing was archived; "
                "run `takt audit verify` to find where it breaks"
            )
        name = f"audit-{rows[0].id:012d}-{rows[-1].id:012d}.jsonl.gz"
        digest = await asyncio.to_thread(write_entries, into / name, [_as_line(r) for r in rows])
        session.add(
            archive(
                archived_at=clock.now(),
                first_entry_id=rows[0].id,
                last_entry_id=rows[-1].id,
                entries=len(rows),
                first_prev_hash=rows[0].prev_hash,
                last_hash=rows[-1].hash,
                file_name=name,
                file_sha256=digest,
            )
        )
        await session.execute(delete(ae).where(ae.id >= rows[0].id, ae.id <= rows[-1].id))
        work.done = {
            "entries": len(rows),
            "first_entry_id": rows[0].id,
            "last_entry_id": rows[-1].id,
            "file": name,
        }
    return len(rows), name


def _as_line(entry: t.AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor_id": entry.actor_id,
        "action": entry.action,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "revision": entry.revision,
        "before": entry.before,
        "after": entry.after,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


# --- the change log and finished runs ----------------------------------------------------------


async def compact_change_log(*, services: Services, actor: Actor, before: datetime) -> int:
    """Delete change-log rows older than `before`, keeping the feed's window; how many."""
    c = t.ChangeLogEntry
    async with upkeep(services, actor, "change_log.compacted") as work:
        session = work.session
        live = await services.live_schedule_id()
        newest = await session.scalar(select(t.Schedule.revision).where(t.Schedule.id == live))
        keep_from = (newest or 0) - services.settings.change_feed_window
        gone = await session.execute(
            delete(c).where(c.schedule_id == live, c.created_at < before, c.revision <= keep_from)
        )
        count = int(gone.rowcount)  # type: ignore[attr-defined]
        if count:
            work.done = {"rows": count, "before": before.isoformat()}
    return count


async def purge_finished_runs(*, services: Services, actor: Actor, before: datetime) -> int:
    """Delete background runs that finished before `before`; how many."""
    bj = t.BackgroundRun
    async with upkeep(services, actor, "background_runs.purged") as work:
        gone = await work.session.execute(
            delete(bj).where(bj.status.in_(_FINISHED), bj.finished_at < before)
        )
        count = int(gone.rowcount)  # type: ignore[attr-defined]
        if count:
            work.done = {"runs": count, "before": before.isoformat()}
    return count


async def purge_ended_sessions(*, services: Services, actor: Actor, before: datetime) -> int:
    """Delete session records that ended or expired before `before`, and refresh tokens
    past their expiry or revoked before it; how many sessions went. Neither can sign
    anyone in again; they are kept a while for `takt sessions list` and the audit."""
    ps, rt = t.PageSessionRecord, t.RefreshToken
    async with upkeep(services, actor, "sessions.purged") as work:
        gone = await work.session.execute(
            delete(ps).where(or_(ps.ended_at < before, ps.expires_at < before))
        )
        tokens = await work.session.execute(
            delete(rt).where(or_(rt.expires_at < before, rt.revoked_at < before))
        )
        count = int(gone.rowcount)  # type: ignore[attr-defined]
        dropped = int(tokens.rowcount)  # type: ignore[attr-defined]
        if count or dropped:
            work.done = {"sessions": count, "refresh_tokens": dropped, "before": before.isoformat()}
    return count
