"""`make bench-load`: the plant at work, on two instances sharing PostgreSQL and Redis.

The seeds' scenario on the large demo (`takt demo --size large`): `--schedulers`
(100) each with a board open (a WebSocket on instance A or B, alternately,
all on the same busy week) and moving a task of their own every 5-10 s
(GET the task for its ETag, then PUT its assignment 15 min later or back),
and `--operators` (1,000) each checking their tasks every 10-30 s
(GET /api/v1/tasks?operator_id=<theirs>, with one of 320 operator logins
made for the bench). For `--seconds` (120) after everyone is connected.

Prints p50/p95/p99 per request kind, the push latency (a move's commit to its
arrival on each of the 100 boards, from the `data-committed-at` stamp of the
frames, as bench_fanout_ws.py measures it), the errors and what they were,
the CPU of each part (instances, PostgreSQL, Redis, boards, clients) and each
instance's memory. `--soak` runs 35 minutes, samples memory once a minute and
prints its slope (MB/min), overall and after `--warmup` (5) minutes.

Everything runs on this machine: the clients share its cores with the two
instances, PostgreSQL and Redis. The schedulers and operators are spread over
`--client-processes` (2) processes, and each reports how late its event loop
ran: when that is high, the client was the bottleneck and says so. Nothing
asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import (
    BIN,
    _run,
    app_env,
    cpu_seconds,
    machine,
    throwaway_postgres,
    throwaway_redis,
    uvicorn_server,
)
from bench_fanout_ws import COMMITTED, REVISION

API = "/api/v1"
PASSWORD = "takt-demo"
CONNECT_CONCURRENCY = 50


@dataclass
class Kind:
    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    # What each error was: an HTTP status, or "connection" when no answer came.
    why: dict[str, int] = field(default_factory=dict)

    def failed(self, answer: httpx.Response | None) -> None:
        self.errors += 1
        reason = "connection" if answer is None else str(answer.status_code)
        self.why[reason] = self.why.get(reason, 0) + 1

    def percentile(self, p: float) -> float:
        ordered = sorted(self.seconds)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000


@dataclass
class World:
    bases: list[str]
    scheduler_token: str
    operator_tokens: list[tuple[str, int]]  # (token, operator id)
    tasks: list[dict[str, Any]]  # one per scheduler
    view: dict[str, str]
    kinds: dict[str, Kind] = field(default_factory=dict)
    committed: dict[int, float] = field(default_factory=dict)  # revision -> commit epoch s
    boards: list[list[tuple[float, int]]] = field(default_factory=list)
    revisions: list[int] = field(default_factory=list)

    def kind(self, name: str) -> Kind:
        return self.kinds.setdefault(name, Kind())


def operator_accounts(database_url: str, count: int) -> None:
    """Operator logins for the bench (scaffolding: straight into the throwaway database)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from app.security.passwords import hash_password

    hashed = hash_password(PASSWORD)
    sql = (
        "INSERT INTO users (username, display_name, password_hash, role, operator_id, active, "
        "created_at, version) SELECT 'bench-op-' || o.id, o.name, '" + hashed + "', 'operator', "
        "o.id, true, now(), 1 FROM operators o WHERE NOT EXISTS "
        "(SELECT 1 FROM users u WHERE u.operator_id = o.id) ORDER BY o.id LIMIT " + str(count)
    )
    url = database_url.replace("postgresql+asyncpg", "postgresql")
    subprocess.run(["psql", url, "-q", "-c", sql], check=True, env=_pg_env())


def _pg_env() -> dict[str, str]:
    bindir = os.environ.get("TAKT_PG_BINDIR")
    if bindir:
        return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    return (
        {**os.environ, "PATH": f"{found[-1]}:{os.environ['PATH']}"} if found else dict(os.environ)
    )


