"""Verifying the audit trail on the queue, for the admin page.

    run_id = await start_check(services=s, actor=a)
    found = await check_state(services=s, actor=a, run_id=run_id)

Verifying recomputes every hash of the trail (and of its archive files):
millions of entries take longer than a page request may (a year of a busy
plant), so the page starts a run on the queue and watches its progress,
as the board watches a bulk move. `takt audit verify` does the same in the
foreground.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from app.background.queue import ActiveRun
from app.db import tables as t
from app.services.access import require
from app.services.audit import verify_archives
from app.services.background import queue_of, run_actor, run_of_kind
from app.services.context import Actor, Services
from app.services.retention import archive_folder

KIND = "audit.verify"
# Checking is read-only and someone is waiting, but it may be long: after bulk edits.
PRIORITY = 5
TIMEOUT_S = 3 * 3600


@dataclass(frozen=True, slots=True)
class CheckState:
    run_id: str
    status: str  # the queue's: waiting, active, done, failed, cancelled
    done: int
    total: int
    # When it has finished: what the check found (ChainCheck's fields), or why it failed.
    result: dict[str, Any] | None
    error: str | None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "cancelled")

    @property
    def percent(self) -> int:
        return 100 if self.finished else min(99, self.done * 100 // max(1, self.total))


async def start_check(*, services: Services, actor: Actor) -> str:
    require(actor, "audit.read")
    async with services.db.read() as session:
        total = int(await session.scalar(select(func.count()).select_from(t.AuditEntry)) or 0)
    return await queue_of(services).enqueue(
        KIND,
        {"actor": run_actor(actor), "total": total},
        priority=PRIORITY,
        timeout_s=TIMEOUT_S,
        max_retries=0,
        created_by=actor.user_id,
    )


async def check_state(*, services: Services, actor: Actor, run_id: str) -> CheckState:
    require(actor, "audit.read")
    record = await run_of_kind(services, run_id, KIND, entity="audit check")
    progress = record.progress or {}
    total = int(record.payload.get("total", 0))
    return CheckState(
        run_id=run_id,
        status=record.status,
        done=int(progress.get("done", 0)),
        total=int(progress.get("total", total)),
        result=record.result,
        error=record.error,
    )


async def run_check(services: Services, run: ActiveRun) -> dict[str, Any]:
    total = int(run.payload.get("total", 0))

    def report(done: int) -> None:
        run.report({"done": done, "total": max(total, done)})

    check = await verify_archives(services, archive_folder(services), report)
    return {
        "intact": check.intact,
        "entries": check.entries,
        "broken_at": check.broken_at,
        "archived": check.archived,
        "archive_files": check.archive_files,
        "archive_problem": check.archive_problem,
    }
