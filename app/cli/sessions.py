"""`takt sessions list|end`: who is signed in where, and signing them out.

    takt sessions list [--user USERNAME] [--all]     live sessions (--all: ended ones too)
    takt sessions end SESSION_ID                    end one session (a lost tablet, a wall)
    takt sessions end --user USERNAME               end every session of a user

Ending is audited (as the system) and takes effect on the next request at
once; with `REDIS_URL` set the running instances are told too, and close the
session's open boards and streams at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from app.cli.common import CommandFailed, add_command, described, services_for
from app.realtime.hub import Message
from app.services import sessions
from app.services.context import SYSTEM, Services
from app.services.errors import ServiceError
from app.services.users import get_user_by_username
from app.settings import Settings


def add_commands(commands: Any) -> None:
    parser = commands.add_parser(
        "sessions", help="list or end signed-in browser sessions", allow_abbrev=False
    )
    actions = parser.add_subparsers(required=True, metavar="ACTION", help="one of:")
    listing = add_command(actions, "list", _list, "list live sessions", full_name="sessions list")
    listing.add_argument("--user", metavar="USERNAME", help="only this user's sessions")
    listing.add_argument("--all", action="store_true", help="ended and expired sessions too")
    ending = add_command(
        actions, "end", _end, "end a session, or every session of a user", full_name="sessions end"
    )
    ending.add_argument("session_id", metavar="SESSION_ID", nargs="?", help="the session's id")
    ending.add_argument("--user", metavar="USERNAME", help="end every session of this user")


class _RedisAnnouncer:
    """Publishes on Redis for the running instances (the command's own hub is in-process)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def publish(self, channel: str, message: Message) -> None:
        from redis.asyncio import Redis

        client = Redis.from_url(self.url)
        try:
            await client.publish(channel, json.dumps(message))
        finally:
            await client.aclose()


async def _user_id(services: Services, username: str | None) -> int | None:
    if username is None:
        return None
    user = await get_user_by_username(services=services, username=username)
    if user is None:
        raise CommandFailed(f"no user {username!r}")
    return user.id


def _list(args: argparse.Namespace, settings: Settings) -> int:
    async def listed() -> list[sessions.SessionListing]:
        async with services_for(settings) as services:
            user_id = await _user_id(services, args.user)
            return await sessions.list_sessions(
                services=services, actor=SYSTEM, user_id=user_id, include_ended=args.all
            )

    found = asyncio.run(listed())
    if not found:
        print("No sessions.")
        return 0
    rows = [("session", "user", "role", "device", "method", "started", "state")]
    for item in found:
        state = (
            f"ended {_when(item.ended_at)} ({item.ended_reason})"
            if item.ended_at is not None
            else f"until {_when(item.expires_at)}"
        )
        rows.append(
            (item.id, item.username, item.role, item.device, item.method,
             _when(item.started_at), state)
        )  # fmt: skip
    widths = [max(len(row[column]) for row in rows) for column in range(6)]
    for row in rows:
        print("  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(row[:6])), row[6]]))
    return 0


def _when(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%d %H:%M UTC"))


def _end(args: argparse.Namespace, settings: Settings) -> int:
    if (args.session_id is None) == (args.user is None):
        raise CommandFailed("name a SESSION_ID or --user USERNAME (one of them)")

    async def end() -> int:
        async with services_for(settings) as services:
            if settings.redis_url:
                services.hub = _RedisAnnouncer(settings.redis_url)  # type: ignore[assignment]
            try:
                if args.session_id is not None:
                    await sessions.end_session(
                        services=services, actor=SYSTEM, session_id=args.session_id
                    )
                    return 1
                user_id = await _user_id(services, args.user)
                assert user_id is not None
                ended = await sessions.end_sessions_of(
                    services=services, actor=SYSTEM, user_id=user_id
                )
                return len(ended)
            except ServiceError as error:
                raise CommandFailed(
                    f"no live session {args.session_id!r} (see `takt sessions list`)"
                    if error.code == "not_found" and args.session_id is not None
                    else described(error)
                ) from None

    count = asyncio.run(end())
    print(f"Ended {count} session{'' if count == 1 else 's'}; their next request goes to login.")
    return 0
