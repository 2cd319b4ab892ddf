"""The plant admin's commands: api-key create|list|revoke, audit verify, keys rotate, tokens
purge, retention run.

Each runs as the SYSTEM actor through the service layer, so what it writes is
audited where the write path audits it (API keys, data-key rotation).
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
from typing import Any

from app import clock
from app.auth.api_keys import ApiKeyListing
from app.cli.common import CommandFailed, add_command, described, services_for
from app.services.context import ROLES, SYSTEM
from app.services.errors import ServiceError
from app.settings import Settings


def add_commands(commands: Any) -> None:
    api_key = _group(commands, "api-key", "create, list or revoke service API keys")
    create = add_command(
        api_key, "create", _create_key, "create a key; prints its secret once",
        full_name="api-key create",
    )  # fmt: skip
    create.add_argument("--name", required=True, help="what the key is for, e.g. 'MES bridge'")
    create.add_argument("--role", required=True, choices=ROLES, help="what the key may do")
    create.add_argument(
        "--expires-days", type=int, help="refuse the key after this many days (default: never)"
    )
    add_command(
        api_key, "list", _list_keys, "list every key (never its secret)", full_name="api-key list"
    )
    revoke = add_command(
        api_key, "revoke", _revoke_key, "revoke a key for good", full_name="api-key revoke"
    )
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id (tk_...)")

    for group, action, run, what in (
        ("audit", "verify", _verify_audit, "recompute the audit trail's hash chain"),
        ("keys", "rotate", _rotate_keys, "re-encrypt every value with the newest data key"),
        ("tokens", "purge", _purge_tokens, "delete expired and revoked refresh tokens"),
        ("retention", "run", _run_retention, "archive old audit entries, drop old history"),
    ):
        actions = _group(commands, group, f"{action}: {what}")
        parser = add_command(actions, action, run, what, full_name=f"{group} {action}")
        if group == "audit":
            parser.add_argument(
                "--archives",
                action="store_true",
                help="also open every archive file and recompute its hashes",
            )


def _group(commands: Any, name: str, help_text: str) -> Any:
    """A command whose subcommands do the work (`takt api-key create`)."""
    parser = commands.add_parser(name, help=help_text, allow_abbrev=False)
    return parser.add_subparsers(required=True, metavar="ACTION", help="one of:")


# --- api-key ---------------------------------------------------------------------------------


def _create_key(args: argparse.Namespace, settings: Settings) -> int:
    from app.auth.api_keys import create_api_key

    async def create() -> tuple[str, str]:
        async with services_for(settings) as services:
            try:
                return await create_api_key(
                    services=services, actor=SYSTEM, name=args.name, role=args.role,
                    expires_days=args.expires_days,
                )  # fmt: skip
            except ServiceError as error:
                raise CommandFailed(described(error)) from None

    key_id, secret = asyncio.run(create())
    lasts = "" if args.expires_days is None else f", expires in {args.expires_days} days"
    print(f"Created API key {key_id} ({args.name.strip()!r}, role {args.role}{lasts}).")
    print(f"Secret (shown only now; store it like a password): {secret}")
    return 0


def _list_keys(args: argparse.Namespace, settings: Settings) -> int:
    from app.auth.api_keys import list_api_keys

    async def listed() -> list[ApiKeyListing]:
        async with services_for(settings) as services:
            return await list_api_keys(services=services, actor=SYSTEM)

    keys = asyncio.run(listed())
    if not keys:
        print("No API keys.")
        return 0
    now = clock.now()
    rows = [("key id", "role", "created", "state", "name")]
    rows += [
        (key.key_id, key.role, _day(key.created_at), _state(key, now), key.name) for key in keys
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        print("  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])), row[4]]))
    return 0


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _state(key: ApiKeyListing, now: datetime) -> str:
    if key.revoked_at is not None:
        return f"revoked {_day(key.revoked_at)}"
    if key.expires_at is None:
        return "active"
    return f"{'expired' if key.expires_at <= now else 'expires'} {_day(key.expires_at)}"


def _revoke_key(args: argparse.Namespace, settings: Settings) -> int:
    from app.auth.api_keys import revoke_api_key

    async def revoke() -> None:
        async with services_for(settings) as services:
            try:
                await revoke_api_key(services=services, actor=SYSTEM, key_id=args.key_id)
            except ServiceError as error:
                raise CommandFailed(
                    f"no active API key {args.key_id!r} (see `takt api-key list`)"
                    if error.code == "not_found"
                    else described(error)
                ) from None

    asyncio.run(revoke())
    print(f"Revoked API key {args.key_id}; requests signed with it are refused from now on.")
    return 0


# --- audit, keys, tokens ---------------------------------------------------------------------


def _verify_audit(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.audit import ChainCheck, verify_archives, verify_chain
    from app.services.retention import archive_folder

    async def verify() -> ChainCheck:
        async with services_for(settings) as services:
            if args.archives:
                return await verify_archives(services, archive_folder(services))
            return await verify_chain(services)

    check = asyncio.run(verify())
    if check.archive_problem is not None:
        raise CommandFailed(f"an audit archive does not verify: {check.archive_problem}")
    if not check.intact:
        raise CommandFailed(
            f"the audit chain is broken at entry {check.broken_at}: its hash or its link to "
            f"the entry before does not match ({max(0, check.entries - 1)} entries before it "
            "are intact); it or the entry before it was changed or deleted outside Takt"
        )
    archived = ""
    if check.archive_files:
        files = _count(check.archive_files, "archive file", "archive files")
        opened = "opened and recomputed" if args.archives else "linked"
        archived = f", and {_count(check.archived, 'entry', 'entries')} in {files} ({opened})"
    print(f"The audit chain is intact: {_count(check.entries, 'entry', 'entries')}{archived}.")
    return 0


def _run_retention(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.retention import Retention, archive_folder, run_retention

    async def run() -> tuple[Retention, str]:
        async with services_for(settings) as services:
            return await run_retention(services=services), str(archive_folder(services))

    done, folder = asyncio.run(run())
    moved = _count(done.archived_entries, "audit entry", "audit entries")
    files = _count(len(done.archive_files), "file", "files")
    print(
        f"Archived {moved} older than {settings.audit_keep_days} days to {files} in {folder}; "
        f"deleted {_count(done.change_log_rows, 'change-log row', 'change-log rows')} older "
        f"than {settings.change_log_keep_days} days and "
        f"{_count(done.finished_runs, 'finished background run', 'finished background runs')} "
        f"older than {settings.finished_runs_keep_days} days; archived "
        f"{_count(done.archived_jobs, 'finished job', 'finished jobs')} done more than "
        f"{settings.finished_jobs_keep_days} days ago."
    )
    return 0


def _rotate_keys(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.data_keys import Rotation, rotate_data_keys

    # Never created here: a new file's key could open none of the values.
    path = settings.data_keys_path
    if not path.is_file():
        raise CommandFailed(f"{path}: no such data keys file (set TAKT_DATA_KEYS_FILE)")
    try:
        settings.data_keys  # noqa: B018 - read now, so a bad file is a message, not a traceback
    except (OSError, ValueError) as error:
        raise CommandFailed(f"cannot read the data keys: {error}") from None

    async def rotate() -> Rotation:
        async with services_for(settings) as services:
            try:
                return await rotate_data_keys(services=services, actor=SYSTEM)
            except ServiceError as error:
                raise CommandFailed(error.message) from None

    done = asyncio.run(rotate())
    contacts = _count(done.operator_contacts, "operator contact", "operator contacts")
    secrets = _count(done.api_key_secrets, "API key secret", "API key secrets")
    values = _count(done.total, "value", "values")
    print(f"Re-encrypted {values} with the newest data key ({contacts}, {secrets}).")
    return 0


def _purge_tokens(args: argparse.Namespace, settings: Settings) -> int:
    from app.auth.tokens import purge_expired_refresh_tokens

    async def purge() -> int:
        async with services_for(settings) as services:
            return await purge_expired_refresh_tokens(services=services)

    print(f"Deleted {asyncio.run(purge())} expired or revoked refresh tokens.")
    return 0


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"
