"""`make bench-jssp`: the optimizer on the classic job-shop instances, against known optima.

Each instance goes through the app's own path, one at a time: imported into a
throwaway SQLite database as jobs/tasks/equipment (what `takt import-jssp`
does), an optimizer run queued with `start_optimization`, run by the
in-process worker, and the makespan read from the run's draft. With
`--domain-only` it goes straight through the domain instead (`read_jssp` →
`to_plant_data` → `as_plan` → `optimize`). Either way the result is a
markdown table with the mean gap per family. The full run (50 instances,
10 s each, ft10 30 s) takes about 9 minutes and both cores: don't run it
while others need the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean
from typing import NamedTuple

from app.domain.optimizer import OptimizerSettings, optimize
from app.domain.plants.jssp import read_jssp, to_plant_data
from app.domain.plants.plant_data import as_plan
from app.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data" / "jssp"
INSTANCES = (
    "ft06",
    "ft10",
    "ft20",
    *(f"la{n:02d}" for n in range(1, 41)),
    "abz5",
    "abz6",
    *(f"ta{n:02d}" for n in range(1, 6)),
)
# Any moment will do: the instance's jobs are released then and the plan starts then.
START = datetime(2026, 3, 2, 6, tzinfo=UTC)


class Row(NamedTuple):
    name: str
    makespan: int | None
    optimum: int | None
    seconds: float
    status: str
    # "jobs x machines", when known
    size: str = ""

    @property
    def gap(self) -> float | None:
        """Percent above the optimum; None without a solution or a known optimum."""
        if self.makespan is None or not self.optimum:
            return None
        return 100 * (self.makespan - self.optimum) / self.optimum


def family(name: str) -> str:
    match = re.match(r"[a-z]+", name)
    return match.group(0) if match else name


def table(rows: Iterable[Row]) -> str:
    """The results and, below, the mean gap of each family (instances with a gap)."""
    rows = list(rows)
    lines = [
        "| instance | jobs x machines | makespan | optimum | gap | time | status |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        cells = (
            row.name,
            row.size or "-",
            "-" if row.makespan is None else str(row.makespan),
            "-" if row.optimum is None else str(row.optimum),
            "-" if row.gap is None else f"{row.gap:.2f} %",
            f"{row.seconds:.1f} s",
            row.status,
        )
        lines.append(f"| {' | '.join(cells)} |")
    lines += [
        "",
        "| family | instances | solved | optimum reached | mean gap |",
        "|---|---:|---:|---:|---:|",
    ]
    families: dict[str, list[Row]] = {}
    for row in rows:
        families.setdefault(family(row.name), []).append(row)
    for name, members in families.items():
        gaps = [row.gap for row in members if row.gap is not None]
        reached = sum(1 for gap in gaps if gap <= 0)
        mean_gap = f"{mean(gaps):.2f} %" if gaps else "-"
        lines.append(f"| {name} | {len(members)} | {len(gaps)} | {reached} | {mean_gap} |")
    return "\n".join(lines)


def known_optima(data: Path) -> dict[str, int | None]:
    entries = json.loads((data / "instances.json").read_text(encoding="utf-8"))
    return {entry["name"]: entry["optimum"] for entry in entries}


def run(name: str, data: Path, optimum: int | None, settings: OptimizerSettings) -> Row:
    instance = read_jssp(data / "instances" / name)
    plan = as_plan(to_plant_data(instance, start=START))
    result = optimize(plan, now=START, settings=settings)
    return Row(
        name=name,
        makespan=result.makespan_minutes if result.offered else None,
        optimum=optimum,
        seconds=result.solve_seconds,
        status=str(result.status),
        size=f"{len(instance.jobs)} x {instance.machines}",
    )


def run_through_app(name: str, data: Path, optimum: int | None, limit: float, workers: int) -> Row:
    instance = read_jssp(data / "instances" / name)
    with tempfile.TemporaryDirectory(prefix="takt-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'takt.db'}"
        result = asyncio.run(_optimize_in_app(instance, url, Path(tmp), limit, workers))
    makespan = result.get("makespan_minutes") if result.get("draft_id") else None
    return Row(
        name=name,
        makespan=makespan,
        optimum=optimum,
        seconds=float(result.get("solve_seconds", 0.0)),
        status=str(result.get("solver_status", "failed")),
        size=f"{len(instance.jobs)} x {instance.machines}",
    )


async def _optimize_in_app(
    instance: object, url: str, var_dir: Path, limit: float, workers: int
) -> dict[str, object]:
    from app.db.migrate import upgrade
    from app.db.session import Database
    from app.realtime.hub import MemoryHub
    from app.services.context import SYSTEM, Services
    from app.services.optimizer_runs import start_optimization
    from app.services.plant_loading import load_plant
    from app.services.run_kinds import attach_queue

    upgrade(url)
    settings = Settings(database_url=url, redis_url=None, var_dir=var_dir, log_json=False)
    services = Services(settings=settings, db=Database(url), hub=MemoryHub())
    queue = attach_queue(services, worker=True)
    try:
        plant = to_plant_data(instance, start=START)  # type: ignore[arg-type]
        await load_plant(services=services, actor=SYSTEM, plant=plant)
        run_id = await start_optimization(
            services=services,
            actor=SYSTEM,
            time_limit_s=limit,
            workers=workers,
            time_unit_minutes=1,
        )
        finished = await queue.wait(run_id)
        return dict(finished.result or {"solver_status": f"failed: {finished.error}"})
    finally:
        await queue.stop()
        await services.db.dispose()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per instance")
    parser.add_argument("--ft10-time-limit", type=float, default=30.0, help="seconds for ft10")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", help="comma-separated instance names, e.g. ft06,la01")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared jssp directory")
    parser.add_argument(
        "--domain-only",
        action="store_true",
        help="call the optimizer directly, not through import, the job queue and a draft",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] = sys.argv[1:]) -> int:
    args = parse_args(argv)
    names = INSTANCES if not args.only else tuple(n.strip() for n in args.only.split(","))
    optima = known_optima(args.data)
    unknown = [name for name in names if name not in optima]
    if unknown:
        print(f"unknown instances: {', '.join(unknown)}", file=sys.stderr)
        return 2
    rows: list[Row] = []
    for name in names:
        limit = args.ft10_time_limit if name == "ft10" else args.time_limit
        if args.domain_only:
            settings = OptimizerSettings(time_limit_s=limit, workers=args.workers)
            row = run(name, args.data, optima[name], settings)
        else:
            row = run_through_app(name, args.data, optima[name], limit, args.workers)
        rows.append(row)
        gap = "-" if row.gap is None else f"{row.gap:.2f} %"
        print(f"{name}: {row.makespan} (optimum {row.optimum}, gap {gap})", file=sys.stderr)
    print(f"## Job-shop bench, {datetime.now(UTC):%Y-%m-%d %H:%M UTC}\n")
    print(f"- command: `{shlex.join([os.path.relpath(sys.executable, REPO), *sys.argv])}`")
    path = "domain only (optimize)" if args.domain_only else "app (import, queue, draft)"
    print(f"- path: {path}; CPUs: {len(os.sched_getaffinity(0))}, workers {args.workers}")
    print(f"- time limit: {args.time_limit:g} s per instance, ft10 {args.ft10_time_limit:g} s\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
