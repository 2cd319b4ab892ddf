"""Server-side session records: who is signed in where, and ending that at once.

A browser that signs in gets a `page_sessions` row; its (signed) cookie names
the row's id. Every page, API call with the cookie, WebSocket and SSE stream
checks the row is live: one primary-key lookup (`live_session`). Ending a
session stamps `ended_at`, and after the commit a message on the hub's
`sessions` channel tells every instance to close the open sockets and streams
of those sessions at once (app/realtime/session_watch.py):

    {"kind": "sessions_ended", "user_id": 7, "session_ids": [...], "all": true}

`all: true` (the user was disabled or their role changed) also closes their
connections that came with an access token rather than a cookie.

A wall screen's session is a *device* session: while the wall keeps asking,
`renew_device_session` pushes its expiry on, but only while the row is live,
so ending it (logout elsewhere, `takt sessions end`, disabling the user) stops
the wall too. Session rows hold ids, role and times: nothing personal.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.db import tables
from app.services.access import require
from app.services.context import Actor, Services
from app.services.errors import NotFound
from app.services.write_path import change

SESSIONS_CHANNEL = "sessions"
SESSION_HOURS = 12
# Ended and expired rows are kept this long (to list them), then deleted at the next login.
KEEP_ENDED = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class LiveSession:
    id: str
    user_id: int
    role: str
    device: str
    method: str
    started_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionListing:
    id: str
    user_id: int
    username: str
    role: str
    device: str
    method: str
    started_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    ended_reason: str | None


def _live(row: tables.PageSessionRecord) -> LiveSession:
    return LiveSession(
        id=row.id,
        user_id=row.user_id,
        role=row.role,
        device=row.device,
        method=row.method,
        started_at=row.started_at,
        expires_at=row.expires_at,
    )


async def open_session(
    *, services: Services, user: tables.User, method: str = "password"
) -> LiveSession:
    """A new session for a user who has just proved who they are."""
    now = clock.now()
    row = tables.PageSessionRecord(
        id=secrets.token_urlsafe(24),
        user_id=user.id,
        role=user.role,
        device="browser",
        method=method,
        started_at=now,
        expires_at=now + timedelta(hours=SESSION_HOURS),
    )
    async with services.db.write() as db:
        # The user's long-gone sessions go now (no sweeper needed).
        await db.execute(
            delete(tables.PageSessionRecord).where(
                tables.PageSessionRecord.user_id == user.id,
                tables.PageSessionRecord.expires_at < now - KEEP_ENDED,
            )
        )
        db.add(row)
    return _live(row)


async def live_session(*, services: Services, session_id: str) -> LiveSession | None:
    """The session if it is live (not ended, not expired): one primary-key lookup."""
    if not session_id or len(session_id) > 64:
        return None
    async with services.db.glance() as db:
        row = await db.get(tables.PageSessionRecord, session_id)
    if row is None or row.ended_at is not None or row.expires_at <= clock.now():
        return None
    return _live(row)


async def renew_device_session(
    *, services: Services, session_id: str, device: str = "wall"
) -> LiveSession | None:
    """Keep a screen that is still watched signed in: a fresh expiry, if the row is live."""
    now = clock.now()
    async with services.db.write() as db:
        result = await db.execute(
            update(tables.PageSessionRecord)
            .where(
                tables.PageSessionRecord.id == session_id,
                tables.PageSessionRecord.ended_at.is_(None),
                tables.PageSessionRecord.expires_at > now,
            )
            .values(device=device, expires_at=now + timedelta(hours=SESSION_HOURS))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            return None
        row = await db.get(tables.PageSessionRecord, session_id)
    return None if row is None else _live(row)


async def log_out(*, services: Services, session_id: str) -> None:
    """End one session (its holder logged out): only that browser, not their others."""
    ended = await _end(services, [tables.PageSessionRecord.id == session_id], "logout")
    if ended:
        await announce_ended(services, user_id=None, session_ids=ended, everywhere=False)


async def end_sessions_in(db: AsyncSession, *, user_id: int, reason: str) -> list[str]:
    """End every live session of a user, and revoke their refresh tokens (API logins),
    inside the caller's transaction; the sessions' ids.

    Publish with `announce_ended` once that transaction has committed.
    """
    now = clock.now()
    await db.execute(
        update(tables.RefreshToken)
        .where(tables.RefreshToken.user_id == user_id, tables.RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return await _end_where(db, [tables.PageSessionRecord.user_id == user_id], reason, now)


async def end_sessions_of(
    *, services: Services, actor: Actor, user_id: int, reason: str = "ended by an admin"
) -> list[str]:
    """An administrator signs a user out everywhere (audited); the sessions ended."""
    require(actor, "users.manage")
    async with change(services, actor, "sessions.ended") as tx:
        if await tx.session.get(tables.User, user_id) is None:
            raise NotFound("user", user_id)
        ended = await end_sessions_in(tx.session, user_id=user_id, reason=reason[:40])
        tx.audit("users", user_id, before=None, after={"sessions_ended": len(ended)})
    await announce_ended(services, user_id=user_id, session_ids=ended, everywhere=True)
    return ended


async def end_session(
    *, services: Services, actor: Actor, session_id: str, reason: str = "ended by an admin"
) -> LiveSession:
    """An administrator ends one session (a lost tablet, a wall screen taken down)."""
    require(actor, "users.manage")
    async with change(services, actor, "sessions.ended") as tx:
        row = await tx.session.get(tables.PageSessionRecord, session_id)
        if row is None or row.ended_at is not None:
            raise NotFound("session", session_id)
        found = _live(row)
        await _end_where(
            tx.session, [tables.PageSessionRecord.id == session_id], reason[:40], clock.now()
        )
        tx.audit("users", row.user_id, before=None, after={"sessions_ended": 1})
    await announce_ended(
        services, user_id=found.user_id, session_ids=[session_id], everywhere=False
    )
    return found


async def list_sessions(
    *, services: Services, actor: Actor, user_id: int | None = None, include_ended: bool = False
) -> list[SessionListing]:
    require(actor, "users.manage")
    query = (
        select(tables.PageSessionRecord, tables.User.username)
        .join(tables.User, tables.User.id == tables.PageSessionRecord.user_id)
        .order_by(tables.PageSessionRecord.started_at)
    )
    if user_id is not None:
        query = query.where(tables.PageSessionRecord.user_id == user_id)
    if not include_ended:
        query = query.where(
            tables.PageSessionRecord.ended_at.is_(None),
            tables.PageSessionRecord.expires_at > clock.now(),
        )
    async with services.db.read() as db:
        rows = (await db.execute(query)).all()
    return [
        SessionListing(
            id=row.id,
            user_id=row.user_id,
            username=username,
            role=row.role,
            device=row.device,
            method=row.method,
            started_at=row.started_at,
            expires_at=row.expires_at,
            ended_at=row.ended_at,
            ended_reason=row.ended_reason,
        )
        for row, username in rows
    ]


async def announce_ended(
    services: Services, *, user_id: int | None, session_ids: list[str], everywhere: bool
) -> None:
    """Tell every instance to close these sessions' sockets and streams now."""
    message: dict[str, Any] = {
        "kind": "sessions_ended",
        "user_id": user_id,
        "session_ids": session_ids,
        "all": everywhere,
    }
    await services.hub.publish(SESSIONS_CHANNEL, message)


async def _end(services: Services, where: list[Any], reason: str) -> list[str]:
    async with services.db.write() as db:
        return await _end_where(db, where, reason, clock.now())


async def _end_where(db: AsyncSession, where: list[Any], reason: str, now: datetime) -> list[str]:
    result = await db.execute(
        update(tables.PageSessionRecord)
        .where(*where, tables.PageSessionRecord.ended_at.is_(None))
        .values(ended_at=now, ended_reason=reason)
        .returning(tables.PageSessionRecord.id)
        .execution_options(synchronize_session=False)
    )
    return [str(found) for found in result.scalars()]
