"""The administrators' pages, server side: users, API keys, the audit trail, personal data.

The world: the board plant (tests/web/board_plant.py) in-process, the admin
logged in through the login form. Every change is checked where it lands
(the database, the trail), and every refusal writes nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from board_plant import BoardWorld, board_world, log_in
from sqlalchemy import func, select, update

from app import clock
from app.db import tables as t
from app.services import resources, users
from app.services.audit import verify_chain
from app.services.context import SYSTEM, Actor


@pytest.fixture
async def world(sqlite_database_url: str, tmp_path: Path) -> AsyncIterator[BoardWorld]:
    async with board_world(sqlite_database_url, tmp_path / "var") as world:
        yield world


@pytest.fixture
async def admin(world: BoardWorld) -> tuple[httpx.AsyncClient, str]:
    """The admin's browser and its CSRF token."""
    return world.client, await log_in(world.client, "admin", "/admin/users")


async def user_named(world: BoardWorld, username: str) -> t.User | None:
    async with world.services.db.read() as session:
        return await session.scalar(select(t.User).where(t.User.username == username))


async def count(world: BoardWorld, table: Any) -> int:
    async with world.services.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


def new_operator(name: str) -> dict[str, Any]:
    return {"name": name, "skills": [], "shifts": [], "exceptions": []}


def row_of(page: str, element_id: str) -> str:
    found = re.search(rf'<tr id="{element_id}"[^>]*>(.*?)</tr>', page, re.S)
    assert found is not None, f"no row {element_id}"
    return found.group(1)


# --- who may -----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["maria", "anna", "olga"])
async def test_only_administrators_open_the_admin_pages(world: BoardWorld, who: str) -> None:
    async with world.another_browser() as browser:
        await log_in(browser, who, "/my" if who == "olga" else "/board")
        for path in ("/admin/users", "/admin/api-keys", "/admin/audit", "/admin/personal-data"):
            answer = await browser.get(path)
            assert answer.status_code == 403, (who, path)


async def test_a_visitor_who_is_not_logged_in_is_sent_to_the_login_form(world: BoardWorld) -> None:
    answer = await world.client.get("/admin/audit")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


