"""The audit trail at plant scale: the admin page's filters and a queued chain check.

The large demo (`takt demo --size large`) in a throwaway SQLite database, its
audit trail grown to `--entries` (default 1,000,000: months of a busy plant)
with a valid hash chain written straight into the table (bench scaffolding:
a realistic mix of task moves, operator and job edits by five accounts over
300 days). Served by uvicorn with its in-process worker, as `make run` does.
Times each filter of `/admin/audit` (best of 3), then starts "Verify the
chain" and follows it to its finding while asking `/health` every 250 ms,
to show the check does not hold other requests up.

    python scripts/bench_audit.py [--entries 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import app_env, load_plant, machine, uvicorn_server

from app.services.write_path import audit_hash

FILTERS = [
    "",
    "entity=jobs",
    "entity=tasks&entity_id=4711",
    "actor=maria",
    "entity=jobs&actor=ben",
    "since={day}&until={day}",
    "entity=operators&since={day}&until={day}",
    "before={middle}",
]
COLUMNS = "id, at, actor_id, action, entity, entity_id, revision, before, after, prev_hash, hash"


def grow_trail(database: Path, entries: int) -> None:
    """Append `entries` chained audit entries after the demo's own (seeded, repeatable)."""
    rng = random.Random(7)
    db = sqlite3.connect(database)
    last_id, prev = db.execute("SELECT id, hash FROM audit_entries ORDER BY id DESC").fetchone()
    start = datetime.now(UTC) - timedelta(days=300)
    rows = []
    for n in range(entries):
        at = start + timedelta(seconds=n * 300 * 86400 / entries)
        pick = rng.random()
        entity, action = (
            ("tasks", "task.moved")
            if pick < 0.85
            else ("operators", "operator.changed")
            if pick < 0.95
            else ("jobs", "job.changed")
        )
        body = {
            "action": action,
            "entity": entity,
            "entity_id": rng.randint(1, 10200),
            "before": {"start": "a"},
            "after": {"start": "b"},
            "at": at.isoformat(),
            "actor_id": rng.choice([1, 2, 3, 4, None]),
            "revision": last_id + n + 1,
        }
        digest = audit_hash(prev, body)
        rows.append(
            (last_id + n + 1, at.strftime("%Y-%m-%d %H:%M:%S.%f"), body["actor_id"], action,
             entity, body["entity_id"], body["revision"], json.dumps(body["before"]),
             json.dumps(body["after"]), prev, digest)
        )  # fmt: skip
        prev = digest
        if len(rows) == 50_000 or n == entries - 1:
            db.executemany(
                f"INSERT INTO audit_entries ({COLUMNS}) VALUES ({','.join('?' * 11)})", rows
            )
            rows = []
    db.commit()
    db.close()


def log_in(client: httpx.Client) -> str:
    form = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf is not None
    client.post(
        "/login",
        data={
            "username": "admin",
            "password": "takt-demo",
            "csrf_token": csrf.group(1),
            "next": "/admin",
        },
    )
    page = client.get("/admin/users").text
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def time_filters(client: httpx.Client, entries: int) -> None:
    day = (datetime.now(UTC) - timedelta(days=200)).date().isoformat()
    for raw in FILTERS:
        query = raw.format(day=day, middle=entries // 2)
        took = []
        for _ in range(3):
            began = time.perf_counter()
            answer = client.get(f"/admin/audit?{query}")
            took.append((time.perf_counter() - began) * 1000)
            assert answer.status_code == 200, answer.text[:300]
        print(f"  /admin/audit?{query:48s} best {min(took):6.0f} ms")


def time_check(client: httpx.Client, csrf: str) -> None:
    began = time.perf_counter()
    started = client.post("/admin/audit/verify", data={"csrf_token": csrf})
    run_id = re.search(r"check=(\w+)", started.headers["location"])
    assert run_id is not None
    health: list[float] = []
    while True:
        asked = time.perf_counter()
        client.get("/health")
        health.append((time.perf_counter() - asked) * 1000)
        card = client.get(f"/admin/audit/checks/{run_id.group(1)}").text
        if 'id="verify-result"' in card:
            break
        time.sleep(0.25)
    finding = re.search(r'id="verify-result">([^<]*)', card)
    health.sort()
    print(f"  verify the chain (queued): {time.perf_counter() - began:.1f} s: "
          f"{finding.group(1).strip() if finding else '?'}")  # fmt: skip
    print(
        f"  /health meanwhile: {len(health)} asks, median {statistics.median(health):.0f} ms, "
        f"p95 {health[int(len(health) * 0.95)]:.0f} ms, worst {health[-1]:.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="takt-bench-audit-") as tmp:
        env = app_env(f"sqlite+aiosqlite:///{tmp}/bench.db", Path(tmp) / "var")
        print("load:", load_plant(env), file=sys.stderr)
        began = time.perf_counter()
        grow_trail(Path(tmp) / "bench.db", args.entries)
        print(f"trail grown by {args.entries:,} entries in {time.perf_counter() - began:.0f} s")
        print("machine:", machine())
        with (
            uvicorn_server(env, Path(tmp) / "server.log") as (base_url, _pid),
            httpx.Client(base_url=base_url, timeout=600) as client,
        ):
            csrf = log_in(client)
            time_filters(client, args.entries)
            time_check(client, csrf)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
