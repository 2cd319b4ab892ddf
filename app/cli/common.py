"""What every `takt` command shares: its failure, its registration, its services."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services.context import Services
from app.services.errors import ServiceError
from app.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]


class CommandFailed(Exception):
    """A command could not do its job; the message tells the user why."""


def add_command(
    commands: Any, name: str, run: Handler, help_text: str, *, full_name: str | None = None
) -> argparse.ArgumentParser:
    """A (sub)command; `full_name` (e.g. "api-key create") is how its errors introduce it."""
    # No abbreviations: `--password` must not quietly mean `--password-file`.
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text, allow_abbrev=False)
    parser.set_defaults(command=run, command_name=full_name or name)
    return parser


def shown(database_url: str) -> str:
    return make_url(database_url).render_as_string(hide_password=True)


def described(error: ServiceError) -> str:
    details = error.details if isinstance(error.details, dict) else {}
    fields = details.get("fields")
    if isinstance(fields, dict) and fields:
        return "; ".join(f"{name}: {problem}" for name, problem in fields.items())
    return error.message


@asynccontextmanager
async def services_for(settings: Settings) -> AsyncIterator[Services]:
    """Services for one command, on a migrated database; disposed afterwards."""
    services = Services(settings=settings, db=Database(settings.database_url), hub=MemoryHub())
    try:
        try:
            await services.live_schedule_id()
        except (LookupError, DBAPIError):
            raise CommandFailed(
                f"the database {shown(settings.database_url)} is not migrated: "
                "run `takt migrate` first"
            ) from None
        yield services
    finally:
        await services.db.dispose()
