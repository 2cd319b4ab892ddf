"""The `background_jobs` rows: what the queue has, what each run is doing, what failed.

Bookkeeping, written directly (not a plan change, so no revision and no
audit). Each transition is one conditional UPDATE, so two workers (or a
cancel racing a start, or two sweeps) cannot both win: a run starts only
from `waiting`, and the sweep takes back only a run that is still overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from app import clock
from app.db import tables as t
from app.db.session import Database

STATUSES = ("waiting", "active", "done", "failed", "cancelled")
FINISHED = frozenset({"done", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    kind: str
    payload: dict[str, Any]
    status: str
    priority: int
    attempts: int
    max_retries: int
    timeout_s: float
    backoff_s: float
    cancel_requested: bool
    progress: dict[str, Any] | None
    attempt_log: list[dict[str, Any]]
    error: str | None
    result: dict[str, Any] | None
    created_by: int | None
    created_at: datetime
    due_at: datetime
    started_at: datetime | None
    worker: str | None
    heartbeat_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _record(row: t.BackgroundRun) -> RunRecord:
    return RunRecord(**{name: getattr(row, name) for name in RunRecord.__slots__})


async def create(
    db: Database,
    *,
    run_id: str,
    kind: str,
    payload: dict[str, Any],
    priority: int,
    timeout_s: float,
    max_retries: int,
    backoff_s: float,
    created_by: int | None,
) -> None:
    now = clock.now()
    async with db.write() as session:
        session.add(
            t.BackgroundRun(
                id=run_id,
                kind=kind,
                payload=payload,
                status="waiting",
                priority=priority,
                attempts=0,
                max_retries=max_retries,
                timeout_s=timeout_s,
                backoff_s=backoff_s,
                cancel_requested=False,
                attempt_log=[],
                created_by=created_by,
                created_at=now,
                due_at=now,
            )
        )


async def get(db: Database, run_id: str) -> RunRecord | None:
    async with db.read() as session:
        row = await session.get(t.BackgroundRun, run_id)
        return None if row is None else _record(row)


async def start(db: Database, run_id: str, *, worker: str) -> RunRecord | None:
    """Waiting → active (one more attempt); None when it is not waiting (cancelled, gone)."""
    now = clock.now()
    async with db.write() as session:
        changed = await session.execute(
            update(t.BackgroundRun)
            .where(t.BackgroundRun.id == run_id, t.BackgroundRun.status == "waiting")
            .values(
                status="active",
                attempts=t.BackgroundRun.attempts + 1,
                started_at=now,
                worker=worker,
                heartbeat_at=now,
            )
        )
        if changed.rowcount == 0:  # type: ignore[attr-defined]
            return None
        row = await session.get(t.BackgroundRun, run_id, populate_existing=True)
        assert row is not None
        return _record(row)


async def save_progress(
    db: Database, run_id: str, progress: dict[str, Any] | None, *, beat: bool = False
) -> bool:
    """Store the progress (when given) and a heartbeat (when asked); was the run asked to stop?"""
    values: dict[str, Any] = {}
    if progress is not None:
        values["progress"] = progress
    if beat:
        values["heartbeat_at"] = clock.now()
    async with db.write() as session:
        if values:
            await session.execute(
                update(t.BackgroundRun).where(t.BackgroundRun.id == run_id).values(**values)
            )
        asked = await session.scalar(
            select(t.BackgroundRun.cancel_requested).where(t.BackgroundRun.id == run_id)
        )
        return bool(asked)


async def finish(
    db: Database,
    run_id: str,
    *,
    status: str,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    attempt: dict[str, Any] | None = None,
    retry_in_s: float = 0.0,
    worker: str | None = None,
) -> RunRecord | None:
    """Done, failed (the dead-letter record), cancelled, or back to waiting for a retry.

    With `worker`, only while that worker still runs the run: one the sweep
    took back (declared dead, queued again or failed) keeps what the sweep
    decided, and its late answer is dropped (None).
    """
    async with db.write() as session:
        row = await session.get(t.BackgroundRun, run_id, with_for_update=True)
        if row is None:
            return None
        if worker is not None and (row.status != "active" or row.worker != worker):
            return None
        row.status = status
        if result is not None:
            row.result = result
        if error is not None:
            row.error = error
        if attempt is not None:
            row.attempt_log = [*row.attempt_log, attempt]
        now = clock.now()
        if status == "waiting":
            row.due_at = now + timedelta(seconds=retry_in_s)
            row.finished_at = None
        else:
            row.finished_at = now
        return _record(row)


async def cancel(db: Database, run_id: str) -> RunRecord | None:
    """A waiting run is cancelled at once; an active one is asked to stop."""
    async with db.write() as session:
        row = await session.get(t.BackgroundRun, run_id, with_for_update=True)
        if row is None:
            return None
        if row.status == "waiting":
            row.status = "cancelled"
            row.finished_at = clock.now()
        elif row.status == "active":
            row.cancel_requested = True
        return _record(row)


async def counts(db: Database) -> dict[str, int]:
    async with db.read() as session:
        rows = await session.execute(
            select(t.BackgroundRun.status, func.count()).group_by(t.BackgroundRun.status)
        )
        found = {status: int(n) for status, n in rows}
    return {status: found.get(status, 0) for status in STATUSES}


async def oldest_waiting_since(db: Database) -> datetime | None:
    """Since when the longest-waiting run that is due has waited (None: none waits)."""
    run = t.BackgroundRun
    async with db.read() as session:
        found = await session.scalar(
            select(func.min(run.due_at)).where(run.status == "waiting", run.due_at <= clock.now())
        )
    return None if found is None else clock.as_utc(found)


async def failed(db: Database, *, limit: int, offset: int = 0) -> tuple[list[RunRecord], int]:
    """The dead-letter record: failed runs with their error, newest first."""
    query = select(t.BackgroundRun).where(t.BackgroundRun.status == "failed")
    async with db.read() as session:
        total = await session.scalar(select(func.count()).select_from(query.subquery()))
        rows = await session.scalars(
            query.order_by(t.BackgroundRun.finished_at.desc()).limit(limit).offset(offset)
        )
        return [_record(row) for row in rows], int(total or 0)


# --- the sweep (app.background.sweep) ---------------------------------------------------------


async def overdue(
    db: Database, *, due_before: datetime, silent_since: datetime
) -> tuple[list[RunRecord], list[RunRecord]]:
    """Runs waiting although their message was due before `due_before`, and active runs
    with no heartbeat since `silent_since`; each highest priority first."""
    run = t.BackgroundRun
    order = (run.priority.desc(), run.created_at)
    async with db.read() as session:
        waiting = await session.scalars(
            select(run).where(run.status == "waiting", run.due_at < due_before).order_by(*order)
        )
        waiting_records = [_record(row) for row in waiting]
        active = await session.scalars(
            select(run)
            .where(run.status == "active", run.heartbeat_at < silent_since)
            .order_by(*order)
        )
        return waiting_records, [_record(row) for row in active]


async def requeue_lost(db: Database, run_id: str, *, due_before: datetime) -> bool:
    """Still waiting and overdue → due now (its message is queued again); False if not."""
    run = t.BackgroundRun
    async with db.write() as session:
        changed = await session.execute(
            update(run)
            .where(run.id == run_id, run.status == "waiting", run.due_at < due_before)
            .values(due_at=clock.now())
        )
        return bool(changed.rowcount)  # type: ignore[attr-defined]


async def abandon(
    db: Database,
    found: RunRecord,
    *,
    silent_since: datetime,
    status: str,
    error: str,
    attempt: dict[str, Any],
) -> bool:
    """Still active and silent → waiting for another try, or failed; False if not."""
    run = t.BackgroundRun
    now = clock.now()
    values: dict[str, Any] = {
        "status": status,
        "error": error,
        # Only the worker that died wrote this row's log, so appending to what was read is safe.
        "attempt_log": [*found.attempt_log, attempt],
    }
    if status == "waiting":
        values["due_at"] = now
    else:
        values["finished_at"] = now
    async with db.write() as session:
        changed = await session.execute(
            update(run)
            .where(run.id == found.id, run.status == "active", run.heartbeat_at < silent_since)
            .values(**values)
        )
        return bool(changed.rowcount)  # type: ignore[attr-defined]
