"""The WebSocket level of `bench_fanout.py`: N boards open, one scheduler writing.

A throwaway PostgreSQL with a demo plant (`--size`, the large one by
default: 100 machines, 10,200 tasks), and three uvicorn
processes on it: M (no Redis: in-process hub), A and B (one Redis). N
WebSocket clients (`GET /board/ws?access_token=...`, one resume message with
a week view around the moved task) sit on one instance while a scheduler
moves one task every `--interval` s through the REST API (PUT assignment
with If-Match). Each frame carries `data-revision`; a client has a change
once a frame says that revision or a later one.

Latency is commit → receipt: the write path stamps each hub message with the
wall-clock time of its commit (`committed_at`, epoch ms), the live feed puts
it on the frame's `#board-revision` as `data-committed-at`, and a client's
latency for revision R is the arrival of its first frame at R or later minus
R's commit time (one clock: everything runs on this machine). A revision no
frame carried a stamp for (merged into a later one on every client) falls
back to the moment its PUT was sent, an upper bound; the count is shown. The
PUT's own latency is reported beside it. The clients run in
`--client-processes` processes (`fanout_clients.py`: bare protocols that
note each frame's arrival and read it after the run), on the same two cores
as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import websockets
from bench import BIN, _run, app_env, cpu_seconds, throwaway_postgres, uvicorn_server
from bench_fanout import Result

API = "/api/v1"
SETTLE_S = 30.0
# A set-up whose p95 is past this is not run with more clients.
HOPELESS_P95_S = 1.0  # after the last write, how long clients may take to catch up


@dataclass
class Client:
    frames: list[tuple[float, int]] = field(default_factory=list)  # (arrival epoch s, revision)

    def reached(self, revision: int) -> float | None:
        for arrival, seen in self.frames:
            if seen >= revision:
                return arrival
        return None


@dataclass
class Instances:
    token: str
    bases: dict[str, str]  # "M", "A", "B" -> base URL
    task: dict[str, Any]
    pids: dict[str, int] = field(default_factory=dict)  # "M", "A", "B" -> server process


def websocket_level(args: argparse.Namespace, redis_url: str) -> list[Result] | None:
    with ExitStack() as stack:
        database_url = stack.enter_context(throwaway_postgres())
        var_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="takt-fanout-")))
        env = app_env(database_url, var_dir)
        _run([str(BIN / "takt"), "migrate"], env)
        _run([str(BIN / "takt"), "demo", "--size", args.size], env)
        bases, pids = {}, {}
        bases["M"], pids["M"] = stack.enter_context(uvicorn_server(env, var_dir / "m.log"))
        if not asyncio.run(_routed(bases["M"])):
            print("GET /board/ws is not routed: WebSocket level skipped", file=sys.stderr)
            return None
        with_redis = env | {"REDIS_URL": redis_url}
        for name in ("A", "B"):
            bases[name], pids[name] = stack.enter_context(
                uvicorn_server(with_redis, var_dir / f"{name.lower()}.log")
            )
        return asyncio.run(_all(args, bases, pids))


async def _routed(base: str) -> bool:
    try:
        async with websockets.connect(base.replace("http", "ws", 1) + "/board/ws"):
            return True  # accepted (and then closed for lack of a token)
    except websockets.InvalidStatus:
        return False


async def _all(
    args: argparse.Namespace, bases: dict[str, str], pids: dict[str, int]
) -> list[Result]:
    async with httpx.AsyncClient(timeout=60) as client:
        login = await client.post(
            f"{bases['A']}{API}/auth/token", json={"username": "anna", "password": "takt-demo"}
        )
        login.raise_for_status()
        token = login.json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        found = await client.get(
            f"{bases['A']}{API}/tasks", params={"status": "scheduled", "limit": 1}
        )
        found.raise_for_status()
        world = Instances(token, bases, found.json()["items"][0], pids)
        results: list[Result] = []
        hopeless: set[str] = set()
        for clients in args.clients:
            for what, on, writer in (
                ("ws: one instance, memory hub", "M", "M"),
                ("ws: one instance, redis hub", "A", "A"),
                ("ws: two instances (clients on B, writer on A)", "B", "A"),
            ):
                if on not in args.setups:
                    continue
                if what in hopeless:
                    # More clients only take longer: keep `make bench` finite.
                    print(f"{what}: {clients} clients skipped (p95 > 1 s already)", file=sys.stderr)
                    continue
                print(f"websocket level, {clients} clients, {what} ...", file=sys.stderr)
                result = await _run_one(client, world, what, on, writer, clients, args)
                results.append(result)
                if result.percentile(95) > HOPELESS_P95_S:
                    hopeless.add(what)
    return results


async def _run_one(
    client: httpx.AsyncClient,
    world: Instances,
    what: str,
    on: str,
    writer: str,
    clients: int,
    args: argparse.Namespace,
) -> Result:
    since = (await client.get(f"{world.bases[on]}{API}/changes", params={"since": 0})).json()[
        "revision"
    ]
    url = world.bases[on].replace("http", "ws", 1) + f"/board/ws?access_token={world.token}"
    resume = json.dumps({"type": "resume", "since": since, "view": _view(world.task)})
    shares = [clients // args.client_processes] * args.client_processes
    shares[0] += clients - sum(shares)
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).with_name("fanout_clients.py")),
            "--url",
            url,
            "--clients",
            str(share),
            "--resume",
            resume,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            limit=1 << 28,  # a child answers with every frame on one line
        )
        for share in shares
        if share
    ]
    try:
        for child in children:
            assert child.stdout is not None
            if (await child.stdout.readline()).strip() != b"connected":
                raise RuntimeError("a client process could not open its boards")
        await asyncio.sleep(1.0)  # let the resume catch-ups pass
        print(f"  {clients} boards open; writing", file=sys.stderr)
        cpu_before = cpu_seconds(world.pids[on])
        sent, put_seconds = await _write(client, world, writer, args.writes, args.interval)
        # Settled by now but for the last change (~1 of `writes`): CPU the boards' instance
        # spent per change, what a change's fan-out costs it.
        cpu_per_change = (cpu_seconds(world.pids[on]) - cpu_before) / max(1, args.writes)
        bodies = []
        for child in children:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(f"last {max(sent)}\nsettle {SETTLE_S}\n".encode())
            await child.stdin.drain()
        for child in children:
            assert child.stdout is not None
            bodies.append(json.loads(await child.stdout.readline()))
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
            await child.wait()
    committed = {int(r): at for body in bodies for r, at in body["committed"].items()}
    boards = [Client([tuple(f) for f in frames]) for body in bodies for frames in body["frames"]]
    latencies = [
        arrival - committed.get(revision, sent_at)
        for state in boards
        for revision, sent_at in sent.items()
        if (arrival := state.reached(revision)) is not None
    ]
    put_p50 = sorted(put_seconds)[len(put_seconds) // 2] * 1000
    unstamped = len(set(sent) - set(committed))
    # The first board to hear of each change: the render and one send, no fan-out yet.
    firsts = sorted(
        min(arrivals) - committed[revision]
        for revision in sent
        if revision in committed
        and (arrivals := [a for b in boards if (a := b.reached(revision)) is not None])
    )
    first_p50 = firsts[len(firsts) // 2] * 1000 if firsts else float("nan")
    if args.per_write:
        _print_per_write(sent, committed, boards)
    note = f" (PUT p50 {put_p50:.0f} ms; first board p50 {first_p50:.0f} ms"
    note += f"; {cpu_per_change * 1000:.0f} ms CPU per change on {on}"
    note += f"; {unstamped} of {len(sent)} from PUT sent)" if unstamped else ")"
    return Result(what, clients, len(sent), latencies, note=note)


def _print_per_write(
    sent: dict[int, float], committed: dict[int, float], boards: list[Client]
) -> None:
    """One line per change: when the first, median and last board heard of it (ms)."""
    for revision, sent_at in sorted(sent.items()):
        at = committed.get(revision, sent_at)
        heard = sorted(a - at for b in boards if (a := b.reached(revision)) is not None)
        if heard:
            spread = [heard[0], heard[len(heard) // 2], heard[-1]]
            cells = " ".join(f"{s * 1000:7.1f}" for s in spread)
            print(f"  revision {revision}: first/median/last {cells} ms", file=sys.stderr)


async def _write(
    client: httpx.AsyncClient, world: Instances, writer: str, writes: int, interval: float
) -> tuple[dict[int, float], list[float]]:
    """Move the task back and forth by 15 min; revision -> when its PUT was sent."""
    base, task_id = world.bases[writer], world.task["id"]
    current = await client.get(f"{base}{API}/tasks/{task_id}")
    current.raise_for_status()
    etag, placed = current.headers["etag"], current.json()["assignment"]
    sent: dict[int, float] = {}
    put_seconds: list[float] = []
    for i in range(writes):
        shift = timedelta(minutes=15 if i % 2 == 0 else 0)
        start = datetime.fromisoformat(placed["start"]) + shift
        end = datetime.fromisoformat(placed["end"]) + shift
        body = {**placed, "start": start.isoformat(), "end": end.isoformat()}
        began, wall = time.time(), time.perf_counter()
        response = await client.put(
            f"{base}{API}/tasks/{task_id}/assignment", json=body, headers={"If-Match": etag}
        )
        put_seconds.append(time.perf_counter() - wall)
        response.raise_for_status()
        etag = response.headers["etag"]
        sent[int(response.json()["revision"])] = began
        await asyncio.sleep(max(0.0, interval - (time.time() - began)))
    return sent, put_seconds


def _view(task: dict[str, Any]) -> dict[str, str]:
    day = datetime.fromisoformat(task["assignment"]["start"]).date()
    return {"start": f"{day.isoformat()}T00:00:00+00:00", "zoom": "week", "rows": "equipment"}