async def test_a_change_without_the_pages_security_token_is_refused(
    world: BoardWorld, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, _ = admin
    before = await count(world, t.User)
    answer = await client.post(
        "/admin/users", data={"username": "x1", "password": "long-enough", "role": "scheduler"}
    )
    assert answer.status_code == 403
    assert await count(world, t.User) == before


# --- users -------------------------------------------------------------------------------------


async def test_an_admin_creates_an_operator_login_linked_to_an_operator(
    world: BoardWorld, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, csrf = admin
    created = await resources.create_operator(
        services=world.services, actor=SYSTEM, data=new_operator("Ines Brandt")
    )
    page = await client.get("/admin/users")
    assert f'<option value="{created["id"]}" >Ines Brandt</option>' in page.text
    answer = await client.post(
        "/admin/users",
        data={
            "csrf_token": csrf,
            "username": "  Ines.B ",
            "display_name": "Ines Brandt",
            "password": "a-long-password",
            "role": "operator",
            "operator_id": str(created["id"]),
        },
    )
    assert answer.status_code == 303
    shown = await client.get(answer.headers["location"])
    assert "Account ines.b created." in shown.text
    row = row_of(shown.text, f"user-{(await user_named(world, 'ines.b')).id}")  # type: ignore[union-attr]
    assert "Ines Brandt" in row and 'value="operator" selected' in row
    user = await user_named(world, "ines.b")
    assert user is not None and user.operator_id == created["id"] and user.active


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"username": "anna"}, "username", "is taken"),
        ({"password": "short"}, "password", "must be 8 to"),
        ({"role": "operator"}, "operator_id", "must be linked to an operator"),
        ({"role": "overlord"}, "role", "must be one of"),
        ({"username": "two words"}, "username", "no spaces"),
    ],
)
async def test_a_bad_new_account_is_shown_next_to_its_field_and_nothing_is_written(
    world: BoardWorld,
    admin: tuple[httpx.AsyncClient, str],
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    client, csrf = admin
    before = await count(world, t.User)
    data = {"username": "newbie", "password": "a-long-password", "role": "scheduler"} | fields
    answer = await client.post("/admin/users", data={"csrf_token": csrf, **data})
    assert answer.status_code in (409, 422)
    error = re.search(rf'<span class="field-error" id="{field}-error">([^<]*)</span>', answer.text)
    assert error is not None and message in error.group(1), answer.text[-3000:]
    assert f'aria-describedby="{field}-error"' in answer.text
    assert await count(world, t.User) == before


async def test_disabling_a_user_ends_their_session_at_once(
    world: BoardWorld, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, csrf = admin
    anna = await user_named(world, "anna")
    assert anna is not None
    async with world.another_browser() as annas_browser:
        await log_in(annas_browser, "anna")
        assert (await annas_browser.get("/board")).status_code == 200
        listed = await client.get("/admin/users?q=anna")
        assert "1 session" in row_of(listed.text, f"user-{anna.id}")

        answer = await client.post(
            f"/admin/users/{anna.id}/active",
            data={"csrf_token": csrf, "version": str(anna.version), "active": "0"},
        )
        assert answer.status_code == 303
        shown = await client.get(answer.headers["location"])
        assert "anna is disabled" in shown.text
        assert "disabled" in row_of(shown.text, f"user-{anna.id}")
        back_to_login = await annas_browser.get("/board")
        assert back_to_login.status_code == 303
        assert back_to_login.headers["location"].startswith("/login")


async def test_a_stale_role_change_is_refused_with_the_name_of_who_changed_the_account(
    world: BoardWorld, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, csrf = admin
    other = await users.create_user(
        services=world.services,
        actor=SYSTEM,
        username="vera",
        password="a-long-password",
        role="admin",
        display_name="Vera Lang",
    )
    ben = await user_named(world, "ben")
    assert ben is not None
    seen_version = ben.version
    await users.update_user(
        services=world.services,
        actor=Actor(user_id=other.id, role="admin"),
        user_id=ben.id,
        expected_version=seen_version,
        changes={"role": "manager"},
    )
    answer = await client.post(
        f"/admin/users/{ben.id}/role",
        data={"csrf_token": csrf, "version": str(seen_version), "role": "operator"},
    )
    assert answer.status_code == 409
    assert "Vera Lang changed this account while you were looking at it" in answer.text
    refreshed = await user_named(world, "ben")
    assert refreshed is not None and refreshed.role == "manager"


async def test_an_admin_cannot_disable_themselves(
    world: BoardWorld, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, csrf = admin
    me = await user_named(world, "admin")
    assert me is not None
    answer = await client.post(
        f"/admin/users/{me.id}/active",
        data={"csrf_token": csrf, "version": str(me.version), "active": "0"},
    )
    assert answer.status_code == 409
    assert "cannot disable your own account" in answer.text
    still = await user_named(world, "admin")
    assert still is not None and still.active


async def test_the_user_list_comes_a_page_at_a_time_without_repeats(
    world: BoardWorld, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, _ = admin
    async with world.services.db.write() as session:
        session.add_all(
            t.User(
                username=f"worker{n:03d}",
                role="scheduler",
                password_hash=None,
                created_at=clock.now(),
            )
            for n in range(75)
        )
    seen: list[str] = []
    path: str | None = "/admin/users?q=worker"
    while path:
        page = await client.get(path)
        seen += re.findall(r'data-username="([^"]+)"', page.text)
        more = re.search(r'href="(/admin/users\?[^"]+)">Next page', page.text)
        path = more.group(1).replace("&amp;", "&") if more else None
    assert seen == [f"worker{n:03d}" for n in range(75)]


# --- API keys ----------------------------------------------------------------------------------


async def test_a_new_key_shows_its_secret_once_and_is_revoked_from_the_page(
    world: BoardWorld, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, csrf = admin
    created = await client.post(
        "/admin/api-keys",
        data={"csrf_token": csrf, "name": "ERP", "role": "scheduler", "expires": "30"},
    )
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    key_id = re.search(r'<code id="new-key-id">([^<]+)</code>', created.text)
    secret = re.search(r'id="new-key-secret"[^>]*>([^<]+)</p>', created.text)
    assert key_id is not None and secret is not None
    listed = await client.get("/admin/api-keys")
    assert secret.group(1) not in listed.text, "the secret is shown once only"
    assert "active" in row_of(listed.text, f"key-{key_id.group(1)}")

    revoked = await client.post(
        f"/admin/api-keys/{key_id.group(1)}/revoke", data={"csrf_token": csrf}
    )
    assert revoked.status_code == 303
    shown = await client.get(revoked.headers["location"])
    assert "revoked" in row_of(shown.text, f"key-{key_id.group(1)}")
    async with world.services.db.read() as session:
        row = await session.scalar(select(t.ApiKey).where(t.ApiKey.key_id == key_id.group(1)))
    assert row is not None and row.revoked_at is not None and row.role == "scheduler"


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"name": " "}, "name"), ({"expires": "0"}, "expires"), ({"expires": "soon"}, "expires")],
)
async def test_a_bad_key_is_refused_next_to_its_field_and_nothing_is_written(
    world: BoardWorld, admin: tuple[httpx.AsyncClient, str], fields: dict[str, str], field: str
) -> None:
    client, csrf = admin
    data = {"name": "MES", "role": "scheduler", "expires": ""} | fields
    answer = await client.post("/admin/api-keys", data={"csrf_token": csrf, **data})
    assert answer.status_code == 422
    assert f'id="{field}-error"' in answer.text
    assert await count(world, t.ApiKey) == 0


# --- the audit trail ---------------------------------------------------------------------------


async def many_changes(world: BoardWorld, how_many: int) -> list[int]:
    """`how_many` operators created by the admin, through the write path: their ids."""
    me = await user_named(world, "admin")
    assert me is not None
    made = []
    for n in range(how_many):
        view = await resources.create_operator(
            services=world.services,
            actor=Actor(user_id=me.id, role="admin"),
            data=new_operator(f"Temp {n}"),
        )
        made.append(int(view["id"]))
    return made


async def test_the_trail_pages_newest_first_without_repeats_and_filters_by_entity_and_actor(
    world: BoardWorld, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, _ = admin
    made = await many_changes(world, 60)
    seen: list[int] = []
    path: str | None = "/admin/audit?entity=operators&actor=admin"
    while path:
        page = await client.get(path)
        assert page.status_code == 200
        seen += [int(i) for i in re.findall(r"<td>operators (\d+)</td>", page.text)]
        more = re.search(r'href="(/admin/audit\?[^"]+)">Older entries', page.text)
        path = more.group(1).replace("&amp;", "&") if more else None
    assert seen == list(reversed(made))

    one = await client.get(f"/admin/audit?entity=operators&entity_id={made[7]}")
    assert re.findall(r"<td>operators (\d+)</td>", one.text) == [str(made[7])]
    nobody = await client.get("/admin/audit?actor=anna")
    assert "No entry matches." in nobody.text


async def test_the_trail_is_filtered_by_plant_days(
    world: BoardWorld, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, _ = admin
    await many_changes(world, 1)
    async with world.services.db.read() as session:
        at = await session.scalar(select(func.max(t.AuditEntry.at)))
    assert at is not None
    today = at.date()  # the day of the entry, in plant time (the plant's zone is UTC)
    for since, until, found in [
        (today, today, True),
        (today + timedelta(days=1), today + timedelta(days=2), False),
        (today - timedelta(days=3), today - timedelta(days=1), False),
    ]:
        page = await client.get(f"/admin/audit?entity=operators&since={since}&until={until}")
        assert page.status_code == 200
        assert ("<td>operators " in page.text) is found, (since, until)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=2026-02-30", "since"),
        ("entity_id=abc", "entity_id"),
        ("actor=nobody-here", "actor"),
        ("since=2026-03-02&until=2026-03-01", "until"),
    ],
)
async def test_a_bad_filter_is_shown_next_to_its_field(
    admin: tuple[httpx.AsyncClient, str], query: str, field: str
) -> None:
    client, _ = admin
    answer = await client.get(f"/admin/audit?{query}")
    assert answer.status_code == 422
    assert f'id="{field}-error"' in answer.text
    assert 'id="audit-entries"' not in answer.text


async def checked(client: httpx.AsyncClient, csrf: str) -> str:
    """Start a check of the chain from the page and follow it to its finding (the card)."""
    started = await client.post("/admin/audit/verify", data={"csrf_token": csrf})
    assert started.status_code == 303
    run_id = re.search(r"check=(\w+)", started.headers["location"])
    assert run_id is not None
    page = await client.get(started.headers["location"])
    assert 'id="verify"' in page.text
    for _ in range(600):
        card = await client.get(f"/admin/audit/checks/{run_id.group(1)}")
        assert card.status_code == 200
        if 'id="verify-result"' in card.text:
            return card.text
        assert "<progress" in card.text and 'hx-trigger="every 1s"' in card.text
        await asyncio.sleep(0.05)
    raise AssertionError("the check never finished")


async def test_verifying_from_the_page_finds_a_tampered_entry(
    world: BoardWorld, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, csrf = admin
    await many_changes(world, 3)
    assert "The chain is intact: " in await checked(client, csrf)
    async with world.services.db.write() as session:
        victim = await session.scalar(
            select(func.min(t.AuditEntry.id)).where(t.AuditEntry.entity == "operators")
        )
        await session.execute(
            update(t.AuditEntry).where(t.AuditEntry.id == victim).values(after={"name": "forged"})
        )
    assert f"The chain is broken at entry {victim}" in await checked(client, csrf)


async def test_a_check_that_is_not_there_is_a_404(admin: tuple[httpx.AsyncClient, str]) -> None:
    client, _ = admin
    assert (await client.get("/admin/audit/checks/nosuchrun")).status_code == 404
    page = await client.get("/admin/audit?check=nosuchrun")
    assert page.status_code == 200 and 'id="verify-result"' not in page.text


# --- personal data -----------------------------------------------------------------------------


async def test_an_operators_data_is_exported_then_erased_and_the_chain_still_verifies(
    world: BoardWorld, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, csrf = admin
    ines = await resources.create_operator(
        services=world.services, actor=SYSTEM, data=new_operator("Ines Brandt")
    )
    found = await client.get("/admin/personal-data?q=brandt")
    assert "Ines Brandt" in row_of(found.text, f"operator-{ines['id']}")
    exported = await client.get(f"/admin/personal-data/{ines['id']}.json")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    assert exported.json()["operator"]["name"] == "Ines Brandt"

    unconfirmed = await client.post(
        f"/admin/personal-data/{ines['id']}/erase",
        data={"csrf_token": csrf, "version": str(ines["version"])},
    )
    assert unconfirmed.status_code == 422
    async with world.services.db.read() as session:
        assert (await session.get(t.Operator, ines["id"])).name == "Ines Brandt"  # type: ignore[union-attr]

    erased = await client.post(
        f"/admin/personal-data/{ines['id']}/erase?q=brandt",
        data={"csrf_token": csrf, "version": str(ines["version"]), "confirm": "yes"},
    )
    assert erased.status_code == 303
    shown = await client.get(erased.headers["location"])
    assert f"The personal data of operator {ines['id']} is erased." in shown.text
    assert "Ines Brandt" not in shown.text
    async with world.services.db.read() as session:
        assert (await session.get(t.Operator, ines["id"])).name == f"Erased operator {ines['id']}"  # type: ignore[union-attr]
    assert (await verify_chain(world.services)).intact


async def test_an_operator_with_open_work_is_not_erased_and_the_page_says_why(
    world: BoardWorld, admin: tuple[httpx.AsyncClient, str]
) -> None:
    client, csrf = admin
    async with world.services.db.read() as session:
        olga = await session.get(t.Operator, world.plant.olga)
    assert olga is not None
    answer = await client.post(
        f"/admin/personal-data/{olga.id}/erase",
        data={"csrf_token": csrf, "version": str(olga.version), "confirm": "yes"},
    )
    assert answer.status_code == 409
    assert "open" in re.search(r'role="alert">([^<]+)<', answer.text).group(1)  # type: ignore[union-attr]
    async with world.services.db.read() as session:
        assert (await session.get(t.Operator, olga.id)).name == olga.name  # type: ignore[union-attr]
