"""Guessing passwords, through the API and the login form (app/auth/login_guard.py).

The api plant's app, in process; time is a `FixedClock` the tests move on, so
a lock's end is reached without sleeping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app import clock
from app.auth.login_guard import FIRST_LOCK, FREE_FAILURES, LONGEST_LOCK, lock_after
from app.db import tables as t
from app.services.context import Services

PASSWORD = "takt-test-password"
TOKEN = "/api/v1/auth/token"


@pytest.fixture
def fixed_clock() -> Iterator[clock.FixedClock]:
    with clock.use(clock.FixedClock(clock.now())) as fixed:
        assert isinstance(fixed, clock.FixedClock)
        yield fixed


def client(app_services: tuple[object, Services], address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app_services[0], client=(address, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://takt.test")


async def token(api: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await api.post(TOKEN, json={"username": username, "password": password})


def test_the_lock_doubles_from_the_fifth_failure_up_to_fifteen_minutes() -> None:
    assert [lock_after(n) for n in range(1, FREE_FAILURES)] == [None] * (FREE_FAILURES - 1)
    assert lock_after(FREE_FAILURES) == FIRST_LOCK
    assert lock_after(FREE_FAILURES + 1) == 2 * FIRST_LOCK
    assert lock_after(FREE_FAILURES + 2) == 4 * FIRST_LOCK
    assert lock_after(1000) == LONGEST_LOCK


async def test_a_burst_of_wrong_passwords_locks_the_name_and_the_right_one_waits_too(
    api: httpx.AsyncClient, plant: Any, fixed_clock: clock.FixedClock
) -> None:
    answers = [(await token(api, "anna", f"guess-{n}")).status_code for n in range(110)]
    assert answers == [401] * FREE_FAILURES + [429] * (110 - FREE_FAILURES)
    right = await token(api, "anna", PASSWORD)
    assert right.status_code == 429
    assert right.json()["error"]["code"] == "too_many_login_attempts"
    assert "try again in 30 s" in right.json()["error"]["message"]
    assert right.headers["retry-after"] == "30"
    fixed_clock.advance(timedelta(seconds=10))
    assert (await token(api, "anna", PASSWORD)).headers["retry-after"] == "20"
    # The lock ends when it said it would: the attempts refused meanwhile did not extend it.
    fixed_clock.advance(timedelta(seconds=20))
    assert (await token(api, "anna", PASSWORD)).status_code == 200


async def test_each_failure_after_a_lock_doubles_it_and_success_forgets_them(
    api: httpx.AsyncClient, plant: Any, fixed_clock: clock.FixedClock
) -> None:
    for n in range(FREE_FAILURES):
        await token(api, "ben", f"guess-{n}")
    fixed_clock.advance(FIRST_LOCK)
    assert (await token(api, "ben", "one more guess")).status_code == 401
    locked = await token(api, "ben", PASSWORD)
    assert locked.headers["retry-after"] == str(int(2 * FIRST_LOCK.total_seconds()))
    fixed_clock.advance(2 * FIRST_LOCK)
    assert (await token(api, "ben", PASSWORD)).status_code == 200
    # Forgotten: the next wrong password is the first of a new series.
    assert [(await token(api, "ben", "x")).status_code for _ in range(FREE_FAILURES)] == [
        401
    ] * FREE_FAILURES


async def test_unknown_and_known_names_are_locked_alike(
    api: httpx.AsyncClient, plant: Any, fixed_clock: clock.FixedClock
) -> None:
    for name in ("anna", "nobody-here"):
        for n in range(FREE_FAILURES):
            assert (await token(api, name, f"guess-{n}")).status_code == 401
    known, unknown = await token(api, "anna", "x"), await token(api, "nobody-here", "x")
    assert known.status_code == unknown.status_code == 429
    assert known.json() == unknown.json()
    # Another name is not locked by them.
    assert (await token(api, "ben", PASSWORD)).status_code == 200


async def test_one_address_guessing_many_names_is_stopped(
    app_services: tuple[object, Services], plant: Any, fixed_clock: clock.FixedClock
) -> None:
    async with client(app_services, "203.0.113.7") as sprayer:
        for n in range(20):
            assert (await token(sprayer, f"user-{n}", "Winter2027!")).status_code == 401
        refused = await token(sprayer, "anna", PASSWORD)
        assert refused.status_code == 429
        assert "from this address" in refused.json()["error"]["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 600
    async with client(app_services, "198.51.100.20") as colleague:
        assert (await token(colleague, "anna", PASSWORD)).status_code == 200


async def test_the_login_form_is_guarded_the_same_way(
    app_services: tuple[object, Services], plant: Any, fixed_clock: clock.FixedClock
) -> None:
    async with client(app_services, "192.168.10.44") as browser:

        async def submit(password: str) -> httpx.Response:
            form = await browser.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert csrf is not None
            return await browser.post(
                "/login",
                data={"username": "Anna", "password": password, "csrf_token": csrf.group(1)},
            )

        answers = [(await submit(f"guess-{n}")).status_code for n in range(12)]
        assert answers == [401] * FREE_FAILURES + [429] * (12 - FREE_FAILURES)
        locked = await submit(PASSWORD)
        assert locked.status_code == 429 and locked.headers["retry-after"] == "30"
        assert "Too many failed logins. Try again in 30 seconds." in locked.text
        fixed_clock.advance(FIRST_LOCK)
        assert (await submit(PASSWORD)).status_code == 303
    # The API and the form share one count per name.
    async with client(app_services, "192.168.10.45") as api:
        for n in range(FREE_FAILURES):
            await token(api, "anna", f"guess-{n}")
    async with client(app_services, "192.168.10.46") as other:
        assert (await token(other, "anna", PASSWORD)).status_code == 429


async def test_failed_logins_are_audited_without_personal_data(
    app_services: tuple[object, Services], plant: Any, fixed_clock: clock.FixedClock
) -> None:
    async with client(app_services, "10.1.2.3") as api:
        for n in range(FREE_FAILURES + 3):
            await token(api, "Anna", f"guess-{n}")
    async with app_services[1].db.read() as session:
        entries = (
            (
                await session.execute(
                    select(t.AuditEntry).where(t.AuditEntry.action == "login.failed")
                )
            )
            .scalars()
            .all()
        )
    # Only the checked attempts; the ones refused by the lock cost nothing to log.
    assert len(entries) == FREE_FAILURES
    hashes = {entry.after["username_hmac"] for entry in entries}
    assert len(hashes) == 1 and re.fullmatch(r"[0-9a-f]{32}", hashes.pop())
    assert {entry.after["address_class"] for entry in entries} == {"ipv4-private"}
    assert [entry.after["failures_in_a_row"] for entry in entries] == list(
        range(1, FREE_FAILURES + 1)
    )
    assert entries[-1].after["locked_for_s"] == int(FIRST_LOCK.total_seconds())
    for entry in entries:
        text = f"{entry.after} {entry.before} {entry.entity_id}".lower()
        assert "anna" not in text and "10.1.2.3" not in text and "guess" not in text
