"""Waiting for an optimizer run's first plan: asked once, answered as soon as it stands.

    run = await once_planned(services=s, actor=a, run_id=r, within_s=1.5)

A scheduler who presses Optimize waits for the first plan; polling for it
from the browser costs a request, a render and up to a poll interval per
look. Instead the panel asks once and the answer waits here (at most
`within_s`) until the run's stored progress carries a plan, the run ends,
or the time is up — then the panel shows what there is and asks again. The
run's record is the truth every instance shares (the worker may be another
process), so this looks at it every `LOOK_EVERY_S`: a small indexed read.
"""

from __future__ import annotations

import asyncio
import time

from app.services.context import Actor, Services
from app.services.optimizer_runs import OptimizationRun, run_status

__all__ = ["LOOK_EVERY_S", "has_plan", "once_planned"]

LOOK_EVERY_S = 0.05


def has_plan(run: OptimizationRun) -> bool:
    """The run has found a plan (its progress counts one), or will find none (it ended)."""
    return bool(run.progress.get("solutions")) or run.status not in ("queued", "running")


async def once_planned(
    *, services: Services, actor: Actor, run_id: str, within_s: float
) -> OptimizationRun:
    """The run's status once it has a plan or has ended, or as it is after `within_s`."""
    until = time.monotonic() + within_s
    while True:
        run = await run_status(services=services, actor=actor, run_id=run_id)
        if has_plan(run) or time.monotonic() >= until:
            return run
        await asyncio.sleep(LOOK_EVERY_S)
