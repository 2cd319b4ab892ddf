"""The administrators' list of user accounts, a page at a time.

    page = await list_users(services=s, actor=a, search="ol", after=None)

A plant has a few hundred accounts (every operator may have one), so the list
comes in pages of `PAGE_SIZE` ordered by username, each page starting after
the last name of the one before. Each row says whom the account is linked to
and how many sessions it has open, so an administrator sees at a glance who
is signed in before disabling them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app import clock
from app.db import tables as t
from app.services.access import require
from app.services.context import Actor, Services

PAGE_SIZE = 50
MAX_SEARCH_LENGTH = 100


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    operator_id: int | None
    operator_name: str | None
    single_sign_on: bool
    open_sessions: int
    created_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class UserPage:
    rows: list[UserRow]
    # The username to start the next page after (None: this is the last page).
    next_after: str | None


@dataclass(frozen=True, slots=True)
class OperatorChoice:
    id: int
    name: str


async def list_users(
    *, services: Services, actor: Actor, search: str = "", after: str | None = None
) -> UserPage:
    """One page of accounts whose username or display name contains `search`."""
    require(actor, "users.manage")
    users, operators, sessions = t.User, t.Operator, t.PageSessionRecord
    open_sessions = (
        select(func.count())
        .where(
            sessions.user_id == users.id,
            sessions.ended_at.is_(None),
            sessions.expires_at > clock.now(),
        )
        .scalar_subquery()
    )
    query = (
        select(users, operators.name, open_sessions)
        .outerjoin(operators, operators.id == users.operator_id)
        .order_by(users.username)
        .limit(PAGE_SIZE + 1)
    )
    needle = search.strip().lower()[:MAX_SEARCH_LENGTH]
    if needle:
        pattern = f"%{_escaped(needle)}%"
        query = query.where(
            users.username.like(pattern, escape="\\")
            | func.lower(users.display_name).like(pattern, escape="\\")
        )
    if after:
        query = query.where(users.username > after)
    async with services.db.read() as session:
        found = (await session.execute(query)).all()
    rows = [_row(user, name, count) for user, name, count in found[:PAGE_SIZE]]
    more = len(found) > PAGE_SIZE
    return UserPage(rows, rows[-1].username if more and rows else None)


async def unlinked_operators(*, services: Services, actor: Actor) -> list[OperatorChoice]:
    """Operators no account is linked to yet (the choices for a new operator login)."""
    require(actor, "users.manage")
    linked = select(t.User.operator_id).where(t.User.operator_id.is_not(None))
    query = (
        select(t.Operator.id, t.Operator.name)
        .where(t.Operator.id.not_in(linked))
        .order_by(t.Operator.name, t.Operator.id)
    )
    async with services.db.read() as session:
        return [OperatorChoice(id, name) for id, name in await session.execute(query)]


def _row(user: t.User, operator_name: str | None, open_sessions: int) -> UserRow:
    return UserRow(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        active=user.active,
        operator_id=user.operator_id,
        operator_name=operator_name,
        single_sign_on=user.oidc_subject is not None,
        open_sessions=open_sessions,
        created_at=user.created_at,
        version=user.version,
    )


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True, slots=True)
class OperatorRecord:
    """An operator as the personal-data page lists them (to export or erase)."""

    id: int
    name: str
    username: str | None
    version: int


async def find_operators(*, services: Services, actor: Actor, search: str) -> list[OperatorRecord]:
    """Up to `PAGE_SIZE` operators whose name contains `search`, by name."""
    require(actor, "personal_data.manage")
    needle = search.strip().lower()[:MAX_SEARCH_LENGTH]
    query = (
        select(t.Operator.id, t.Operator.name, t.User.username, t.Operator.version)
        .outerjoin(t.User, t.User.operator_id == t.Operator.id)
        .order_by(t.Operator.name, t.Operator.id)
        .limit(PAGE_SIZE)
    )
    if needle:
        query = query.where(func.lower(t.Operator.name).like(f"%{_escaped(needle)}%", escape="\\"))
    async with services.db.read() as session:
        return [OperatorRecord(*row) for row in await session.execute(query)]
