"""The per-connection feed logic, in-process, with a stand-in for the board's renderer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from clocks import PlantTime
from live_world import Plant, build_plant

from app.db.session import Database
from app.realtime.change_messages import BULK_TASKS, touched_tasks
from app.realtime.feed import LATE_TICK, Feed
from app.realtime.feeds import Listeners
from app.realtime.hub import RESYNC, MemoryHub
from app.realtime.shared_render import SharedRenders
from app.services.board_view import BoardView
from app.services.context import Actor, Services
from app.services.errors import Forbidden
from app.services.write_path import change, schedule_channel
from app.settings import Settings
from app.web.live_fragments import FRAGMENTS

ANNA = Actor(user_id=1, role="scheduler")
# The stand-in renderer draws no time axis: any window of the clock's today will do.
VIEW = BoardView(start=PlantTime.current().day())


class Renderer:
    """Records what the feed asked for; its HTML says the same."""

    def __init__(self, *, fail_first: bool = False) -> None:
        self.calls: list[tuple[set[int], int]] = []
        self.rows: list[frozenset[tuple[str, int]]] = []
        self.refreshes: list[int | None] = []
        # The first render raises, as with the database away.
        self.failures = [ConnectionRefusedError("the database is away")] if fail_first else []

    async def __call__(
        self,
        services: Services,
        actor: Actor,
        view: BoardView,
        task_ids: set[int],
        revision: int,
        rows: frozenset[tuple[str, int]] = frozenset(),
    ) -> str:
        if self.failures:
            raise self.failures.pop()
        self.calls.append((set(task_ids), revision))
        self.rows.append(rows)
        return f"<i data-tasks='{sorted(task_ids)}' data-revision='{revision}'></i>"

    async def refresh(
        self, services: Services, actor: Actor, view: BoardView, revision: int | None = None
    ) -> str:
        self.refreshes.append(revision)
        return f"<main id='board-main' data-revision='{revision}'></main>"


@pytest.fixture
async def services(sqlite_database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(database_url=sqlite_database_url, var_dir=tmp_path)
    services = Services(settings=settings, db=Database(sqlite_database_url), hub=MemoryHub())
    yield services
    await services.db.dispose()


@pytest.fixture
async def world(services: Services) -> Plant:
    return await build_plant(services)


async def touch(services: Services, *task_ids: int, entity: str = "tasks") -> int:
    """A committed change (through the one write path) touching `task_ids`."""
    async with change(services, ANNA, "test.touch") as tx:
        tx.touch(entity, *task_ids)
    assert tx.revision is not None
    return tx.revision


def feed_for(
    services: Services, renderer: Renderer, revision: int, shared: SharedRenders | None = None
) -> Feed:
    """A board's feed; with `shared`, rendering through it and ahead as the app's do."""
    return Feed(
        services=services,
        actor=ANNA,
        view=VIEW,
        render=renderer if shared is None else shared.render,
        refresh=renderer.refresh,
        revision=revision,
        fragments=FRAGMENTS,
        ahead=None if shared is None else shared.ahead,
    )


def message(revision: int, *tasks: int, **entities: list[int]) -> dict[str, object]:
    return {"revision": revision, "kind": "test", "entities": {"tasks": list(tasks), **entities}}


async def test_operators_are_refused(services: Services, world: Plant) -> None:
    with pytest.raises(Forbidden):
        Feed(
            services=services,
            actor=Actor(user_id=9, role="operator", operator_id=world.olga),
            view=VIEW,
            render=Renderer(),
            revision=0,
        )


async def test_catch_up_renders_the_union_of_what_changed_since(
    services: Services, world: Plant
) -> None:
    cut, drill, deburr = world.tasks
    since = await touch(services, cut)
    await touch(services, drill)
    newest = await touch(services, deburr, drill)
    renderer = Renderer()
    feed = feed_for(services, renderer, since)
    update = await feed.catch_up(since)
    assert update is not None and update.revision == newest
    assert renderer.calls == [({drill, deburr}, newest)]
    assert feed.revision == newest
    assert await feed.catch_up(newest) is None


async def test_a_burst_of_messages_is_rendered_once(services: Services, world: Plant) -> None:
    cut, drill, _ = world.tasks
    base = await touch(services, cut)
    renderer = Renderer()
    feed = feed_for(services, renderer, base)
    feed.note(message(base + 1, cut))
    feed.note(message(base + 2, drill))
    feed.note(message(base + 3, cut))
    [update] = await feed.next_updates()
    assert renderer.calls == [({cut, drill}, base + 3)]
    assert update.revision == base + 3
    assert await feed.next_updates() == []


async def test_messages_already_sent_are_not_sent_again(services: Services, world: Plant) -> None:
    renderer = Renderer()
    feed = feed_for(services, renderer, 5)
    feed.note(message(4, world.tasks[0]))
    feed.note(message(5, world.tasks[0]))
    assert await feed.next_updates() == []
    assert renderer.calls == []


async def test_a_gap_in_the_revisions_is_filled_from_the_change_log(
    services: Services, world: Plant
) -> None:
    cut, drill, deburr = world.tasks
    base = await touch(services, cut)
    lost = await touch(services, drill)  # its message never arrives (Redis is at-most-once)
    newest = await touch(services, deburr)
    renderer = Renderer()
    feed = feed_for(services, renderer, base)
    feed.note(message(newest, deburr))
    await feed.next_updates()
    assert renderer.calls == [({drill, deburr}, newest)]
    assert lost < newest == feed.revision


async def test_a_resync_catches_up_from_the_last_revision_sent(
    services: Services, world: Plant
) -> None:
    cut, drill, _ = world.tasks
    base = await touch(services, cut)
    newest = await touch(services, drill)
    renderer = Renderer()
    feed = feed_for(services, renderer, base)
    feed.note(RESYNC)
    [update] = await feed.next_updates()
    assert renderer.calls == [({drill}, newest)] and update.revision == newest


async def test_the_rows_a_change_touched_are_rendered_live_and_from_the_change_log(
    services: Services, world: Plant
) -> None:
    cut = world.tasks[0]
    async with change(services, ANNA, "test.move") as tx:
        tx.touch("tasks", cut)
        tx.touch("equipment", world.mill)
        tx.touch("operators", world.olga)
    assert tx.revision is not None
    touched = frozenset({("equipment", world.mill), ("operators", world.olga)})
    renderer = Renderer()
    feed = feed_for(services, renderer, tx.revision - 1)
    feed.note(message(tx.revision, cut, equipment=[world.mill], operators=[world.olga]))
    await feed.next_updates()
    await feed.catch_up(tx.revision - 1)
    assert renderer.calls == [({cut}, tx.revision)] * 2
    assert renderer.rows == [touched, touched]


async def test_a_change_of_rows_refreshes_the_whole_view(services: Services, world: Plant) -> None:
    base = await touch(services, world.tasks[0])
    renamed = await touch(services, world.mill, entity="equipment")
    renderer = Renderer()
    feed = feed_for(services, renderer, base)
    feed.note(message(renamed, equipment=[world.mill]))
    [update] = await feed.next_updates()
    assert renderer.refreshes == [renamed] and "board-main" in update.html
    assert renderer.calls == []


async def test_a_gap_too_old_is_a_reload(services: Services, world: Plant) -> None:
    services.settings.change_feed_window = 1
    await touch(services, world.tasks[0])
    await touch(services, world.tasks[1])
    update = await feed_for(services, Renderer(), 0).catch_up(0)
    assert update is not None and update.reload and 'data-reload="1"' in update.html


async def test_a_new_view_resumes_from_the_revision_the_page_was_rendered_at(
    services: Services, world: Plant
) -> None:
    cut, drill, _ = world.tasks
    base = await touch(services, cut)
    newest = await touch(services, drill)
    renderer = Renderer()
    feed = feed_for(services, renderer, newest)
    other = BoardView(start=world.day, zoom="week")
    feed.resume(base, other)
    await feed.next_updates()
    assert feed.view == other and renderer.calls == [({drill}, newest)]


async def test_a_resume_with_nothing_to_send_prepares_its_window(
    services: Services, world: Plant
) -> None:
    """A board that connects in step has nothing rendered for it on this instance: its
    view's window is readied for the first change (Live.prepare); one that caught up
    has had it rendered."""
    cut, drill, _ = world.tasks
    base = await touch(services, cut)
    renderer = Renderer()
    prepared: list[BoardView] = []
    feed = feed_for(services, renderer, base)
    feed.prepare = prepared.append
    other = BoardView(start=world.day, zoom="week")
    feed.resume(base, other)
    assert await feed.next_updates() == []
    assert prepared == [other]
    newest = await touch(services, drill)
    feed.resume(base, VIEW)
    [update] = await feed.next_updates()
    assert update.revision == newest and prepared == [other]


async def test_the_feed_hears_the_hub_while_listening(services: Services, world: Plant) -> None:
    renderer = Renderer()
    base = await touch(services, world.tasks[0])
    feed = feed_for(services, renderer, base)
    async with feed.listening():
        newest = await touch(services, world.tasks[1])  # publishes after commit
        await feed.wake.wait()
        await feed.next_updates()
    assert renderer.calls == [({world.tasks[1]}, newest)]
    assert not services.hub._subscribers.get(schedule_channel(1))  # type: ignore[attr-defined]


async def test_the_boards_of_one_instance_hear_the_hub_through_one_subscription(
    services: Services, world: Plant
) -> None:
    renderer = Renderer()
    base = await touch(services, world.tasks[0])
    listeners = Listeners(services.hub, who="test")
    boards = [
        Feed(services=services, actor=ANNA, view=VIEW, render=renderer, revision=base,
             listeners=listeners)
        for _ in range(2)
    ]  # fmt: skip
    channel = schedule_channel(1)
    async with boards[0].listening(), boards[1].listening():
        assert len(services.hub._subscribers[channel]) == 1  # type: ignore[attr-defined]
        newest = await touch(services, world.tasks[1])
        for board in boards:
            await board.wake.wait()
            [update] = await board.next_updates()
            assert update.revision == newest
    assert not services.hub._subscribers.get(channel)  # type: ignore[attr-defined]


def test_what_a_change_touched() -> None:
    assert touched_tasks({"tasks": [1, 2], "operators": [3]}) == {1, 2}
    assert touched_tasks({"equipment": [3]}) is None
    assert touched_tasks({"users": [3]}) == set()
    assert touched_tasks("garbage") is None
    # A bulk change (a draft applied): too many to patch bar by bar, so the whole view.
    assert touched_tasks({"tasks": list(range(1, BULK_TASKS + 1))}) == set(range(1, BULK_TASKS + 1))
    assert touched_tasks({"tasks": list(range(1, BULK_TASKS + 2))}) is None


async def test_a_bulk_change_is_sent_as_the_whole_view_live_and_from_the_change_log(
    services: Services, world: Plant
) -> None:
    renderer = Renderer()
    base = await touch(services, world.tasks[0])
    many = list(range(1000, 1001 + BULK_TASKS))
    live = feed_for(services, renderer, base)
    async with live.listening():
        newest = await touch(services, *many)
        await live.wake.wait()
        [update] = await live.next_updates()
    assert renderer.refreshes == [newest] and renderer.calls == []
    assert update.revision == newest and "board-main" in update.html
    # A board that was away catches up the same way.
    late = feed_for(services, renderer, base)
    caught = await late.catch_up(base)
    assert caught is not None and caught.revision == newest
    assert renderer.refreshes == [newest, newest] and renderer.calls == []


async def test_a_failed_render_costs_that_update_and_is_tried_again_from_the_change_log(
    services: Services, world: Plant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.realtime.feed.RETRY_DELAYS_S", (0.05,))
    renderer = Renderer(fail_first=True)

    feed = Feed(services=services, actor=ANNA, view=VIEW, render=renderer, revision=1)
    revision = await touch(services, world.tasks[0])
    feed.note(message(revision, world.tasks[0]))
    assert await feed.next_updates() == []  # nothing sent, nothing raised
    assert feed.revision == 1  # still where the client is

    async with asyncio.timeout(5):
        await feed.wake.wait()  # the retry wakes the sender by itself
    [update] = await feed.next_updates()
    assert update.revision == revision
    assert renderer.calls == [({world.tasks[0]}, revision)]


async def test_tasks_that_ran_late_are_sent_at_the_revision_the_board_has(
    services: Services, world: Plant
) -> None:
    renderer = Renderer()
    revision = await touch(services, world.tasks[1])
    feed = feed_for(services, renderer, revision)
    feed.running_late({world.tasks[0]}, tick=1)
    [update] = await feed.next_updates()
    assert update.revision == revision  # nothing changed in the plan
    assert renderer.calls == [({world.tasks[0]}, revision)]
    assert renderer.rows == [frozenset({(LATE_TICK, 1)})]  # a render of its own
    assert await feed.next_updates() == []  # sent once

    # With a change pending, the change's render carries them (it lists the late as of now).
    later = await touch(services, world.tasks[1])
    feed.note(message(later, world.tasks[1]))
    feed.running_late({world.tasks[0]}, tick=2)
    [update] = await feed.next_updates()
    assert update.revision == later
    assert renderer.calls[-1] == ({world.tasks[1]}, later)
    assert await feed.next_updates() == []


async def test_tasks_that_ran_late_are_sent_again_after_a_failed_render(
    services: Services, world: Plant
) -> None:
    renderer = Renderer(fail_first=True)

    revision = await touch(services, world.tasks[1])
    feed = Feed(services=services, actor=ANNA, view=VIEW, render=renderer, revision=revision)
    feed.running_late({world.tasks[0]}, tick=1)
    assert await feed.next_updates() == []  # the render failed: nothing sent
    # Tried again (the change log has nothing newer): the same tasks, once.
    [update] = await feed.next_updates()
    assert update.revision == revision
    assert renderer.calls == [({world.tasks[0]}, revision)]
    assert await feed.next_updates() == []


class SlowRenderer(Renderer):
    """A render that finishes only when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def __call__(self, *args: Any, **kwargs: Any) -> str:
        await self.go.wait()
        return await super().__call__(*args, **kwargs)