async def prepare(bases: list[str], schedulers: int) -> World:
    async with httpx.AsyncClient(base_url=bases[0], timeout=120) as client:
        login = await client.post(
            f"{API}/auth/token", json={"username": "anna", "password": PASSWORD}
        )
        login.raise_for_status()
        token = login.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        tasks: list[dict[str, Any]] = []
        offset = 0
        while len(tasks) < 400:
            page = await client.get(
                f"{API}/tasks",
                params={"status": "scheduled", "limit": 100, "offset": offset},
                headers=headers,
            )
            page.raise_for_status()
            items = page.json()["items"]
            if not items:
                break
            tasks += [t for t in items if t.get("assignment")]
            offset += 100
        # The week holding most of them: every board watches it, every move lands in it.
        weeks: dict[str, list[dict[str, Any]]] = {}
        for task in tasks:
            day = datetime.fromisoformat(task["assignment"]["start"]).date()
            monday = day - timedelta(days=day.weekday())
            weeks.setdefault(monday.isoformat(), []).append(task)
        monday, chosen = max(weeks.items(), key=lambda kv: len(kv[1]))
        view = {"start": f"{monday}T00:00:00+00:00", "zoom": "week", "rows": "equipment"}
        operators: list[tuple[str, int]] = []
        names = [f"bench-op-{n}" for n in range(1, 400)]
        gate = asyncio.Semaphore(8)

        async def operator_login(name: str) -> None:
            async with gate:
                answer = await client.post(
                    f"{API}/auth/token", json={"username": name, "password": PASSWORD}
                )
            if answer.status_code == 200:
                operators.append((answer.json()["access_token"], int(name.rsplit("-", 1)[1])))

        await asyncio.gather(*(operator_login(name) for name in names))
    picked = [chosen[n % len(chosen)] for n in range(schedulers)]
    return World(bases, token, operators, picked, view)


async def board(
    url: str, resume: str, frames: list[tuple[float, int]], committed: dict[int, float],
    stop: asyncio.Event, drops: list[int],
) -> None:  # fmt: skip
    socket = await websockets.connect(url, open_timeout=120, max_size=None)
    await socket.send(resume)
    try:
        async with socket:
            while not stop.is_set():
                frame = await socket.recv(decode=False)
                arrival = time.time()
                found = REVISION.findall(frame)
                if found:
                    frames.append((arrival, max(int(n) for n in found)))
                    for at, revision in COMMITTED.findall(frame):
                        committed.setdefault(int(revision), float(at) / 1000)
    except websockets.ConnectionClosed:
        drops.append(1)


def boards_process(
    urls: list[str], resume: str, seconds: float, ready: Any, out: Any
) -> None:  # fmt: skip
    """The boards in a process of their own: receiving 100 boards' frames is real work,
    and in the clients' process it would delay (and so inflate) every request timed there."""

    async def main() -> None:
        stop = asyncio.Event()
        frames: list[list[tuple[float, int]]] = [[] for _ in urls]
        committed: dict[int, float] = {}
        drops: list[int] = []
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(i: int) -> None:
            async with gate:
                pass
            await board(urls[i], resume, frames[i], committed, stop, drops)

        tasks = [asyncio.create_task(one(i)) for i in range(len(urls))]
        await asyncio.sleep(3)
        ready.send(True)
        await asyncio.sleep(seconds)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        out.send((frames, committed, len(drops)))

    asyncio.run(main())


async def scheduler(world: World, index: int, client: httpx.AsyncClient, until: float) -> None:
    base, task = world.bases[index % len(world.bases)], world.tasks[index]
    headers = {"Authorization": f"Bearer {world.scheduler_token}"}
    placed = task["assignment"]
    await asyncio.sleep(random.uniform(0, 10))
    step = 0
    while time.monotonic() < until:
        began = time.perf_counter()
        current = await asked(client.get(f"{base}{API}/tasks/{task['id']}", headers=headers))
        world.kind("GET task").seconds.append(time.perf_counter() - began)
        if current is None or current.status_code != 200:
            world.kind("GET task").failed(current)
            await asyncio.sleep(5)
            continue
        shift = timedelta(minutes=15 if step % 2 == 0 else 0)
        body = {
            "operator_id": placed["operator_id"],
            "equipment_id": placed["equipment_id"],
            "start": (datetime.fromisoformat(placed["start"]) + shift).isoformat(),
            "end": (datetime.fromisoformat(placed["end"]) + shift).isoformat(),
        }
        began = time.perf_counter()
        moved = await asked(
            client.put(
                f"{base}{API}/tasks/{task['id']}/assignment",
                json=body,
                headers={**headers, "If-Match": current.headers["etag"]},
            )
        )
        world.kind("PUT assignment").seconds.append(time.perf_counter() - began)
        if moved is not None and moved.status_code == 200:
            world.revisions.append(int(moved.json()["revision"]))
        else:
            world.kind("PUT assignment").failed(moved)
        step += 1
        await asyncio.sleep(min(random.uniform(5, 10), max(0.0, until - time.monotonic())))


