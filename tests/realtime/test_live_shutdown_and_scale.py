"""The live feed at the edges of a process: shutting down with clients connected, and
two instances behind one Redis.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from live_world import (
    WAIT_S,
    Board,
    Plant,
    frame_with,
    plant_fixture as plant_fixture,
    resume,
    var_dir_fixture as var_dir_fixture,
)
from servers import REPO_ROOT, Popen, free_port, http_ok, wait_until

from app.settings import Settings


async def test_shutdown_does_not_wait_for_open_streams_and_sockets(
    plant: Plant, sqlite_database_url: str, var_dir: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAKT_")}
    env |= {"DATABASE_URL": sqlite_database_url, "TAKT_VAR_DIR": str(var_dir)}
    server = Popen.start(
        [
            *(sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        log=var_dir / "uvicorn.log",
        env=env,
        cwd=REPO_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(url, "/health"), timeout=60, what="app", proc=server)
        async with httpx.AsyncClient(base_url=url, timeout=WAIT_S) as http:
            board = Board(url, plant, http, Settings())
            anna = await board.token("anna")
            params = {**plant.view, "since": "0", "access_token": anna}
            async with (
                http.stream("GET", "/board/sse", params=params) as stream,
                board.socket(anna) as socket,
            ):
                await resume(socket, 0, plant.view)
                await frame_with(socket, 'id="presence"')
                lines = stream.aiter_lines()
                async with asyncio.timeout(WAIT_S):
                    while 'id="presence"' not in await anext(lines):
                        pass
                server.process.send_signal(signal.SIGTERM)
                # Without the feed ending its streams, uvicorn would wait forever.
                code = await asyncio.to_thread(server.process.wait, 20)
                # uvicorn re-raises the signal once it has shut down gracefully.
                assert code in (0, -signal.SIGTERM), server.log.read_text()
                closed = await socket.wait_closed() or socket.close_code
                assert closed in (1012, 1001, 1006)
    except subprocess.TimeoutExpired:
        pytest.fail("the server did not stop with a stream and a socket open")
    finally:
        server.stop(timeout=5)
    assert "Application shutdown complete" in server.log.read_text()


@pytest.mark.redis
async def test_a_change_on_one_instance_reaches_a_board_on_the_other(
    plant: Plant, sqlite_database_url: str, var_dir: Path, redis_url: str, live_server: object
) -> None:
    env = {"TAKT_RATE_LIMIT_USER": "100000/minute"}
    one, two = (
        live_server(  # type: ignore[operator]
            database_url=sqlite_database_url, redis_url=redis_url, var_dir=var_dir, env=env
        )
        for _ in range(2)
    )
    async with (
        httpx.AsyncClient(base_url=one, timeout=WAIT_S) as http_one,
        httpx.AsyncClient(base_url=two, timeout=WAIT_S) as http_two,
    ):
        writer = Board(one, plant, http_one, Settings())
        reader = Board(two, plant, http_two, Settings())
        anna, ben = await writer.token("anna"), await reader.token("ben")
        async with reader.socket(ben) as ben_socket, writer.socket(anna) as anna_socket:
            await resume(ben_socket, await reader.revision(ben), plant.view)
            await resume(anna_socket, 0, plant.view)
            # Presence crosses instances too.
            await frame_with(ben_socket, "Anna Amsel")
            revision = await writer.move(anna, plant.tasks[0], 9)
            frame = await frame_with(ben_socket, f'data-revision="{revision}"')
    assert f'id="bar-{plant.tasks[0]}"' in frame
