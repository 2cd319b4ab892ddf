"""User accounts: create them (through the write path) and look them up.

Usernames are stored stripped and lower-cased, so `J.Smith` and `j.smith`
are one account. The audit trail records ids and the role, never the
username or anything else personal.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.db import tables
from app.security.passwords import hash_password
from app.services.access import require
from app.services.context import ROLES, Actor, Services
from app.services.errors import InvalidInput, NotFound, StateConflict
from app.services.sessions import announce_ended, end_sessions_in
from app.services.write_path import Transaction, change, require_version

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_USERNAME_LENGTH = 100


def normalize_username(username: str) -> str:
    return username.strip().lower()


async def create_user(
    *,
    services: Services,
    actor: Actor,
    username: str,
    password: str,
    role: str,
    operator_id: int | None = None,
    display_name: str = "",
) -> tables.User:
    require(actor, "users.manage")
    name = normalize_username(username)
    _check_new_user(name, password, role, operator_id)
    # Hash before the write transaction: argon2 is slow, the write lock is precious.
    password_hash = await asyncio.to_thread(hash_password, password)
    try:
        async with change(services, actor, "user.created") as tx:
            session = tx.session
            if await _username_taken(tx, name):
                raise StateConflict(f"username {name!r} is taken", {"field": "username"})
            if operator_id is not None:
                await _check_operator_free(tx, operator_id)
            user = tables.User(
                username=name,
                display_name=display_name.strip(),
                password_hash=password_hash,
                role=role,
                operator_id=operator_id,
                active=True,
                created_at=clock.now(),
            )
            session.add(user)
            await session.flush()
            tx.audit(
                "users",
                user.id,
                before=None,
                after={"role": role, "operator_id": operator_id, "active": True},
            )
    except IntegrityError:
        # Lost a race with a concurrent create of the same username or operator link.
        raise StateConflict("username or operator link is already taken") from None
    return user


async def update_user(
    *,
    services: Services,
    actor: Actor,
    user_id: int,
    expected_version: int | None,
    changes: dict[str, Any],
) -> tables.User:
    """Change a user's role, active flag or display name (admins).

    Disabling a user or changing their role ends all their sessions and
    refresh tokens in the same transaction, and once it has committed their
    open boards, walls and streams are closed on every instance.
    """
    require(actor, "users.manage")
    require_version(expected_version)
    if actor.user_id == user_id and (
        changes.get("active") is False or changes.get("role", "admin") != "admin"
    ):
        raise StateConflict(
            "you cannot disable your own account or take away your own admin role",
            {"field": "active" if changes.get("active") is False else "role"},
        )
    async with change(services, actor, "user.changed") as tx:
        user = await tx.claim(tables.User, user_id, expected_version)
        before = {"role": user.role, "active": user.active}
        if "role" in changes:
            _check_role(changes["role"], user.operator_id)
            user.role = changes["role"]
        if "active" in changes:
            user.active = bool(changes["active"])
        if "display_name" in changes:
            user.display_name = str(changes["display_name"]).strip()
        after = {"role": user.role, "active": user.active}
        ended: list[str] = []
        if after != before:
            reason = "user disabled" if not user.active else "role changed"
            ended = await end_sessions_in(tx.session, user_id=user_id, reason=reason)
        tx.audit("users", user_id, before=before, after=after | {"sessions_ended": len(ended)})
    if after != before:
        await announce_ended(services, user_id=user_id, session_ids=ended, everywhere=True)
    return user


def _check_role(role: str, operator_id: int | None) -> None:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", {"fields": {"role": role}})
    if role == "operator" and operator_id is None:
        problems = {"operator_id": "an operator account must be linked to an operator"}
        raise InvalidInput("invalid user: operator_id", {"fields": problems})


async def read_user(*, services: Services, actor: Actor, user_id: int) -> tables.User:
    """One user as an administrator sees it (404 if there is none)."""
    require(actor, "users.manage")
    user = await get_user(services=services, user_id=user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


async def get_user_by_username(*, services: Services, username: str) -> tables.User | None:
    if "\x00" in username:
        return None  # no user has NUL in their name (PostgreSQL cannot even compare it)
    async with services.db.read() as session:
        return (
            await session.execute(
                select(tables.User).where(tables.User.username == normalize_username(username))
            )
        ).scalar_one_or_none()


async def get_user(*, services: Services, user_id: int) -> tables.User | None:
    async with services.db.read() as session:
        return await session.get(tables.User, user_id)


def _check_new_user(username: str, password: str, role: str, operator_id: int | None) -> None:
    problems: dict[str, str] = {}
    if not username:
        problems["username"] = "must not be empty"
    elif len(username) > MAX_USERNAME_LENGTH or any(c.isspace() for c in username):
        problems["username"] = f"at most {MAX_USERNAME_LENGTH} characters, no spaces"
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        problems["password"] = f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
    if role not in ROLES:
        problems["role"] = f"must be one of {', '.join(ROLES)}"
    elif role == "operator" and operator_id is None:
        problems["operator_id"] = "an operator account must be linked to an operator"
    if problems:
        raise InvalidInput("invalid user: " + ", ".join(problems), {"fields": problems})


async def _username_taken(tx: Transaction, username: str) -> bool:
    found = await tx.session.execute(select(tables.User.id).where(tables.User.username == username))
    return found.first() is not None


async def _check_operator_free(tx: Transaction, operator_id: int) -> None:
    if await tx.session.get(tables.Operator, operator_id) is None:
        raise NotFound("operator", operator_id)
    linked = await tx.session.execute(
        select(tables.User.id).where(tables.User.operator_id == operator_id)
    )
    if linked.first() is not None:
        raise StateConflict(
            f"operator {operator_id} is already linked to another user",
            {"field": "operator_id"},
        )
