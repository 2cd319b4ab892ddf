"""`plan_totals`: the board's two counts (on the plan, waiting), asked on every live change.

Waiting is what the unfiltered tray lists: not done and not on the plan. The
counts come from one statement; they must agree with the tray and the plan.
"""

from __future__ import annotations

from pathlib import Path

from servers import load_demo
from sqlalchemy import func, select, update

from app.db import tables
from app.db.board_queries import BoardFilter, plan_totals, unscheduled_tasks
from app.db.session import Database
from app.domain.plan import TaskStatus


async def counted(db: Database, schedule_id: int) -> tuple[int, int]:
    """The same two counts the long way: the plan's rows, and the tray's own total."""
    async with db.read() as session:
        on_plan = await session.scalar(
            select(func.count())
            .select_from(tables.Assignment)
            .where(tables.Assignment.schedule_id == schedule_id)
        )
        _, waiting = await unscheduled_tasks(
            session, schedule_id, filters=BoardFilter(), capabilities=None, limit=1, offset=0
        )
    return int(on_plan or 0), waiting


async def test_the_totals_are_the_plan_and_the_tray(database_url: str, tmp_path: Path) -> None:
    load_demo(database_url, tmp_path)
    db = Database(database_url)
    try:
        async with db.read() as session:
            schedule_id = await session.scalar(select(func.min(tables.Schedule.id)))
            placed = await session.scalar(
                select(tables.Assignment.task_id).where(
                    tables.Assignment.schedule_id == schedule_id
                )
            )
            waiting = select(tables.Task.id).where(
                tables.Task.status != TaskStatus.DONE,
                tables.Task.id.not_in(select(tables.Assignment.task_id)),
            )
            unplaced = list((await session.execute(waiting.limit(2))).scalars())
        assert schedule_id is not None and placed is not None and len(unplaced) == 2
        async with db.read() as session:
            before = await plan_totals(session, schedule_id)
        assert before == await counted(db, schedule_id)
        assert before[0] > 0 and before[1] > 0

        # A waiting task done leaves the tray; a placed task done stays on the plan.
        async with db.write() as session:
            done = [unplaced[0], placed]
            await session.execute(
                update(tables.Task).where(tables.Task.id.in_(done)).values(status="done")
            )
        async with db.read() as session:
            after = await plan_totals(session, schedule_id)
        assert after == await counted(db, schedule_id)
        assert after == (before[0], before[1] - 1)
    finally:
        await db.dispose()
