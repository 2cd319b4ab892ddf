"""racing.first_to_end: a socket's reader and writer (and a Redis session's loops) end together."""

from __future__ import annotations

import asyncio

import pytest

from app.realtime.racing import first_to_end


async def test_the_first_loop_to_end_ends_the_other_and_its_error_is_raised() -> None:
    cleaned_up = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.set()

    async def failing() -> None:
        await asyncio.sleep(0)
        raise ValueError("the peer went away")

    with pytest.raises(ValueError, match="the peer went away"):
        await first_to_end(forever(), failing())
    assert cleaned_up.is_set()


async def test_cancelling_the_race_cancels_both_loops() -> None:
    started, ended = asyncio.Event(), list[str]()

    async def loop(name: str) -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    race = asyncio.create_task(first_to_end(loop("reader"), loop("writer")))
    async with asyncio.timeout(5):
        await started.wait()
    race.cancel()
    await asyncio.wait([race])
    assert race.cancelled() and sorted(ended) == ["reader", "writer"]
