"""Takt's production topology, from its one description (deploy/topology.toml).

    python deploy/topology.py write     # docker-compose.yml and deploy/nginx.conf
    python deploy/topology.py check     # exit 1 if the committed files differ

The topology test (tests/web/test_deploy_topology.py) loads the same description
and starts its processes on loopback: the replicas, their commands and
environment, the worker and nginx's configuration come from here, so the
compose file and the tested deployment cannot drift apart.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTION = ROOT / "deploy" / "topology.toml"
COMPOSE = ROOT / "docker-compose.yml"
NGINX = ROOT / "deploy" / "nginx.conf"
SECRETS = "/run/secrets"


def load() -> dict[str, Any]:
    with open(DESCRIPTION, "rb") as raw:
        return tomllib.load(raw)


def nginx_conf(
    *,
    upstreams: list[str],
    https_listen: str,
    http_listen: str,
    certificate: str,
    key: str,
    resolver: str | None,
) -> str:
    """nginx in front of the replicas: TLS, WebSockets (/ws) and SSE streams, HTTP → HTTPS."""
    servers = "\n".join(
        f"        server {upstream} max_fails=1 fail_timeout=5s;" for upstream in upstreams
    )
    resolve = f"\n    resolver {resolver} valid=10s ipv6=off;\n" if resolver else ""
    return f"""# nginx in front of the Takt replicas: TLS, HTTP, WebSockets (/ws) and SSE streams.
# Made by deploy/topology.py from deploy/topology.toml: edit those, not this file.
worker_processes auto;

events {{
    worker_connections 8192;
}}

http {{
    include mime.types;
    default_type application/octet-stream;
    sendfile on;
    server_tokens off;
    access_log off;
{resolve}
    upstream takt {{
{servers}
        keepalive 64;
    }}

    # "Connection: upgrade" for WebSocket handshakes, keep-alive otherwise.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}

    server {{
        listen {http_listen};
        return 301 https://$host$request_uri;
    }}

    server {{
        listen {https_listen} ssl;
        ssl_certificate {certificate};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        client_max_body_size 20m;

        location / {{
            proxy_pass http://takt;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Request-ID $request_id;
            # A replica that dies mid-session: the next one answers.
            proxy_next_upstream error timeout http_502 http_503;

            # Server-sent events must reach the browser as they are written.
            proxy_buffering off;
            proxy_cache off;

            # WebSocket and SSE connections stay open for hours (the dashboard
            # wall runs for days); idle ones are kept alive by the app's heartbeats.
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }}
    }}
}}
"""


def compose_nginx(topology: dict[str, Any]) -> str:
    app = topology["app"]
    return nginx_conf(
        upstreams=[f"app-{n}:{app['port']}" for n in range(1, app["replicas"] + 1)],
        https_listen="443",
        http_listen="80",
        certificate=f"{SECRETS}/tls_certificate",
        key=f"{SECRETS}/tls_key",
        resolver="127.0.0.11",
    )


def compose(topology: dict[str, Any]) -> str:
    takt, network = topology["takt"], topology["network"]
    postgres, proxy = topology["postgres"], topology["proxy"]
    environment = takt["environment"] | {"FORWARDED_ALLOW_IPS": network["proxy_address"]}
    healthy = {"condition": "service_healthy"}
    migrated = {"condition": "service_completed_successfully"}
    keys = ["keys:/run/takt-keys:ro"]

    def takt_service(command: list[str], **extra: Any) -> dict[str, Any]:
        return {
            "image": takt["image"],
            "build": ".",
            "command": command,
            "environment": environment,
            "secrets": ["db_password"],
            "volumes": keys,
            "networks": ["takt"],
            "depends_on": {"migrate": migrated, "postgres": healthy, "redis": healthy},
            "restart": "unless-stopped",
        } | extra

    services: dict[str, Any] = {
        "postgres": {
            "image": postgres["image"],
            "environment": {
                "POSTGRES_USER": postgres["user"],
                "POSTGRES_DB": postgres["database"],
                "POSTGRES_PASSWORD_FILE": f"{SECRETS}/db_password",
            },
            "secrets": ["db_password"],
            "volumes": ["pgdata:/var/lib/postgresql/data"],
            "networks": ["takt"],
            "healthcheck": {
                "test": [
                    "CMD-SHELL",
                    f"pg_isready -U {postgres['user']} -d {postgres['database']}",
                ],
                "interval": "5s",
                "timeout": "3s",
                "retries": 20,
            },
            "restart": "unless-stopped",
        },
        "redis": {
            "image": topology["redis"]["image"],
            # Pub/sub, rate limits and the queue's messages; nothing to persist.
            "command": ["redis-server", "--save", "", "--appendonly", "no"],
            "networks": ["takt"],
            "healthcheck": {
                "test": ["CMD", "redis-cli", "ping"],
                "interval": "5s",
                "timeout": "3s",
                "retries": 20,
            },
            "restart": "unless-stopped",
        },
        "migrate": takt_service(
            topology["migrate"]["command"],
            volumes=["keys:/run/takt-keys"],
            depends_on={"postgres": healthy},
            restart="no",
        ),
    }
    app = topology["app"]
    for n in range(1, app["replicas"] + 1):
        services[f"app-{n}"] = takt_service(app["command"], expose=[str(app["port"])])
    worker = topology["worker"]
    for n in range(1, worker["replicas"] + 1):
        services[f"worker-{n}"] = takt_service(
            worker["command"], stop_grace_period=worker["stop_grace_period"]
        )
    services["proxy"] = {
        "image": proxy["image"],
        "build": {"context": ".", "dockerfile": "deploy/proxy.Dockerfile"},
        "ports": [f"{proxy['https_port']}:443", f"{proxy['http_port']}:80"],
        "secrets": ["tls_certificate", "tls_key"],
        "networks": {"takt": {"ipv4_address": network["proxy_address"]}},
        "depends_on": {
            f"app-{n}": {"condition": "service_started"} for n in range(1, app["replicas"] + 1)
        },
        "restart": "unless-stopped",
    }
    document = {
        "name": "takt",
        "services": services,
        "networks": {"takt": {"ipam": {"config": [{"subnet": network["subnet"]}]}}},
        "secrets": {name: {"file": f"./{path}"} for name, path in topology["secrets"].items()},
        "volumes": {"pgdata": {}, "keys": {}},
    }
    header = (
        "# Takt in production: PostgreSQL, Redis, the app replicas behind nginx (TLS), a worker.\n"
        "# Made by deploy/topology.py from deploy/topology.toml: edit those, not this file.\n"
        "# Before `docker compose up --build`, put the secrets' files in deploy/secrets/\n"
        "# (db_password, tls.crt, tls.key; see docs/operations.md), then open https://localhost:"
        f"{proxy['https_port']}/\n"
    )
    return header + yaml.dump(document, Dumper=_Plain, sort_keys=False, width=100)


class _Plain(yaml.SafeDumper):
    """Every service spelled out in full: no YAML anchors for the values they share."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def rendered() -> dict[Path, str]:
    topology = load()
    return {COMPOSE: compose(topology), NGINX: compose_nginx(topology)}


def main(argv: list[str]) -> int:
    if argv[1:] == ["write"]:
        for path, text in rendered().items():
            path.write_text(text, encoding="utf-8")
        return 0
    if argv[1:] == ["check"]:
        stale = [p.name for p, text in rendered().items() if p.read_text(encoding="utf-8") != text]
        if stale:
            print(f"out of date with deploy/topology.toml: {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
