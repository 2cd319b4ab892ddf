"""`make bench`: Takt's SPEC §7 latencies on this machine, one run, as a markdown table.

Loads the large demo plant into a throwaway SQLite database (or the database
`--database-url` names, or a throwaway PostgreSQL with `--postgres`), starts
the app as a real uvicorn process, and drives it over loopback with httpx.
The full-plan validation is also timed in process, load and validation
apart, to show where the 1 s budget goes. Nothing here asserts a time: the
numbers are for docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from bench_http import (
    TIMEOUT,
    Samples,
    assignment_writes,
    full_validations,
    login,
    proposals,
    read_resources,
    simple_queries,
)

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
USERNAME, PASSWORD = "anna", "takt-demo"
MS = 1000.0


@dataclass(frozen=True)
class Target:
    """A SPEC §7 target: `stat` of the samples must stay at or under `seconds`."""

    stat: str  # "p95" | "p99"
    seconds: float

    def text(self) -> str:
        return f"{self.stat} ≤ {self.seconds * MS:g} ms"

    def verdict(self, samples: Samples) -> str:
        if samples.errors:
            return f"**errors** ({len(samples.errors)})"
        value = samples.percentile(95 if self.stat == "p95" else 99)
        return "meets" if value <= self.seconds else "**misses**"


@dataclass(frozen=True)
class Row:
    samples: Samples
    target: Target | None


# --- setting up the plant and the server ------------------------------------------------------


def _run(args: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    result = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    if result.returncode != 0:
        raise RuntimeError(f"{shlex.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def app_env(database_url: str, var_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DATABASE_URL" and key != "REDIS_URL" and not key.startswith("TAKT_")
    }
    return env | {
        "DATABASE_URL": database_url,
        "TAKT_VAR_DIR": str(var_dir),
        "TAKT_LOG_JSON": "true",
        "TAKT_RATE_LIMIT_USER": "1000000/minute",
        "TAKT_RATE_LIMIT_SERVICE": "1000000/minute",
    }


def load_plant(env: dict[str, str]) -> dict[str, float]:
    return {
        "migrate": _run([str(BIN / "takt"), "migrate"], env),
        "demo": _run([str(BIN / "takt"), "demo", "--size", "large"], env),
    }


def fill_plan(database_url: str) -> tuple[float, int]:
    """`--fill`: place every task of the tray (seconds taken, tasks placed).

    Bench scaffolding, not a plan anyone would make: a bulk INSERT straight
    into this run's throwaway database, bypassing the write path (no audit,
    no change log, no revision). Tray task i goes to operator i mod O and
    equipment i mod E, 4 h from day 5 on in 4-hour steps per resource, so
    the plan holds every task; whatever conflicts that makes are welcome (the
    validation has to find them).
    """
    sys.path.insert(0, str(REPO))
    from datetime import timedelta

    from sqlalchemy import insert, select

    from app import clock
    from app.db import tables
    from app.db.session import Database

    async def fill() -> int:
        database = Database(database_url)
        try:
            async with database.write() as session:
                schedule = (
                    await session.execute(
                        select(tables.Schedule.id).where(tables.Schedule.kind == "live")
                    )
                ).scalar_one()
                a, tk = tables.Assignment, tables.Task
                placed = select(a.task_id).where(a.schedule_id == schedule)
                tray = (
                    await session.execute(
                        select(tk.id, tk.duration_minutes)
                        .where(tk.id.not_in(placed))
                        .order_by(tk.id)
                    )
                ).all()
                operators = (await session.execute(select(tables.Operator.id))).scalars().all()
                machines = (await session.execute(select(tables.Equipment.id))).scalars().all()
                first = (await session.execute(select(a.start).order_by(a.start))).scalars().first()
                day5 = (first or clock.now()).replace(hour=6, minute=0, second=0, microsecond=0)
                day5 += timedelta(days=5)
                now = clock.now()
                rows = []
                for i, (task_id, minutes) in enumerate(tray):
                    start = day5 + timedelta(hours=4 * (i // len(machines)))
                    rows.append(
                        {
                            "schedule_id": schedule,
                            "task_id": task_id,
                            "operator_id": operators[i % len(operators)],
                            "equipment_id": machines[i % len(machines)],
                            "start": start,
                            "end": start + timedelta(minutes=max(1, minutes)),
                            "assigned_by": None,
                            "assigned_at": now,
                        }
                    )
                if rows:
                    await session.execute(insert(a), rows)
                return len(rows)
        finally:
            await database.dispose()

    began = time.perf_counter()
    count = asyncio.run(fill())
    return time.perf_counter() - began, count


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def uvicorn_server(
    env: dict[str, str], log: Path, workers: int = 1, port: int | None = None
) -> Iterator[tuple[str, int]]:
    """uvicorn on `port` or a free one (`workers` > 1 needs REDIS_URL in `env`, as `takt
    serve` does); stopped on the way out, whatever happened.
    """
    port = port or _free_port()
    args = [
        sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        "--ws-per-message-deflate", "false",  # as `takt serve` runs it (app/cli/__init__.py)
        "--workers", str(workers),
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    base_url = f"http://127.0.0.1:{port}"
    print(f"server: pid {process.pid}, {base_url}, log {log}", file=sys.stderr)
    try:
        deadline = time.monotonic() + 60
        while not _healthy(base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start:\n{_tail(log)}")
            time.sleep(0.1)
        yield base_url, process.pid
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its live children (workers) have used so far."""
    total = 0.0
    for task in [pid, *_children(pid)]:
        fields = Path(f"/proc/{task}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for thread in Path(f"/proc/{pid}/task").iterdir():
        children = (thread / "children").read_text().split()
        found += [int(child) for child in children]
    return found


def _tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    sys.path.insert(0, str(REPO))
    from tests.servers import start_postgres

    server = start_postgres()
    try:
        yield server.url(server.create_database(prefix="bench"))
    finally:
        server.stop()


@contextmanager
def throwaway_redis() -> Iterator[str]:
    sys.path.insert(0, str(REPO))
    from tests.servers import start_redis

    server = start_redis()
    try:
        yield server.url
    finally:
        server.stop()


# --- measuring ---------------------------------------------------------------------------------


async def over_http(
    base_url: str, server_pid: int, database_url: str, args: argparse.Namespace
) -> tuple[list[Row], dict[str, object]]:
    rng = random.Random(args.seed)
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT) as client:
        token = await login(client, USERNAME, PASSWORD)
        client.headers["Authorization"] = f"Bearer {token}"
        resources = await read_resources(client, rng)
        proposal = await proposals(client, resources, rng, args.proposals)
        full, last = await full_validations(client, args.full_runs)
        # In process while the server idles, on the plan the API just validated.
        local_rows, local_facts = await in_process(database_url, args.in_process_runs)
        # One client first: the service time, before any queueing.
        alone = await simple_queries(
            base_url, token, resources, rng, clients=1, requests_each=args.requests * 5
        )
        server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
        pages, details = await simple_queries(
            base_url,
            token,
            resources,
            rng,
            clients=args.clients,
            requests_each=args.requests,
            think=args.think_ms / MS,
        )
        server_cpu = cpu_seconds(server_pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        writes = await assignment_writes(client, resources, rng, args.writes)
    both = Samples(pages.what.replace("list page", "simple queries (both)"))
    both.seconds = pages.seconds + details.seconds
    both.errors = pages.errors + details.errors
    both.wall = pages.wall
    simple = Target("p95", 0.020)
    rows = [
        Row(proposal, Target("p95", 0.020)),
        Row(full, Target("p99", 1.0)),
        *(Row(samples, None) for samples in alone),
        Row(pages, simple),
        Row(details, simple),
        Row(both, simple),
        Row(writes, None),
        *local_rows,
    ]
    facts: dict[str, object] = {
        "tasks": resources.task_total,
        "scheduled tasks": resources.scheduled_total,
        "operators": len(resources.operator_ids),
        "equipment": len(resources.equipment_ids),
        "jobs": len(resources.job_ids),
        "conflicts (last full validation)": len(last.get("conflicts", [])),
        "conflicts by type": last.get("counts", {}),
        "simple queries, one client": f"{sum(s.per_second for s in alone):.0f} requests/s",
        f"simple queries, {args.clients} clients": f"{both.per_second:.0f} requests/s; "
        f"CPU per request: server {server_cpu / len(both.seconds) * MS:.1f} ms, "
        f"bench client {client_cpu / len(both.seconds) * MS:.1f} ms; "
        f"server CPU busy {server_cpu / both.wall:.0%} of one core",
    }
    return rows, facts | local_facts


async def in_process(database_url: str, runs: int) -> tuple[list[Row], dict[str, object]]:
    """`load_plan` and `validate_plan` apart, no HTTP, in this process."""
    sys.path.insert(0, str(REPO))
    from sqlalchemy import select

    from app import clock
    from app.db import tables
    from app.db.plan_queries import load_plan
    from app.db.session import Database
    from app.domain.validation import validate_plan

    database = Database(database_url)
    load = Samples("in process: load_plan (DB → Plan)")
    check = Samples("in process: validate_plan (pure)")
    total = Samples("in process: load + validate")
    try:
        async with database.read() as session:
            schedule_id = (
                await session.execute(
                    select(tables.Schedule.id).where(tables.Schedule.kind == "live")
                )
            ).scalar_one()
        for _ in range(runs):
            began = time.perf_counter()
            async with database.read() as session, session.begin():
                plan = await load_plan(session, schedule_id)
            loaded = time.perf_counter()
            conflicts = validate_plan(plan, now=clock.now())
            done = time.perf_counter()
            load.seconds.append(loaded - began)
            check.seconds.append(done - loaded)
            total.seconds.append(done - began)
    finally:
        await database.dispose()
    facts: dict[str, object] = {
        "plan: tasks / assignments": f"{len(plan.tasks)} / {len(plan.assignments)}",
        "plan: conflicts": len(conflicts),
    }
    return [Row(load, None), Row(check, None), Row(total, Target("p99", 1.0))], facts


# --- reporting ---------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        kib = int(next(line for line in info if line.startswith("MemTotal")).split()[1])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit or "unknown",
        "machine": f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}, "
        f"{kib / 1024 / 1024:.1f} GiB RAM",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "command": shlex.join([os.path.relpath(sys.executable, REPO), *sys.argv]),
    }


