"""Two loops that live and die together: a socket's reader and writer, a Redis
connection's receiver and heartbeat.

Either one ending (both end only by raising, or by the peer going away) ends
the pair: the other is cancelled and awaited, so nothing keeps running on a
connection that is gone, and the first one's exception is raised again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable


async def first_to_end(*loops: Awaitable[None]) -> None:
    """Run `loops` side by side until one ends; cancel the rest; re-raise what ended it."""
    tasks = [asyncio.ensure_future(loop) for loop in loops]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()  # re-raise Refused / WebSocketDisconnect / a lost connection / a bug
