"""The deployment that is documented is the one that is tested.

`deploy/topology.toml` describes production once; `docker-compose.yml` and
`deploy/nginx.conf` are made from it (a test below fails when they drift).
The topology test starts exactly what it describes, on loopback and with
Debian's own packages, no container daemon: PostgreSQL and Redis, the
migration, three `takt serve` replicas, one `takt worker`, and nginx in
front with TLS (a self-signed certificate made here), secrets as files and
X-Forwarded-* trusted from nginx's address only. Two real browsers go
through nginx: Ben's board hears Anna's move over a WebSocket that crosses
nginx; the replica holding Ben's socket is killed mid-session, and all it
costs him is a reconnect: Anna's next move reaches him, with no reload.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from browser_login import submit_login
from needs import unavailable
from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WAIT_MS = 20_000
PASSWORD = "takt-demo"  # the demo plant's accounts


def topology_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("topology", ROOT / "deploy" / "topology.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_compose_file_and_nginx_conf_are_made_from_the_one_description() -> None:
    topology = topology_module()
    for path, text in topology.rendered().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.name} differs from deploy/topology.toml: run `python deploy/topology.py write`"
        )
    described = topology.load()
    compose = topology.compose(described)
    assert compose.count("command:\n    - takt\n    - serve") == described["app"]["replicas"]
    assert "POSTGRES_PASSWORD:" not in compose and "POSTGRES_PASSWORD_FILE" in compose
    assert f"FORWARDED_ALLOW_IPS: {described['network']['proxy_address']}" in compose
    assert '"*"' not in compose


# --- the deployment on loopback ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def on_loopback(value: str, urls: dict[str, str], folders: dict[str, Path]) -> str:
    """A value of the description as it is on this machine: URLs and mounted folders."""
    for name, url in urls.items():
        if value.startswith(name):
            return url
    for mount, folder in folders.items():
        value = value.replace(mount, str(folder))
    return value


class Deployment:
    def __init__(self, tmp: Path, database_url: str, redis_url: str) -> None:
        self.topology = topology_module()
        self.described = self.topology.load()
        self.tmp = tmp
        self.logs = tmp / "logs"
        self.logs.mkdir()
        secrets, keys = tmp / "secrets", tmp / "keys"
        secrets.mkdir()
        keys.mkdir()
        (secrets / "db_password").write_text("unused-by-trust-auth\n")
        folders = {"/run/secrets": secrets, "/run/takt-keys": keys}
        urls = {"postgresql": database_url, "redis": redis_url}
        described_env = self.described["takt"]["environment"]
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("TAKT_") and key not in ("DATABASE_URL", "REDIS_URL")
        }
        self.env |= {key: on_loopback(v, urls, folders) for key, v in described_env.items()}
        # nginx reaches the replicas from loopback: the one address they trust.
        self.env |= {"FORWARDED_ALLOW_IPS": "127.0.0.1", "PATH": f"{BIN}:{self.env['PATH']}"}
        self.env |= {"TAKT_VAR_DIR": str(tmp / "var"), "TAKT_LOG_JSON": "true"}
        self.replicas: list[tuple[int, subprocess.Popen[bytes]]] = []
        self.https_port = free_port()
        self.stack = ExitStack()

    def run(self, command: list[str]) -> None:
        subprocess.run(command, env=self.env, check=True, capture_output=True, timeout=300)

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the stack)
        self.stack.callback(log.close)
        process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.stack.callback(stop, process)
        return process

    def up(self) -> None:
        self.run(self.described["migrate"]["command"])
        self.run(["takt", "demo", "--size", "large"])
        app = self.described["app"]
        for n in range(1, app["replicas"] + 1):
            port = free_port()
            command = [
                "127.0.0.1"
                if part == "0.0.0.0"
                else str(port)
                if part == str(app["port"])
                else part
                for part in app["command"]
            ]
            self.replicas.append((port, self.start(f"app-{n}", command)))
        for n in range(1, self.described["worker"]["replicas"] + 1):
            self.start(f"worker-{n}", self.described["worker"]["command"])
        for port, _ in self.replicas:
            wait_for(f"http://127.0.0.1:{port}/health", verify=True)
        self.start_nginx()
        wait_for(f"{self.url}/health", verify=False)

    def start_nginx(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            unavailable("nginx is not installed (apt-get install nginx)")
        prefix = self.tmp / "nginx"
        prefix.mkdir()
        shutil.copy("/etc/nginx/mime.types", prefix / "mime.types")
        certificate, key = prefix / "tls.crt", prefix / "tls.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", str(key), "-out", str(certificate), "-subj", "/CN=localhost",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            check=True, capture_output=True,
        )  # fmt: skip
        conf = self.topology.nginx_conf(
            upstreams=[f"127.0.0.1:{port}" for port, _ in self.replicas],
            https_listen=f"127.0.0.1:{self.https_port}",
            http_listen=f"127.0.0.1:{free_port()}",
            certificate=str(certificate),
            key=str(key),
            resolver=None,
        )
        (prefix / "nginx.conf").write_text(conf)
        globals_ = f"daemon off; pid {prefix}/nginx.pid; error_log {prefix}/error.log warn;"
        user = "user root;" if os.geteuid() == 0 else ""
        self.start("nginx", [nginx, "-p", str(prefix), "-c", "nginx.conf", "-g", globals_ + user])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def replica_holding_a_socket(self) -> int:
        """The index of the replica with an open WebSocket (asked directly, not via nginx)."""
        for index, (port, process) in enumerate(self.replicas):
            if process.poll() is not None:
                continue
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            found = re.search(r"^takt_websocket_connections (\S+)$", metrics, re.M)
            if found and float(found.group(1)) >= 1:
                return index
        raise AssertionError("no replica holds a WebSocket")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(url: str, *, verify: bool) -> None:
    for _ in range(600):
        try:
            if httpx.get(url, verify=verify, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@pytest.fixture
def deployment(postgres_database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Deployment]:
    deployed = Deployment(tmp_path, postgres_database_url, redis_url)
    with deployed.stack:
        deployed.up()
        yield deployed


async def open_board(browser: Browser, base_url: str, path: str, username: str) -> Page:
    context = await browser.new_context(
        viewport={"width": 1400, "height": 800}, ignore_https_errors=True
    )
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    await page.goto(f"{base_url}/login?next={quote(path, safe='')}")
    await submit_login(page, username, PASSWORD)
    await page.wait_for_selector("#bars")
    await on_websocket(page)
    # Counts the times the live status left "live" (a dropped connection).
    await page.evaluate(
        """() => { window.drops = 0; new MutationObserver(() => {
            const s = document.getElementById('live-status');
            if (s && s.dataset.state !== 'live') window.drops += 1;
        }).observe(document.body,
                   {subtree: true, attributes: true, attributeFilter: ['data-state']}); }"""
    )
    return page


async def on_websocket(page: Page) -> None:
    await page.wait_for_function(
        "() => window.taktLive && window.taktLive.transport === 'websocket'"
        " && document.getElementById('live-status')?.dataset.state === 'live'"
    )


async def a_booked_task(base_url: str) -> dict[str, Any]:
    """A task booked for later today or tomorrow, with its slot and version."""
    async with httpx.AsyncClient(base_url=base_url, verify=False, timeout=30) as api:
        token = await api.post(
            "/api/v1/auth/token", json={"username": "anna", "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        listed = await api.get("/api/v1/tasks?status=scheduled&limit=100", headers=headers)
        assert listed.status_code == 200, listed.text
        for task in listed.json()["items"]:
            if task.get("assignment"):
                return dict(task)
    raise AssertionError("the demo has no booked task")


async def move_in_the_browser(page: Page, task: dict[str, Any], hours: int) -> str:
    """Anna's board moves the task `hours` later through the API with her session; its start."""
    slot = task["assignment"]
    start = datetime.fromisoformat(slot["start"]) + timedelta(hours=hours)
    end = datetime.fromisoformat(slot["end"]) + timedelta(hours=hours)
    answer = await page.evaluate(
        """async ([id, body]) => {
            const csrf = document.querySelector('meta[name=csrf-token]').content;
            const current = await fetch('/api/v1/tasks/' + id, {headers: {'X-CSRF-Token': csrf}});
            const r = await fetch('/api/v1/tasks/' + id + '/assignment', {method: 'PUT',
                headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf,
                          'If-Match': current.headers.get('ETag')},
                body: JSON.stringify(body)});
            return [r.status, await r.text()];
        }""",
        [task["id"], {**_ids(slot), "start": start.isoformat(), "end": end.isoformat()}],
    )
    assert answer[0] == 200, answer
    return start.isoformat()