def pushing_board(services: Services, base: int) -> tuple[Feed, SlowRenderer, list[str]]:
    """A board in step at `base` rendering ahead through a held renderer, whose pushes
    (an idle sender's socket) land in the list."""
    renderer = SlowRenderer()
    board = feed_for(services, renderer, base, SharedRenders(renderer, None))
    pushed: list[str] = []
    board.push = lambda html: pushed.append(html) is None
    return board, renderer, pushed


async def test_boards_in_step_are_woken_once_their_shared_render_is_ready(
    services: Services, world: Plant
) -> None:
    base = await touch(services, world.tasks[0])
    renderer = SlowRenderer()
    shared = SharedRenders(renderer, None)
    boards = [feed_for(services, renderer, base, shared) for _ in range(3)]
    for board in boards:
        board.note(message(base + 1, world.tasks[1]))
    await asyncio.sleep(0.01)
    # The render is under way; nobody is woken to wait for it.
    assert not any(board.wake.is_set() for board in boards)
    renderer.go.set()
    async with asyncio.timeout(5):
        for board in boards:
            await board.wake.wait()
    for board in boards:
        [update] = await board.next_updates()
        assert update.revision == base + 1 and board.revision == base + 1
    assert renderer.calls == [({world.tasks[1]}, base + 1)]  # once, for all three