async def operator(world: World, index: int, client: httpx.AsyncClient, until: float) -> None:
    token, operator_id = world.operator_tokens[index % len(world.operator_tokens)]
    base = world.bases[index % len(world.bases)]
    headers = {"Authorization": f"Bearer {token}"}
    await asyncio.sleep(random.uniform(0, 30))
    while time.monotonic() < until:
        began = time.perf_counter()
        answer = await asked(
            client.get(
                f"{base}{API}/tasks",
                params={"operator_id": operator_id, "limit": 50},
                headers=headers,
            )
        )
        world.kind("GET my tasks").seconds.append(time.perf_counter() - began)
        if answer is None or answer.status_code != 200:
            world.kind("GET my tasks").failed(answer)
        await asyncio.sleep(min(random.uniform(10, 30), max(0.0, until - time.monotonic())))


async def asked(request: Any) -> httpx.Response | None:
    """The answer, or None when the connection failed (counted as an error)."""
    try:
        return await request  # type: ignore[no-any-return]
    except httpx.HTTPError as exc:
        print(f"request failed: {exc!r}", file=sys.stderr)
        return None


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def settled(samples: list[tuple[float, float]], warmup: float) -> list[tuple[float, float]]:
    """The samples after the warm-up minutes (caches filling, pools opening)."""
    return [(minutes, mb) for minutes, mb in samples if minutes >= warmup]


def slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (minutes, MB)."""
    n = len(samples)
    if n < 2:
        return math.nan
    mx = sum(x for x, _ in samples) / n
    my = sum(y for _, y in samples) / n
    var = sum((x - mx) ** 2 for x, _ in samples)
    return sum((x - mx) * (y - my) for x, y in samples) / var if var else math.nan


def clients_process(
    world: World, schedulers: range, operators: range, seconds: float, ready: Any, out: Any
) -> None:  # fmt: skip
    """One share of the schedulers and operators in a process of its own, with its own
    connection pool: one process for all 1,100 was the bottleneck of the first run.
    Sends back its timings, the revisions its moves made, its CPU seconds and how late
    its event loop ran (the sign of a saturated client)."""

    async def main() -> None:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            ready.send(True)
            ready.recv()  # everyone's boards are connected: go
            until = time.monotonic() + seconds
            lag: list[float] = []
            work = [asyncio.create_task(loop_lag(lag, until))]
            work += [asyncio.create_task(scheduler(world, i, client, until)) for i in schedulers]
            work += [asyncio.create_task(operator(world, i, client, until)) for i in operators]
            await asyncio.gather(*work)
        out.send((world.kinds, world.revisions, cpu_seconds(os.getpid()), lag))

    asyncio.run(main())


async def loop_lag(lag: list[float], until: float) -> None:
    """How late a 100 ms sleep wakes, ten times a second: near 0 while the client keeps up."""
    while time.monotonic() < until:
        asked_at = time.monotonic()
        await asyncio.sleep(0.1)
        lag.append(time.monotonic() - asked_at - 0.1)


def share(count: int, parts: int, part: int) -> range:
    return range(part * count // parts, (part + 1) * count // parts)


async def run(world: World, pids: dict[str, list[int]], args: argparse.Namespace) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        since_answer = await client.get(
            f"{world.bases[0]}{API}/changes",
            params={"since": 0},
            headers={"Authorization": f"Bearer {world.scheduler_token}"},
        )
    since = int(since_answer.json()["revision"])
    resume = json.dumps({"type": "resume", "since": since, "view": world.view})
    urls = [
        world.bases[i % len(world.bases)].replace("http", "ws", 1)
        + f"/board/ws?access_token={world.scheduler_token}"
        for i in range(args.schedulers)
    ]
    spawn = multiprocessing.get_context("spawn")
    boards_ready, boards_ready_send = spawn.Pipe(duplex=False)
    boards_out, boards_out_send = spawn.Pipe(duplex=False)
    children = [
        spawn.Process(
            target=boards_process,
            args=(urls, resume, args.seconds + 25, boards_ready_send, boards_out_send),
        )
    ]
    links, outs = [], []
    for part in range(args.client_processes):
        link, link_child = spawn.Pipe(duplex=True)
        out, out_send = spawn.Pipe(duplex=False)
        links.append(link)
        outs.append(out)
        children.append(
            spawn.Process(
                target=clients_process,
                args=(
                    world,
                    share(args.schedulers, args.client_processes, part),
                    share(args.operators, args.client_processes, part),
                    args.seconds,
                    link_child,
                    out_send,
                ),
            )
        )
    for child in children:
        child.start()
    try:
        await asyncio.to_thread(boards_ready.recv)
        for link in links:
            await asyncio.to_thread(link.recv)
        client_pids = [child.pid or 0 for child in children[1:]]
        watched = pids | {"clients": client_pids, "boards": [children[0].pid or 0]}
        cpu_before = {name: sum(map(cpu_seconds, group)) for name, group in watched.items()}
        began = time.monotonic()
        for link in links:
            link.send(True)
        memory = await sample_memory(pids["instance A"] + pids["instance B"], began, args)
        results = [await asyncio.to_thread(out.recv) for out in outs]
        wall = time.monotonic() - began
        cpu = {
            name: (sum(map(cpu_seconds, group)) - cpu_before[name]) / wall
            for name, group in watched.items()
            if name != "clients"
        }
        cpu["clients"] = sum(r[2] for r in results) / wall  # their own count, as they end
        lag: list[float] = []
        for kinds, revisions, _, part_lag in results:
            for name, kind in kinds.items():
                world.kind(name).seconds += kind.seconds
                world.kind(name).errors += kind.errors
                for reason, count in kind.why.items():
                    world.kind(name).why[reason] = world.kind(name).why.get(reason, 0) + count
            world.revisions += revisions
            lag += part_lag
        world.boards, world.committed, drops = await asyncio.to_thread(boards_out.recv)
        world.kind("websocket").errors += drops
        for child in children:
            child.join()
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
    report(world, cpu, memory, wall, args, lag)


async def sample_memory(
    instance_pids: list[int], began: float, args: argparse.Namespace
) -> list[list[tuple[float, float]]]:
    """Each instance's resident memory every 10 s (each minute when soaking)."""
    memory: list[list[tuple[float, float]]] = [[] for _ in instance_pids]
    until = began + args.seconds
    while time.monotonic() < until:
        minutes = (time.monotonic() - began) / 60
        for series, pid in zip(memory, instance_pids, strict=True):
            series.append((minutes, rss_mb(pid)))
        if args.soak:  # as it goes, so a run cut short still says what it saw
            sampled = " ".join(f"{series[-1][1]:.1f}" for series in memory)
            print(f"memory at {minutes:.1f} min (MB, A B): {sampled}", file=sys.stderr, flush=True)
        await asyncio.sleep(min(60 if args.soak else 10, max(0.1, until - time.monotonic())))
    return memory