def table(rows: list[Row]) -> str:
    lines = [
        "| what | runs | p50 | p95 | p99 | max | SPEC §7 target | verdict |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        s = row.samples
        if not s.seconds:
            lines.append(f"| {s.what} | 0 | - | - | - | - | - | no samples |")
            continue
        cells = [f"{s.percentile(p) * MS:.1f} ms" for p in (50, 95, 99, 100)]
        target = row.target.text() if row.target else "-"
        verdict = (
            row.target.verdict(s)
            if row.target
            else (f"**errors** ({len(s.errors)})" if s.errors else "no target")
        )
        lines.append(
            f"| {s.what} | {len(s.seconds)} | {' | '.join(cells)} | {target} | {verdict} |"
        )
    return "\n".join(lines)


def report(
    header: dict[str, str], loading: dict[str, float], rows: list[Row], facts: dict[str, object]
) -> str:
    out = [f"## Takt bench, {header['date']}", ""]
    out += [
        f"- {key}: `{value}`" if key == "command" else f"- {key}: {value}"
        for key, value in header.items()
        if key != "date"
    ]
    out += [
        f"- `takt {step}`: {seconds:.1f} s"
        if step in ("migrate", "demo")
        else f"- {step}: {seconds:.1f} s"
        for step, seconds in loading.items()
    ]
    out += [f"- {key}: {value}" for key, value in facts.items()]
    out += ["", table(rows)]
    errors = [e for row in rows for e in row.samples.errors[:3]]
    if errors:
        out += ["", "First errors:", *(f"- `{e}`" for e in errors)]
    return "\n".join(out)


# --- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", help="bench this database instead of a temp SQLite one")
    where.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL")
    parser.add_argument(
        "--skip-load", action="store_true", help="the database already holds the large demo plant"
    )
    parser.add_argument("--proposals", type=int, default=300)
    parser.add_argument("--full-runs", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="per concurrent client")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0.0,
        help="mean pause between a concurrent client's requests (default: none, back to back)",
    )
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--in-process-runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--fill",
        action="store_true",
        help="place every tray task too (bulk INSERT into the throwaway database), so the "
        "full validation sees all ~10,200 tasks",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn workers (> 1 starts a throwaway Redis, as `takt serve --workers` needs)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server log)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    header = machine()
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="takt-bench-"))
        if not args.keep:
            stack.callback(shutil.rmtree, work, ignore_errors=True)
        if args.postgres:
            database_url = stack.enter_context(throwaway_postgres())
        else:
            database_url = args.database_url or f"sqlite+aiosqlite:///{work / 'takt.db'}"
        header["database"] = database_url.split(":", 1)[0]
        env = app_env(database_url, work / "var")
        loading = {} if args.skip_load else load_plant(env)
        if args.fill:
            loading["fill (bench only: bulk INSERT of every tray task)"], filled = fill_plan(
                database_url
            )
            header["plan"] = f"--fill: {filled} tray tasks placed by bulk INSERT (bench only)"
        log = work / "server.log"
        try:
            if args.workers > 1:
                env = env | {"REDIS_URL": stack.enter_context(throwaway_redis())}
                header["server"] = f"{args.workers} uvicorn workers, REDIS_URL set"
            with uvicorn_server(env, log, args.workers) as (base_url, pid):
                rows, facts = asyncio.run(over_http(base_url, pid, database_url, args))
        except BaseException:
            if log.exists():
                print(f"server log tail:\n{_tail(log)}", file=sys.stderr)
            raise
        finally:
            if args.keep:
                print(f"server log: {log}", file=sys.stderr)
        print(report(header, loading, rows, facts))
        if any(row.samples.errors for row in rows):
            print(f"\nserver log tail:\n{_tail(log)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
