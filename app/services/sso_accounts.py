"""The Takt user behind a single sign-on account, linked or created at first sign-in.

    account_for(services, issuer=, subject=, username=, display_name=, role=) -> tables.User

1. A user already linked to (issuer, subject) is that person.
2. Else a user whose username is the provider's username claim, not yet linked
   to another account, is linked to it (an account set up by an admin first).
3. Else a new user is created, with no password (they sign in through the provider only).

The role comes from the provider each time (the claim mapped in settings): if
it changed, the user's role changes with it, which ends their other sessions
as any role change does. An operator account needs an operator to act for,
which only an admin can link: the provider cannot create one. A disabled user
stays out. Every change goes through the write path and is audited as the system.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.db import tables
from app.services.context import SYSTEM, Services
from app.services.errors import Unauthorized
from app.services.sessions import announce_ended, end_sessions_in
from app.services.users import MAX_USERNAME_LENGTH, normalize_username
from app.services.write_path import change


async def account_for(
    *,
    services: Services,
    issuer: str,
    subject: str,
    username: str,
    display_name: str,
    role: str,
) -> tables.User:
    ended: list[str] = []
    async with change(services, SYSTEM, "user.signed_in_with_sso") as tx:
        db = tx.session
        user = (
            await db.execute(
                select(tables.User).where(
                    tables.User.oidc_issuer == issuer, tables.User.oidc_subject == subject
                )
            )
        ).scalar_one_or_none()
        if user is None:
            user = await _link_or_create(tx.session, issuer, subject, username, display_name, role)
            tx.audit(
                "users",
                user.id,
                before=None,
                after={"role": role, "linked_to_sso": True},
                action="user.linked_to_sso",
            )
        if not user.active:
            raise Unauthorized("this account is disabled")
        if user.role != role:
            if role == "operator" and user.operator_id is None:
                raise Unauthorized(_NO_OPERATOR)
            tx.audit("user", user.id, before={"role": user.role}, after={"role": role})
            user.role = role
            user.version += 1
            ended = await end_sessions_in(db, user_id=user.id, reason="role changed")
    if ended:
        await announce_ended(services, user_id=user.id, session_ids=ended, everywhere=True)
    return user


_NO_OPERATOR = (
    "an operator account must be linked to an operator by an administrator before its first sign-in"
)


async def _link_or_create(
    db: AsyncSession, issuer: str, subject: str, username: str, display_name: str, role: str
) -> tables.User:
    name = normalize_username(username)
    if not name or len(name) > MAX_USERNAME_LENGTH or any(c.isspace() for c in name):
        raise Unauthorized("the provider sent no usable username for this account")
    user = (
        await db.execute(select(tables.User).where(tables.User.username == name))
    ).scalar_one_or_none()
    if user is not None:
        if user.oidc_subject is not None:
            raise Unauthorized(f"the username {name!r} belongs to another single sign-on account")
        user.oidc_issuer, user.oidc_subject = issuer, subject
        user.version += 1
        return user
    if role == "operator":
        raise Unauthorized(_NO_OPERATOR)
    user = tables.User(
        username=name,
        display_name=display_name.strip()[:200],
        password_hash=None,
        role=role,
        operator_id=None,
        active=True,
        created_at=clock.now(),
        oidc_issuer=issuer,
        oidc_subject=subject,
    )
    db.add(user)
    await db.flush()
    return user