def report(
    world: World, cpu: dict[str, float], memory: list[list[tuple[float, float]]], wall: float,
    args: argparse.Namespace, lag: list[float],
) -> None:  # fmt: skip
    total = sum(len(k.seconds) for k in world.kinds.values())
    errors = sum(k.errors for k in world.kinds.values())
    print(
        f"\n{args.schedulers} schedulers, {args.operators} operators, {wall:.0f} s, "
        f"{total} requests ({total / wall:.0f}/s), errors {errors} ({errors / max(1, total):.2%})"
    )
    print(f"{'kind':18s} {'n':>6s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'errors':>7s}")
    for name, kind in sorted(world.kinds.items()):
        if kind.seconds:
            print(
                f"{name:18s} {len(kind.seconds):6d} {kind.percentile(50):8.0f} "
                f"{kind.percentile(95):8.0f} {kind.percentile(99):8.0f} {kind.errors:7d}"
            )
        else:
            print(f"{name:18s} {'':6s} {'':8s} {'':8s} {'':8s} {kind.errors:7d}")
    for name, kind in sorted(world.kinds.items()):
        if kind.why:
            print(
                f"  {name} errors: " + ", ".join(f"{n} x {r}" for r, n in sorted(kind.why.items()))
            )
    push = Kind()
    missed = 0
    # Per board, the newest revision it had seen by each frame (a running maximum), so
    # the frame that first carried a revision is a bisection, not a scan: a soak's
    # 28,000 moves x 100 boards x 28,000 frames never finished scanning.
    boards = [(list(accumulate((seen for _, seen in f), max)), f) for f in world.boards]
    for revision in world.revisions:
        committed = world.committed.get(revision)
        if committed is None:
            continue
        for reached, frames in boards:
            index = bisect_left(reached, revision)
            if index == len(frames):
                missed += 1
            else:
                push.seconds.append(frames[index][0] - committed)
    print(
        f"push to all boards: {len(world.revisions)} moves x {len(world.boards)} boards: "
        f"p50 {push.percentile(50):.0f} ms, p95 {push.percentile(95):.0f} ms, "
        f"p99 {push.percentile(99):.0f} ms; not received {missed}"
    )
    print("CPU, share of one core:", ", ".join(f"{k} {v:.0%}" for k, v in cpu.items()))
    late = Kind(seconds=lag)
    print(
        f"clients' event loops ({args.client_processes} processes): a 100 ms sleep woke "
        f"p50 {late.percentile(50):.0f} ms, p95 {late.percentile(95):.0f} ms, "
        f"p99 {late.percentile(99):.0f} ms late"
        + (
            " -- the clients are saturated: these timings are theirs"
            if late.percentile(95) > 50
            else ""
        )
    )
    for name, series in zip(("A", "B"), memory, strict=True):
        mb = [y for _, y in series]
        print(
            f"instance {name}: memory {mb[0]:.0f} -> {mb[-1]:.0f} MB"
            f" (slope {slope(series):+.2f} MB/min over {len(series)} samples; after the first"
            f" {args.warmup} min: {slope(settled(series, args.warmup)):+.2f} MB/min)"
        )


def listening(port: int) -> list[int]:
    """The processes listening on `port` (PostgreSQL's postmaster, redis-server)."""
    found = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True
    ).stdout
    return sorted({int(pid) for pid in re.findall(r"pid=(\d+)", found)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedulers", type=int, default=100)
    parser.add_argument("--operators", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--soak", action="store_true", help="35 minutes, memory each minute")
    parser.add_argument(
        "--warmup", type=float, default=5, help="minutes left out of the settled memory slope"
    )
    parser.add_argument("--logs", type=Path, help="copy the instances' logs into this folder")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=2,
        help="processes the schedulers and operators are spread over",
    )
    args = parser.parse_args()
    if args.soak:
        args.seconds = max(args.seconds, 1800 + args.warmup * 60)
    random.seed(7)
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="takt-bench-load-") as tmp:
        database_url = stack.enter_context(throwaway_postgres())
        redis_url = stack.enter_context(throwaway_redis())
        env = app_env(database_url, Path(tmp) / "var") | {"REDIS_URL": redis_url}
        # The clients log in once: their access tokens outlive the run (a soak's 35 minutes
        # outlived the default 30, and every request after that was refused 401).
        minutes = args.seconds // 60 + 30
        env["TAKT_ACCESS_TOKEN_MINUTES"] = str(max(30, minutes))
        _run([str(BIN / "takt"), "migrate"], env)
        _run([str(BIN / "takt"), "demo", "--size", "large"], env)
        operator_accounts(database_url, 320)
        print("machine:", machine())
        servers = [
            stack.enter_context(uvicorn_server(env, Path(tmp) / f"server-{n}.log")) for n in "AB"
        ]
        bases = [b for b, _ in servers]
        pids = {f"instance {n}": [p] for n, (_, p) in zip("AB", servers, strict=True)}
        pids["postgres"] = listening(urlsplit(database_url.replace("+asyncpg", "")).port or 0)
        pids["redis"] = listening(urlsplit(redis_url).port or 0)
        world = asyncio.run(prepare(bases, args.schedulers))
        print(
            f"{len(world.operator_tokens)} operator logins; boards watch the week of "
            f"{world.view['start'][:10]}",
            file=sys.stderr,
        )
        try:
            asyncio.run(run(world, pids, args))
        finally:
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for n in "AB":
                    shutil.copy(Path(tmp) / f"server-{n}.log", args.logs / f"server-{n}.log")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
