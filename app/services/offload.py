"""Heavy, pure computations run off the event loop.

At plant scale a full-plan validation or the wall's KPIs take tens to
hundreds of milliseconds of pure Python. On the event loop that is time no
other request gets, not even `/health`. `offload(fn, ...)` runs such work on a
small pool of threads instead: the loop keeps serving (the interpreter
switches threads every few milliseconds), and at most `THREADS` computations
run at once while the rest wait their turn, so a burst of heavy requests
queues up instead of starving everything else.

Only pure functions of immutable inputs (the domain's `Plan` and friends)
belong here: nothing that touches a session or the loop.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["THREADS", "offload"]

P = ParamSpec("P")
R = TypeVar("R")

THREADS = 2
_pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="takt-compute")


async def offload(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """`fn(*args, **kwargs)` on the compute pool; the caller awaits its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool, functools.partial(fn, *args, **kwargs))
