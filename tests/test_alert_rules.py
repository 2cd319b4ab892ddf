"""Takt's Prometheus alert rules (ops/prometheus/alerts.yml), checked by promtool itself.

`promtool check rules` parses every rule; `promtool test rules` runs
ops/prometheus/alerts.test.yml, which fires each alert from made-up series and
keeps it quiet where the plant is healthy. And every metric a rule reads is one
that Takt exports, so a renamed metric cannot leave an alert that never fires.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
from needs import unavailable
from servers import REPO_ROOT

from app.main import create_app
from app.settings import Settings

RULES = REPO_ROOT / "ops" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO_ROOT / "ops" / "prometheus" / "alerts.test.yml"
ALERTS = {
    "TaktHighErrorRate",
    "TaktSlowRequests",
    "TaktSlowFanOut",
    "TaktQueueBacklog",
    "TaktDeadLetters",
    "TaktNoLiveWorker",
    "TaktDatabaseUnreachable",
    "TaktRedisUnreachable",
    "TaktInstanceDown",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        unavailable("promtool is not installed (Debian: apt-get install prometheus)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, cwd=RULES.parent, timeout=120
    )


def test_promtool_accepts_the_rules() -> None:
    checked = run("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in checked.stdout


def test_every_alert_fires_in_promtools_unit_tests() -> None:
    tested = run("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    text = RULE_TESTS.read_text()
    assert set(re.findall(r"alertname: (\w+)", text)) == ALERTS
    assert set(re.findall(r"- alert: (\w+)", RULES.read_text())) == ALERTS


def test_a_wrong_expectation_fails_promtool(tmp_path: Path) -> None:
    # The unit tests can fail: an alert expected where it stays quiet is reported.
    broken = RULE_TESTS.read_text().replace("4.762% of requests", "9% of requests")
    (tmp_path / "alerts.yml").write_text(RULES.read_text())
    (tmp_path / "broken.test.yml").write_text(broken)
    tested = subprocess.run(
        [promtool(), "test", "rules", "broken.test.yml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert tested.returncode != 0 and "TaktHighErrorRate" in tested.stdout + tested.stderr


async def test_every_metric_a_rule_reads_is_exported_by_takt(
    sqlite_database_url: str, tmp_path: Path
) -> None:
    read = {
        re.sub(r"_(bucket|count|sum)$", "", name)
        for name in re.findall(r"\btakt_[a-z_]+\b", RULES.read_text())
    }
    app = create_app(Settings(database_url=sqlite_database_url, var_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://takt") as http,
    ):
        exported = (await http.get("/metrics")).text
    families = set(re.findall(r"^# TYPE (\w+) ", exported, re.MULTILINE))
    assert read and read <= families, read - families