async def test_a_board_not_in_step_is_woken_at_once_and_catches_up(
    services: Services, world: Plant
) -> None:
    base = await touch(services, world.tasks[0])
    renderer = SlowRenderer()
    renderer.go.set()
    shared = SharedRenders(renderer, None)
    behind = feed_for(services, renderer, base - 1, shared)  # it missed `base`
    behind.note(message(base + 1, world.tasks[1]))
    assert behind.wake.is_set() and renderer.calls == []
    resyncing = feed_for(services, renderer, base, shared)
    resyncing.note(RESYNC)
    assert resyncing.wake.is_set()
    structural = feed_for(services, renderer, base, shared)
    structural.note({"revision": base + 1, "kind": "test", "entities": {"equipment": [1]}})
    assert structural.wake.is_set()


async def test_a_failed_render_ahead_still_wakes_the_board_which_retries(
    services: Services, world: Plant
) -> None:
    revision = await touch(services, world.tasks[0])
    renderer = Renderer(fail_first=True)
    shared = SharedRenders(renderer, None)
    board = feed_for(services, renderer, revision - 1, shared)
    board.note(message(revision, world.tasks[0]))
    async with asyncio.timeout(5):
        await board.wake.wait()
    [update] = await board.next_updates()  # the failure is forgotten: rendered again
    assert update.revision == revision
    assert renderer.calls == [({world.tasks[0]}, revision)]


