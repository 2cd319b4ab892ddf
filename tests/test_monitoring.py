"""Takt's alert rules (ops/prometheus/alerts.yml) and dashboard (ops/grafana/takt.json).

`promtool check rules` parses every rule; `promtool test rules` runs
ops/prometheus/alerts.test.yml, which fires each alert from made-up series and
keeps it quiet where the plant is healthy. Every dashboard query is parsed by
promtool too (as a recording rule). And every metric a rule or a panel reads is
one that Takt exports, so a renamed metric cannot leave an alert that never
fires or a panel that stays empty.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
from needs import unavailable
from servers import REPO_ROOT

import app.realtime.redis_hub  # noqa: F401 (its metrics: what an app with REDIS_URL exports)
from app.main import create_app
from app.settings import Settings

RULES = REPO_ROOT / "ops" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO_ROOT / "ops" / "prometheus" / "alerts.test.yml"
DASHBOARD = REPO_ROOT / "ops" / "grafana" / "takt.json"
# Grafana's variables, as a dashboard's queries are sent to Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$job": "takt"}
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


def dashboard_queries() -> list[str]:
    queries = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            query = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                query = query.replace(variable, value)
            queries.append(query)
    return queries


def test_every_dashboard_query_is_promql(tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 15
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"takt:panel_{i}", "expr": q} for i, q in enumerate(queries)],
            }
        ]
    }
    (tmp_path / "dashboard.yml").write_text(json.dumps(rules))  # JSON is YAML
    checked = subprocess.run(
        [promtool(), "check", "rules", "dashboard.yml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def read_metrics() -> set[str]:
    text = RULES.read_text() + "\n".join(dashboard_queries())
    return {
        re.sub(r"_(bucket|count|sum)$", "", name) for name in re.findall(r"\btakt_[a-z_]+\b", text)
    }


async def test_every_metric_a_rule_or_panel_reads_is_exported_by_takt(
    sqlite_database_url: str, tmp_path: Path
) -> None:
    read = read_metrics() - {"takt_panel"}
    app = create_app(Settings(database_url=sqlite_database_url, var_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://takt") as http,
    ):
        exported = (await http.get("/metrics")).text
    families = set(re.findall(r"^# TYPE (\w+) ", exported, re.MULTILINE))
    assert read and read <= families, read - families