def _ids(slot: dict[str, Any]) -> dict[str, int]:
    return {"operator_id": slot["operator_id"], "equipment_id": slot["equipment_id"]}


async def bar_start(page: Page, task_id: int) -> str | None:
    return await page.get_attribute(f"#bar-{task_id}", "data-start")


async def test_two_browsers_through_nginx_survive_a_killed_replica(
    browser: Browser, deployment: Deployment
) -> None:
    task = await a_booked_task(deployment.url)
    focus = quote(task["assignment"]["start"])
    path = f"/board?zoom=week&rows=equipment&job={task['job_id']}&focus={focus}"

    ben = await open_board(browser, deployment.url, path, "ben")
    held_by = deployment.replica_holding_a_socket()  # only Ben's socket is open yet
    anna = await open_board(browser, deployment.url, path, "anna")
    assert deployment.url.startswith("https://")

    before = await bar_start(ben, task["id"])
    await move_in_the_browser(anna, task, 2)
    await ben.wait_for_function(
        "([id, before]) => document.getElementById('bar-' + id)?.dataset.start !== before",
        arg=[task["id"], before],
    )

    # The replica holding Ben's WebSocket dies mid-session.
    deployment.replicas[held_by][1].kill()
    await ben.wait_for_function("() => window.drops > 0")
    await on_websocket(ben)  # back, through nginx, on another replica

    moved = await ben.get_attribute(f"#bar-{task['id']}", "data-start")
    current = {**task, "assignment": {**task["assignment"]}}
    current["assignment"]["start"] = (
        datetime.fromisoformat(task["assignment"]["start"]) + timedelta(hours=2)
    ).isoformat()
    current["assignment"]["end"] = (
        datetime.fromisoformat(task["assignment"]["end"]) + timedelta(hours=2)
    ).isoformat()
    await move_in_the_browser(anna, current, 1)
    await ben.wait_for_function(
        "([id, before]) => document.getElementById('bar-' + id)?.dataset.start !== before",
        arg=[task["id"], moved],
    )
    for page in (ben, anna):
        assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1