async def test_an_idle_board_is_sent_its_update_without_waking_its_sender(
    services: Services, world: Plant
) -> None:
    base = await touch(services, world.tasks[0])
    renderer = SlowRenderer()
    shared = SharedRenders(renderer, None)
    idle, busy = (
        feed_for(services, renderer, base, shared),
        feed_for(services, renderer, base, shared),
    )
    pushed: list[str] = []
    idle.push = lambda html: pushed.append(html) is None  # sent
    busy.push = lambda html: False  # its sender is busy: it sends the update itself
    for board in (idle, busy):
        board.note(message(base + 1, world.tasks[1]))
    renderer.go.set()
    async with asyncio.timeout(5):
        await busy.wake.wait()
    assert len(pushed) == 1 and f"data-revision='{base + 1}'" in pushed[0]
    assert idle.revision == base + 1 and not idle.wake.is_set()
    assert await idle.next_updates() == []  # nothing left to send
    [update] = await busy.next_updates()
    assert update.revision == base + 1 and update.html == pushed[0]


async def test_a_board_whose_sender_is_at_work_is_not_sent_anything_behind_its_back(
    services: Services, world: Plant
) -> None:
    """While the sender catches up (its revision about to move), a change arriving is
    left to it: a push then could reach the client before the catch-up's answer."""
    base = await touch(services, world.tasks[0])
    newest = await touch(services, world.tasks[1])
    board, renderer, pushed = pushing_board(services, base)
    board.resume(base, VIEW)
    catching_up = asyncio.create_task(board.next_updates())
    await asyncio.sleep(0.05)  # the catch-up's render is waiting for `go`
    board.wake.clear()
    # The push of the change being caught up, arriving late (Redis is at-most-once and
    # in no hurry): in step with where the sender started, but the sender is at work.
    board.note(message(newest, world.tasks[1]))
    assert board.wake.is_set(), "woken at once: no render ahead while the sender works"
    renderer.go.set()
    async with asyncio.timeout(5):
        [caught] = await catching_up
    assert caught.revision == newest and pushed == []


