"""Schemathesis over every operation of /openapi.json, against a real server.

One server on PostgreSQL (the stricter backend) with the small demo plant;
one seeded, bounded run per caller: a scheduler, a manager, an operator and
nobody. Every check schemathesis has runs (see schemathesis.toml beside this
file for the two that are tuned): no server error, no status, header or body
the document does not allow. Each run's figures are printed (`pytest -s`);
a failing run shows schemathesis' own report with a curl line per failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import PostgresServer, app_server, load_demo, without_faketime

# Fuzzing checks answers' shapes and status codes, not time: run with the real clock only.
pytestmark = [pytest.mark.postgres, pytest.mark.clock_free]

SEED = 7001
CONFIG = Path(__file__).with_name("schemathesis.toml")
PHASES = "examples,coverage,fuzzing,stateful"
# caller: (demo user or None, examples per operation and phase)
CALLERS = {
    "scheduler": ("anna", 10),
    "manager": ("maria", 8),
    "operator": ("olga", 6),
    "anonymous": (None, 5),
}


@pytest.fixture(scope="module")
def demo_server(
    postgres_server: PostgresServer,
    _postgres_template: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    name = postgres_server.create_database(template=_postgres_template)
    var_dir = tmp_path_factory.mktemp("schemathesis")
    url = postgres_server.url(name)
    load_demo(url, var_dir)
    limits = {
        # Thousands of requests a minute, hundreds of wrong passwords: the run must meet
        # the API, not its rate and login limits.
        "TAKT_RATE_LIMIT_USER": "1000000/minute",
        "TAKT_LOGIN_FAILURES_PER_ADDRESS": "1000000/minute",
        # The optimizer runs it starts, one at a time beside the server on a small machine.
        "TAKT_QUEUE_CONCURRENCY": "1",
    }
    with app_server(database_url=url, redis_url=None, var_dir=var_dir, env=limits) as base_url:
        yield base_url
    postgres_server.drop_database(name)


@pytest.fixture(scope="module")
def tokens(demo_server: str) -> dict[str, str]:
    """Every caller's access token, before any run can lock a name out."""
    return {user: _token(demo_server, user) for user, _ in CALLERS.values() if user}


@pytest.mark.parametrize("caller", CALLERS)
def test_schemathesis_finds_no_server_error_and_no_lie(
    demo_server: str, tokens: dict[str, str], caller: str, tmp_path: Path
) -> None:
    user, examples = CALLERS[caller]
    report_path = tmp_path / "report.json"
    command = [
        str(Path(sys.executable).with_name("st")),
        *("--config-file", str(CONFIG), "run", f"{demo_server}/openapi.json"),
        # All checks but one (see schemathesis.toml for why).
        *("--checks", "all", "--exclude-checks", "positive_data_acceptance"),
        *("--phases", PHASES, "--workers", "1", "--request-timeout", "60"),
        *("--seed", str(SEED), "--max-examples", str(examples)),
        *("--report", "json", "--report-json-path", str(report_path)),
        *("--no-color", "--output-truncate", "true"),
    ]
    if user is not None:
        command += ["-H", f"Authorization: Bearer {tokens[user]}"]
    # Outside libfaketime (make test-clock): its threads' timed waits never end under it;
    # the server it tests runs on the faked clock all the same.
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
        env=without_faketime(),
    )
    report = json.loads(report_path.read_text())
    operations, cases = report["operations"], report["test_cases"]
    print(
        f"\nschemathesis as {caller}: {operations['tested']}/{operations['total']} operations, "
        f"{cases['generated']} test cases, {cases['with_failures']} with failures, "
        f"{len(report['errors'])} errors, {report['running_time']:.0f} s (seed {SEED})"
    )
    assert operations["tested"] == operations["total"], done.stdout[-5000:]
    assert report["failures"] == [] and report["errors"] == [], done.stdout[-20000:]
    assert done.returncode == 0, done.stdout[-5000:]


def _token(base_url: str, username: str) -> str:
    response = httpx.post(
        f"{base_url}/api/v1/auth/token", json={"username": username, "password": "takt-demo"}
    )
    response.raise_for_status()
    return str(response.json()["access_token"])
