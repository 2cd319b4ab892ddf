"""The backfill's decisions, against a hub and a change log of the test's own (no I/O)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from app.realtime.backfill import LIMIT, Backfill, Backlog
from app.realtime.hub import RESYNC, Message

CHANNEL = "schedule:1"


@dataclass
class FakeHub:
    degraded: bool = False
    delivered: dict[str, int] = field(default_factory=dict)
    sent: list[Message] = field(default_factory=list)

    def local_channels(self) -> list[str]:
        return [CHANNEL]

    def delivered_revision(self, channel: str) -> int | None:
        return self.delivered.get(channel)

    def deliver_local(self, channel: str, message: Message) -> None:
        self.sent.append(message)
        if isinstance(message.get("revision"), int):
            self.note_delivered(channel, message["revision"])

    def note_delivered(self, channel: str, revision: int) -> None:
        self.delivered[channel] = max(revision, self.delivered.get(channel, revision))


@dataclass
class ChangeLog:
    revision: int = 0
    oldest: int = 1
    fails: bool = False

    def commit(self, count: int = 1) -> None:
        self.revision += count

    async def read(self, channel: str, after: int | None, limit: int) -> Backlog | None:
        if self.fails:
            raise ConnectionRefusedError("the database is away too")
        if channel != CHANNEL:
            return None
        if after is None or self.revision <= after:
            return Backlog(self.revision, [])
        first = max(after + 1, self.oldest)
        revisions = range(first, min(self.revision, first + limit - 1) + 1)
        return Backlog(self.revision, [{"revision": r, "kind": "test"} for r in revisions])


def world(revision: int = 5, *, delivered: int | None = 5) -> tuple[FakeHub, ChangeLog, Backfill]:
    hub, log = FakeHub(), ChangeLog(revision=revision)
    if delivered is not None:
        hub.delivered[CHANNEL] = delivered
    return hub, log, Backfill(hub, log.read)


def revisions(messages: list[Message]) -> list[int | None]:
    return [m.get("revision") for m in messages]


async def test_while_degraded_every_missed_change_is_delivered_in_order() -> None:
    hub, log, backfill = world()
    hub.degraded = True
    log.commit(3)
    await backfill.check(CHANNEL)
    assert revisions(hub.sent) == [6, 7, 8]
    await backfill.check(CHANNEL)  # nothing new: nothing again
    assert revisions(hub.sent) == [6, 7, 8]


async def test_what_the_hub_delivered_meanwhile_is_not_delivered_again() -> None:
    hub, log, backfill = world()
    hub.degraded = True
    log.commit(2)
    hub.deliver_local(CHANNEL, {"revision": 6})  # this instance's own write, delivered locally
    await backfill.check(CHANNEL)
    assert revisions(hub.sent) == [6, 7]


async def test_while_healthy_a_change_gets_one_interval_to_arrive_through_redis() -> None:
    hub, log, backfill = world()
    log.commit()
    await backfill.check(CHANNEL)
    assert hub.sent == []  # maybe still on its way
    hub.deliver_local(CHANNEL, {"revision": 6})  # it was
    log.commit()
    await backfill.check(CHANNEL)
    assert revisions(hub.sent) == [6]
    await backfill.check(CHANNEL)  # 7 never came: lost (another instance could not publish)
    assert revisions(hub.sent) == [6, 7]


async def test_a_channel_never_delivered_on_starts_counting_and_resyncs_only_when_degraded() -> (
    None
):
    hub, _, backfill = world(delivered=None)
    await backfill.check(CHANNEL)
    assert hub.sent == [] and hub.delivered[CHANNEL] == 5

    hub, _, backfill = world(delivered=None)
    hub.degraded = True
    await backfill.check(CHANNEL)
    assert hub.sent == [RESYNC] and hub.delivered[CHANNEL] == 5


@pytest.mark.parametrize("case", ["too many", "log does not reach back"])
async def test_a_gap_the_log_cannot_fill_message_by_message_is_a_resync(case: str) -> None:
    hub, log, backfill = world()
    hub.degraded = True
    if case == "too many":
        log.commit(LIMIT + 5)
    else:
        log.commit(3)
        log.oldest = 7  # revision 6 is no longer in the log
    await backfill.check(CHANNEL)
    assert hub.sent == [RESYNC]
    assert hub.delivered[CHANNEL] == log.revision


async def test_a_failing_database_is_retried_and_does_not_end_the_loop() -> None:
    hub, log, backfill = world()
    hub.degraded = True
    backfill.degraded_every = 0.01
    log.fails = True
    log.commit()
    task = asyncio.create_task(backfill.run())
    await asyncio.sleep(0.05)
    assert not task.done() and hub.sent == []
    log.fails = False
    async with asyncio.timeout(5):
        while not hub.sent:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    task.cancel()
    assert revisions(hub.sent) == [6]


async def test_channels_without_a_change_log_are_left_alone() -> None:
    hub, log, backfill = world()
    hub.degraded = True
    assert await log.read("presence:1", 0, LIMIT) is None
    await backfill.check("presence:1")
    assert hub.sent == []
