"""app.services.users: accounts are created through the write path, audited by id only."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.db import tables
from app.security.passwords import verify_password
from app.services.context import SYSTEM, Actor, Services
from app.services.errors import Forbidden, InvalidInput, NotFound, StateConflict
from app.services.users import create_user, get_user_by_username

PASSWORD = "long enough password"


async def test_create_user_hashes_audits_and_logs_a_change(services: Services) -> None:
    user = await create_user(
        services=services,
        actor=SYSTEM,
        username="  Grace.Hopper ",
        password=PASSWORD,
        role="manager",
        display_name="Grace Hopper",
    )
    found = await get_user_by_username(services=services, username="GRACE.HOPPER")
    assert found is not None and found.id == user.id
    assert found.username == "grace.hopper"
    assert found.password_hash and verify_password(found.password_hash, PASSWORD)

    async with services.db.read() as session:
        audits = list((await session.execute(select(tables.AuditEntry))).scalars())
        changes = list((await session.execute(select(tables.ChangeLogEntry))).scalars())
    assert [(a.action, a.entity, a.entity_id) for a in audits] == [
        ("user.created", "users", user.id)
    ]
    assert audits[0].after == {"role": "manager", "operator_id": None, "active": True}
    assert "grace" not in str(audits[0].after).lower()
    assert [c.kind for c in changes] == ["user.created"]


async def test_duplicate_username_is_a_conflict(services: Services) -> None:
    await create_user(
        services=services, actor=SYSTEM, username="sam", password=PASSWORD, role="admin"
    )
    with pytest.raises(StateConflict, match="taken"):
        await create_user(
            services=services, actor=SYSTEM, username="SAM", password=PASSWORD, role="scheduler"
        )


@pytest.mark.parametrize(
    ("username", "password", "role", "field"),
    [
        ("sam", PASSWORD, "superuser", "role"),
        ("", PASSWORD, "admin", "username"),
        ("two words", PASSWORD, "admin", "username"),
        ("sam", "short", "admin", "password"),
        ("sam", PASSWORD, "operator", "operator_id"),  # an operator account needs its operator
    ],
)
async def test_bad_input_is_refused(
    services: Services, username: str, password: str, role: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await create_user(
            services=services, actor=SYSTEM, username=username, password=password, role=role
        )
    assert field in refused.value.details["fields"]
    assert await get_user_by_username(services=services, username=username) is None


async def test_operator_link_must_exist_and_be_free(services: Services, operator_id: int) -> None:
    with pytest.raises(NotFound):
        await create_user(
            services=services,
            actor=SYSTEM,
            username="ghost",
            password=PASSWORD,
            role="operator",
            operator_id=operator_id + 100,
        )
    await create_user(
        services=services,
        actor=SYSTEM,
        username="ada",
        password=PASSWORD,
        role="operator",
        operator_id=operator_id,
    )
    with pytest.raises(StateConflict, match="already linked"):
        await create_user(
            services=services,
            actor=SYSTEM,
            username="ada2",
            password=PASSWORD,
            role="operator",
            operator_id=operator_id,
        )


async def test_only_admins_create_users(services: Services) -> None:
    manager = Actor(user_id=7, role="manager")
    with pytest.raises(Forbidden):
        await create_user(
            services=services, actor=manager, username="x", password=PASSWORD, role="admin"
        )
