"""`make bench-fjsp`: the optimizer on the Brandimarte flexible job shops, beside plain CP-SAT.

Each instance goes through the app's own path: imported into a throwaway
SQLite plant as jobs, tasks with alternative routings and machines (what
`takt import-fjsp` does), an optimizer run queued with `start_optimization`,
run by the in-process worker, and the makespan read from the run's draft.
Then the same instance with plain CP-SAT under the same limits: one optional
interval per operation and machine, exactly one per operation, no overlap per
machine, precedence within a job, minimise the makespan. The result is one
markdown table, both side by side, with the gap to the best known upper bound
(`instances.json`). The full run (15 instances, 10 s each, twice) takes about
5 minutes and both cores: don't run it while others need the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean
from typing import Any, NamedTuple

from ortools.sat.python import cp_model

from app.domain.plants.fjsp import FlexibleJobShop, read_fjsp, to_plant_data
from app.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data" / "fjsp"
INSTANCES = tuple(f"mk{n:02d}" for n in range(1, 16))
# Any moment will do: the instance's jobs are released then and the plan starts then.
START = datetime(2026, 3, 2, 6, tzinfo=UTC)


class Run(NamedTuple):
    makespan: int | None
    seconds: float
    status: str


class Row(NamedTuple):
    name: str
    size: str
    best_known: int
    lower_bound: int
    takt: Run
    plain: Run | None

    def gap(self, run: Run | None) -> float | None:
        if run is None or run.makespan is None:
            return None
        return 100 * (run.makespan - self.best_known) / self.best_known


def _gap(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} %"


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| instance | jobs x machines | best known (LB) | Takt | gap | time | plain CP-SAT "
        "| gap | time | Takt vs plain |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        plain = row.plain
        versus = "-"
        if plain is not None and plain.makespan is not None and row.takt.makespan is not None:
            delta = row.takt.makespan - plain.makespan
            versus = "same" if delta == 0 else ("better" if delta < 0 else "**worse**")
        cells = (
            row.name,
            row.size,
            f"{row.best_known} ({row.lower_bound})",
            "-" if row.takt.makespan is None else str(row.takt.makespan),
            _gap(row.gap(row.takt)),
            f"{row.takt.seconds:.1f} s",
            "-" if plain is None or plain.makespan is None else str(plain.makespan),
            _gap(row.gap(plain)),
            "-" if plain is None else f"{plain.seconds:.1f} s",
            versus,
        )
        lines.append(f"| {' | '.join(cells)} |")
    takt = [g for row in rows if (g := row.gap(row.takt)) is not None]
    plain_gaps = [g for row in rows if (g := row.gap(row.plain)) is not None]
    lines.append("")
    lines.append(
        f"Mean gap to the best known: Takt {_gap(mean(takt) if takt else None)} "
        f"({len(takt)} of {len(rows)} solved), plain CP-SAT "
        f"{_gap(mean(plain_gaps) if plain_gaps else None)}."
    )
    return "\n".join(lines)


def plain_cp_sat(instance: FlexibleJobShop, limit: float, workers: int) -> Run:
    """The straightforward FJSP model, as the data's README describes it."""
    m = cp_model.CpModel()
    horizon = sum(max(t for _, t in op) for job in instance.jobs for op in job)
    per_machine: dict[int, list[Any]] = {}
    ends = []
    for j, job in enumerate(instance.jobs):
        previous_end = None
        for o, operation in enumerate(job):
            start = m.new_int_var(0, horizon, f"s{j}_{o}")
            end = m.new_int_var(0, horizon, f"e{j}_{o}")
            literals = []
            for machine, duration in operation:
                chosen = m.new_bool_var(f"x{j}_{o}_{machine}")
                interval = m.new_optional_fixed_size_interval_var(
                    start, duration, chosen, f"i{j}_{o}_{machine}"
                )
                m.add(end == start + duration).only_enforce_if(chosen)
                per_machine.setdefault(machine, []).append(interval)
                literals.append(chosen)
            m.add_exactly_one(literals)
            if previous_end is not None:
                m.add(start >= previous_end)
            previous_end = end
        ends.append(previous_end)
    for intervals in per_machine.values():
        m.add_no_overlap(intervals)
    makespan = m.new_int_var(0, horizon, "makespan")
    m.add_max_equality(makespan, ends)
    m.minimize(makespan)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = limit
    solver.parameters.num_workers = workers
    started = time.monotonic()
    status = solver.solve(m)
    seconds = time.monotonic() - started
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Run(None, seconds, solver.status_name(status).lower())
    return Run(int(solver.objective_value), seconds, solver.status_name(status).lower())


def through_app(instance: FlexibleJobShop, limit: float, workers: int) -> Run:
    with tempfile.TemporaryDirectory(prefix="takt-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'takt.db'}"
        result = asyncio.run(_optimize_in_app(instance, url, Path(tmp), limit, workers))
    makespan = result.get("makespan_minutes") if result.get("draft_id") else None
    return Run(
        None if makespan is None else int(makespan),
        float(result.get("solve_seconds", 0.0)),
        str(result.get("solver_status", "failed")),
    )


async def _optimize_in_app(
    instance: FlexibleJobShop, url: str, var_dir: Path, limit: float, workers: int
) -> dict[str, Any]:
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
        await load_plant(
            services=services, actor=SYSTEM, plant=to_plant_data(instance, start=START)
        )
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
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per instance")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", help="comma-separated instance names, e.g. mk01,mk10")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared fjsp directory")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain CP-SAT column")
    return parser.parse_args(argv)


def main(argv: Sequence[str] = sys.argv[1:]) -> int:
    args = parse_args(argv)
    names = INSTANCES if not args.only else tuple(n.strip() for n in args.only.split(","))
    known = {e["name"]: e for e in json.loads((args.data / "instances.json").read_text())}
    if unknown := [name for name in names if name not in known]:
        print(f"unknown instances: {', '.join(unknown)}", file=sys.stderr)
        return 2
    rows: list[Row] = []
    for name in names:
        instance = read_fjsp(args.data / "instances" / name)
        takt = through_app(instance, args.time_limit, args.workers)
        plain = None if args.no_plain else plain_cp_sat(instance, args.time_limit, args.workers)
        entry = known[name]
        row = Row(
            name,
            f"{len(instance.jobs)} x {instance.machines}",
            entry["upper_bound"],
            entry["lower_bound"],
            takt,
            plain,
        )
        rows.append(row)
        print(
            f"{name}: Takt {takt.makespan} ({_gap(row.gap(takt))}), "
            f"plain {plain and plain.makespan} ({_gap(row.gap(plain))})",
            file=sys.stderr,
        )
    print(f"## Flexible job-shop bench, {datetime.now(UTC):%Y-%m-%d %H:%M UTC}\n")
    print(f"- command: `{shlex.join([os.path.relpath(sys.executable, REPO), *sys.argv])}`")
    print(f"- CPUs: {len(os.sched_getaffinity(0))}, workers {args.workers}")
    print(f"- time limit: {args.time_limit:g} s per instance, each side\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
