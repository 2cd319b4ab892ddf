"""The `takt` command: serve, worker, migrate, demo, import-jssp, import-fjsp, create-user,
import and export of plant data (`app/cli/plant_files.py`), the plant admin's api-key,
audit, keys and tokens (`app/cli/admin.py`), and backup and restore (`app/cli/backups.py`).

Every command reads the same `Settings` as the app (DATABASE_URL, TAKT_VAR_DIR,
...). Commands that change the plant go through the service layer as the
SYSTEM actor, so they are audited and appear in the change feed like any
other change. Exit codes: 0 done, 1 failed (the message says why), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO, get_args
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from app import clock
from app.cli import admin, backups, plant_files, sessions
from app.cli.common import (
    CommandFailed,
    Handler,
    add_command,
    described,
    services_for,
    shown,
)
from app.db import tables
from app.db.session import Database
from app.domain.plan import TaskStatus
from app.domain.plants import fjsp
from app.domain.plants.demo_plant import DemoSize, demo_plant
from app.domain.plants.jssp import read_jssp, to_plant_data
from app.domain.plants.plant_data import PlantData, as_plan
from app.domain.validation import validate_plan
from app.services.context import ROLES, SYSTEM, Services
from app.services.errors import ServiceError
from app.services.plant_loading import LoadedPlant, load_plant, plant_is_empty
from app.settings import Settings

BOARD_URL = "http://127.0.0.1:8000"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command: Handler = args.command
    try:
        return command(args, Settings())
    except CommandFailed as error:
        print(f"takt {args.command_name}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="takt", description="Takt production-scheduling board", allow_abbrev=False
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND", help="one of:")

    serve = add_command(commands, "serve", _serve, "run the web app (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (%(default)s)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes (%(default)s); more than one needs REDIS_URL",
    )

    worker = add_command(commands, "worker", _worker, "run background jobs from Redis (REDIS_URL)")
    worker.add_argument(
        "--concurrency", type=int, help="jobs at once (default: TAKT_QUEUE_CONCURRENCY, 2)"
    )

    add_command(commands, "migrate", _migrate, "bring the database to the newest schema")

    demo = add_command(commands, "demo", _demo, "load a realistic demo plant")
    demo.add_argument(
        "--size",
        choices=get_args(DemoSize),
        default="small",
        help="small: 150 tasks; large: 10,200 tasks, 320 operators, 100 machines (%(default)s)",
    )
    demo.add_argument("--if-empty", action="store_true", help="do nothing if the plant has data")
    demo.add_argument(
        "--seed",
        type=int,
        default=7,
        help="random seed: the same seed, the same plant (%(default)s)",
    )

    for name, handler, what in (
        ("import-jssp", _import_jssp, "import a classic job-shop instance"),
        ("import-fjsp", _import_fjsp, "import a flexible job-shop instance (Brandimarte format)"),
    ):
        shop = add_command(commands, name, handler, what)
        shop.add_argument(
            "file", type=Path, metavar="FILE", help="an instance in the standard format"
        )
        shop.add_argument(
            "--start", help="release time, ISO 8601 (default: the next full hour, plant time)"
        )
        shop.add_argument(
            "--time-unit-minutes",
            type=int,
            default=1,
            help="minutes per time unit of the instance (%(default)s)",
        )

    user = add_command(commands, "create-user", _create_user, "create a user account")
    user.add_argument("username", metavar="USERNAME", help="the login name")
    user.add_argument("--role", required=True, choices=ROLES, help="what the user may do")
    user.add_argument("--operator-id", type=int, help="link an operator account to an operator")
    user.add_argument("--display-name", default="", help="the name shown on pages")
    user.add_argument(
        "--password-file",
        type=Path,
        help="read the password from this file (else stdin when piped, else a prompt)",
    )
    plant_files.add_commands(commands)
    admin.add_commands(commands)
    backups.add_commands(commands)
    sessions.add_commands(commands)
    return parser


# --- serve and migrate -----------------------------------------------------------------------


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.observability import configure_logging

    configure_logging(json_logs=settings.log_json)
    if args.workers > 1 and not settings.redis_url:
        raise CommandFailed(
            "--workers > 1 needs REDIS_URL: without Redis each worker only reaches its own clients"
        )
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # Compressing costs CPU per frame per socket (its context is per socket),
        # which is what limits a board's fan-out; frames are a few KB of HTML.
        ws_per_message_deflate=False,
        # One JSON line per request, written by the app (app/observability.py);
        # uvicorn's own access line would repeat it, query tokens and all.
        access_log=False,
        log_config=None,
    )
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.redis_url:
        raise CommandFailed(
            "the worker needs REDIS_URL: without Redis the app runs its jobs itself"
        )
    if args.concurrency is not None:
        if args.concurrency < 1:
            raise CommandFailed("--concurrency must be at least 1")
        settings = settings.model_copy(update={"queue_concurrency": args.concurrency})
    return asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> int:
    import signal

    from app import tracing
    from app.observability import configure_logging
    from app.realtime.hub import make_hub
    from app.services.run_kinds import attach_queue

    # The queue, its sweep and taskiq log through the standard library: as JSON, like the app.
    configure_logging(json_logs=settings.log_json)
    # A run's span continues the trace of the request that queued it (app/tracing.py).
    tracing.configure(settings)
    services = Services(
        settings=settings, db=Database(settings.database_url), hub=make_hub(settings)
    )
    queue = attach_queue(services, worker=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await services.hub.start()
    await queue.start()
    # Flushed: under a supervisor stdout is a pipe, and this line says the worker is up.
    print(
        f"takt worker {queue.worker_id}: running jobs from Redis ({settings.queue_name}), "
        f"{settings.queue_concurrency} at a time.",
        flush=True,
    )
    try:
        await stopping.wait()
    finally:
        # Running jobs are asked to stop and finish with what they have.
        await queue.stop()
        await services.hub.stop()
        await services.db.dispose()
        tracing.shutdown()
    print(f"takt worker {queue.worker_id}: stopped.", flush=True)
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from app.db.migrate import upgrade

    try:
        upgrade(settings.database_url)
    except (DBAPIError, OSError) as error:
        raise CommandFailed(f"could not migrate {shown(settings.database_url)}: {error}") from None
    print(f"Database {shown(settings.database_url)} is at the newest schema.")
    return 0


# --- demo and import-jssp --------------------------------------------------------------------


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_load_demo(args, settings))


async def _load_demo(args: argparse.Namespace, settings: Settings) -> int:
    async with services_for(settings) as services:
        if not await plant_is_empty(services):
            if args.if_empty:
                print("The plant already has data; the demo was not loaded.")
                return 0
            raise CommandFailed(
                "the plant is not empty; load the demo into a fresh database "
                "(or pass --if-empty to skip quietly)"
            )
        zone = ZoneInfo(settings.plant_timezone)
        now = clock.now().astimezone(zone)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        plant = demo_plant(args.size, start=today, seed=args.seed, now=now)
        plant, kept = await _without_existing_users(services, plant)
        loaded = await _load(services, plant)
    _print_loaded(f"Demo plant ({args.size}) loaded", loaded)
    _print_history(plant)
    _print_conflicts(plant, now)
    _print_logins(plant, kept)
    return 0


async def _without_existing_users(
    services: Services, plant: PlantData
) -> tuple[PlantData, list[str]]:
    """Leave out demo users whose usernames exist already (their passwords stay)."""
    names = [user.username for user in plant.users]
    async with services.db.read() as session:
        found = await session.execute(
            select(tables.User.username).where(tables.User.username.in_(names))
        )
        existing = set(found.scalars())
    users = tuple(user for user in plant.users if user.username not in existing)
    return replace(plant, users=users), sorted(existing)


def _import_jssp(args: argparse.Namespace, settings: Settings) -> int:
    return _import_shop(args, settings, read_jssp, to_plant_data, "job-shop")


def _import_fjsp(args: argparse.Namespace, settings: Settings) -> int:
    return _import_shop(args, settings, fjsp.read_fjsp, fjsp.to_plant_data, "flexible job-shop")


def _import_shop(
    args: argparse.Namespace,
    settings: Settings,
    read: Callable[[Path], Any],
    convert: Callable[..., PlantData],
    kind: str,
) -> int:
    zone = ZoneInfo(settings.plant_timezone)
    start = _release_time(args.start, zone)
    if args.time_unit_minutes <= 0:
        raise CommandFailed("--time-unit-minutes must be positive")
    try:
        instance = read(args.file)
    except FileNotFoundError:
        raise CommandFailed(f"{args.file}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CommandFailed(f"{args.file}: cannot read it ({error})") from None
    except ValueError as error:
        raise CommandFailed(str(error)) from None
    plant = convert(instance, start=start, time_unit_minutes=args.time_unit_minutes)
    loaded = asyncio.run(_import(settings, plant))
    print(
        f"Imported {kind} instance {instance.name}: {len(instance.jobs)} jobs x "
        f"{instance.machines} machines, {instance.operations} operations "
        f"({args.time_unit_minutes} min per time unit), released {start.isoformat()}."
    )
    _print_loaded("Created", loaded)
    return 0


async def _import(settings: Settings, plant: PlantData) -> LoadedPlant:
    async with services_for(settings) as services:
        return await _load(services, plant)


def _release_time(value: str | None, zone: ZoneInfo) -> datetime:
    if value is None:
        now = clock.now().astimezone(zone)
        return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    try:
        start = datetime.fromisoformat(value)
    except ValueError:
        raise CommandFailed(f"--start {value!r} is not an ISO 8601 date and time") from None
    return start if start.tzinfo is not None else start.replace(tzinfo=zone)


async def _load(services: Services, plant: PlantData) -> LoadedPlant:
    try:
        return await load_plant(services=services, actor=SYSTEM, plant=plant)
    except ServiceError as error:
        raise CommandFailed(error.message) from None


# --- create-user -----------------------------------------------------------------------------


def _create_user(args: argparse.Namespace, settings: Settings) -> int:
    password = _read_password(args.password_file, sys.stdin)
    return asyncio.run(_add_user(args, settings, password))


async def _add_user(args: argparse.Namespace, settings: Settings, password: str) -> int:
    from app.services.users import create_user

    async with services_for(settings) as services:
        try:
            user = await create_user(
                services=services,
                actor=SYSTEM,
                username=args.username,
                password=password,
                role=args.role,
                operator_id=args.operator_id,
                display_name=args.display_name,
            )
        except ServiceError as error:
            raise CommandFailed(described(error)) from None
    print(f"Created user {user.username!r} (role {user.role}, id {user.id}).")
    return 0


def _read_password(path: Path | None, stdin: TextIO) -> str:
    """From a file, or piped stdin, or a prompt - never from the command line."""
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            raise CommandFailed(f"{path}: cannot read the password file ({error})") from None
    if not stdin.isatty():
        return stdin.read().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != password:
        raise CommandFailed("the passwords do not match")
    return password


# --- what a load printed ----------------------------------------------------------------------


def _print_loaded(title: str, loaded: LoadedPlant) -> None:
    counts = ", ".join(f"{count} {name}" for name, count in loaded.counts().items())
    print(f"{title} (revision {loaded.revision}, time zone {loaded.timezone}): {counts}.")


def _print_history(plant: PlantData) -> None:
    statuses = Counter(assignment.status for assignment in plant.assignments)
    done, running = statuses[TaskStatus.DONE], statuses[TaskStatus.IN_PROGRESS]
    print(f"The plan until now has happened: {done} tasks done, {running} in progress.")


def _print_conflicts(plant: PlantData, now: datetime) -> None:
    conflicts = validate_plan(as_plan(plant), now=now)
    kinds = Counter(str(conflict.type) for conflict in conflicts)
    listed = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    print(f"The board opens with {len(conflicts)} conflicts to resolve: {listed or 'none'}.")


def _print_logins(plant: PlantData, kept: Sequence[str]) -> None:
    rows = [("username", "password", "role", "name")]
    rows += [(u.username, u.password, u.role, u.display_name) for u in plant.users]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    header = f"Open {BOARD_URL} (after `takt serve`) and log in as:"
    inner = max(len(header), *(len(line) for line in lines))
    print("+" + "-" * (inner + 2) + "+")
    for line in (header, "", *lines):
        print(f"| {line.ljust(inner)} |")
    print("+" + "-" * (inner + 2) + "+")
    if kept:
        print(f"Existing users kept with their own passwords: {', '.join(kept)}.")