async def test_changes_arriving_during_a_render_ahead_are_sent_as_one_at_the_newest(
    services: Services, world: Plant
) -> None:
    base = await touch(services, world.tasks[0])
    board, renderer, pushed = pushing_board(services, base)
    board.note(message(base + 1, world.tasks[1]))
    board.note(message(base + 2, world.tasks[2]))  # while the first render is under way
    renderer.go.set()
    async with asyncio.timeout(5):
        while not pushed and not board.wake.is_set():  # noqa: ASYNC110 - either may end it
            await asyncio.sleep(0.01)
    updates = [*pushed, *(u.html for u in await board.next_updates())]
    # Never the first change's render sent as if it were the second.
    both = sorted([world.tasks[1], world.tasks[2]])
    assert updates == [f"<i data-tasks='{both}' data-revision='{base + 2}'></i>"]
    assert board.revision == base + 2


async def test_changes_arriving_faster_than_renders_are_batched_not_piled_up(
    services: Services, world: Plant
) -> None:
    base = await touch(services, world.tasks[0])
    renderer = SlowRenderer()
    shared = SharedRenders(renderer, None)
    board = feed_for(services, renderer, base, shared)
    for step in range(1, 11):  # ten writes while the first render is under way
        board.note(message(base + step, world.tasks[step % 3]))
    renderer.go.set()
    async with asyncio.timeout(5):
        await board.wake.wait()
    [update] = await board.next_updates()
    assert update.revision == base + 10
    # The first change's render, then one for everything that came meanwhile.
    assert [revision for _, revision in renderer.calls] == [base + 1, base + 10]
