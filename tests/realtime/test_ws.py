"""`/board/ws` against a real server: who may connect, resuming, live changes, presence."""

from __future__ import annotations

import re

import pytest
from live_world import (  # noqa: F401
    Board,
    board_fixture,
    frame_with,
    plant_fixture,
    resume,
    var_dir_fixture,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus

POLICY_VIOLATION = 1008


def revisions_in(frame: str) -> list[int]:
    return [int(n) for n in re.findall(r'id="board-revision"[^>]*data-revision="(\d+)"', frame)]


async def closed_with(board: Board, **options: object) -> int | None:
    async with board.socket(**options) as socket:  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed) as closed:
            await resume(socket, 0, board.plant.view)
            await frame_with(socket, "never")
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_a_socket_without_session_or_token_is_closed_as_a_policy_violation(
    board: Board,
) -> None:
    assert await closed_with(board) == POLICY_VIOLATION


async def test_a_forged_token_is_refused(board: Board) -> None:
    assert await closed_with(board, token="not-a-jwt") == POLICY_VIOLATION


async def test_an_operator_may_not_follow_the_board(board: Board) -> None:
    assert await closed_with(board, token=await board.token("olga")) == POLICY_VIOLATION


async def test_the_session_cookie_works_from_the_same_site_only(board: Board) -> None:
    cookie = await board.session_cookie("anna")
    host = board.url.removeprefix("http://")
    # Cross-site WebSocket hijacking: the browser would send the cookie from any site.
    evil = {"additional_headers": {"Cookie": cookie}, "origin": "https://evil.example"}
    assert await closed_with(board, **evil) == POLICY_VIOLATION  # type: ignore[arg-type]
    same = {"additional_headers": {"Cookie": cookie}, "origin": f"http://{host}"}
    async with board.socket(**same) as socket:
        await resume(socket, 0, board.plant.view)
        assert "presence" in await frame_with(socket, 'id="presence"')


async def test_resume_sends_exactly_the_changes_since(board: Board) -> None:
    anna = await board.token("anna")
    cut, drill, deburr = board.plant.tasks
    await board.move(anna, cut, 6)
    since = await board.move(anna, drill, 8)
    newest = await board.move(anna, deburr, 10)
    async with board.socket(anna) as socket:
        await resume(socket, since, board.plant.view)
        frame = await frame_with(socket, "board-revision")
    assert revisions_in(frame) == [newest]
    assert f'id="bar-{deburr}"' in frame
    assert f'id="bar-{drill}"' not in frame and f'id="bar-{cut}"' not in frame


async def test_a_change_through_the_api_arrives_as_fragments_with_its_revision(
    board: Board,
) -> None:
    anna, ben = await board.token("anna"), await board.token("ben")
    cut = board.plant.tasks[0]
    async with board.socket(ben) as socket:
        await resume(socket, await board.revision(ben), board.plant.view)
        await frame_with(socket, 'id="presence"')
        revision = await board.move(anna, cut, 9)
        frame = await frame_with(socket, "board-revision")
    assert revisions_in(frame) == [revision]
    assert f'id="bar-{cut}"' in frame and 'hx-swap-oob="true"' in frame
    assert 'id="counters"' in frame and 'id="conflicts-count"' in frame
    assert f'data-conflicts-of="{cut}"' in frame


async def test_a_client_too_far_behind_is_told_to_reload(
    plant: object, sqlite_database_url: str, var_dir: object, live_server: object
) -> None:
    # A feed window of one revision: two changes later, revision 0 is too old.
    url = live_server(  # type: ignore[operator]
        database_url=sqlite_database_url,
        var_dir=var_dir,
        env={"TAKT_CHANGE_FEED_WINDOW": "1", "TAKT_RATE_LIMIT_USER": "100000/minute"},
    )
    import httpx

    from app.settings import Settings

    async with httpx.AsyncClient(base_url=url) as http:
        board = Board(url, plant, http, Settings())  # type: ignore[arg-type]
        anna = await board.token("anna")
        await board.move(anna, board.plant.tasks[0], 6)
        await board.move(anna, board.plant.tasks[1], 8)
        async with board.socket(anna) as socket:
            await resume(socket, 0, board.plant.view)
            frame = await frame_with(socket, "data-reload")
    assert 'id="notice"' in frame


async def test_a_new_view_is_followed_after_a_second_resume(board: Board) -> None:
    anna = await board.token("anna")
    cut = board.plant.tasks[0]
    async with board.socket(anna) as socket:
        elsewhere_view = {**board.plant.view, "start": board.plant.at(24 * 30).isoformat()}
        await resume(socket, 0, elsewhere_view)
        await frame_with(socket, 'id="presence"')
        since = await board.revision(anna)
        revision = await board.move(anna, cut, 7)
        elsewhere = await frame_with(socket, "board-revision")
        # Out of this view's window: the bar is reported gone, not drawn.
        assert f'<i id="bar-{cut}" data-gone' in elsewhere
        await resume(socket, since, board.plant.view)
        here = await frame_with(socket, "board-revision")
    assert revisions_in(here) == [revision]
    assert f'<div id="bar-{cut}"' in here or f'id="bar-{cut}" class' in here


async def test_presence_shows_who_is_on_the_board_and_what_they_drag(board: Board) -> None:
    anna, ben = await board.token("anna"), await board.token("ben")
    cut = board.plant.tasks[0]
    async with board.socket(ben) as ben_socket:
        await resume(ben_socket, 0, board.plant.view)
        alone = await frame_with(ben_socket, 'id="presence"')
        assert "Only you" in alone
        async with board.socket(anna) as anna_socket:
            await resume(anna_socket, 0, board.plant.view)
            joined = await frame_with(ben_socket, "Anna Amsel")
            assert "Ben Becker" not in joined  # yourself is not "someone else"
            await anna_socket.send(f'{{"type": "drag", "task_id": {cut}}}')
            dragging = await frame_with(ben_socket, f'data-task-id="{cut}"')
            assert 'data-user="Anna Amsel"' in dragging
            await anna_socket.send('{"type": "drag_end"}')
            ended = await frame_with(ben_socket, 'id="presence"')
            assert "data-task-id" not in ended
        left = await frame_with(ben_socket, "Only you")
        assert "Anna" not in left


async def test_a_ping_is_answered_with_a_heartbeat(board: Board) -> None:
    anna = await board.token("anna")
    async with board.socket(anna) as socket:
        await resume(socket, 0, board.plant.view)
        await socket.send('{"type": "ping"}')
        assert await frame_with(socket, "<!--heartbeat-->") == "<!--heartbeat-->"


async def test_the_connection_gauge_counts_open_sockets(board: Board) -> None:
    anna = await board.token("anna")

    async def gauge() -> float:
        metrics = (await board.http.get("/metrics")).text
        found = re.search(r"^takt_websocket_connections (\S+)$", metrics, re.M)
        assert found, "takt_websocket_connections missing from /metrics"
        return float(found.group(1))

    async with board.socket(anna) as socket:
        await resume(socket, 0, board.plant.view)
        await frame_with(socket, 'id="presence"')
        assert await gauge() == 1


async def test_no_handshake_refusal_for_a_bad_first_message(board: Board) -> None:
    anna = await board.token("anna")
    try:
        async with board.socket(anna) as socket:
            await socket.send('{"type": "drag"}')
            with pytest.raises(ConnectionClosed) as closed:
                await frame_with(socket, "never")
    except InvalidStatus:  # pragma: no cover - the handshake itself must succeed
        pytest.fail("refusals must come as close codes, not HTTP errors")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == POLICY_VIOLATION
