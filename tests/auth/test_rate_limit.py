from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from limits.aio.storage import MemoryStorage

from app.auth import rate_limit
from app.auth.rate_limit import RateLimits, RateLimitState, headers
from app.services.context import Actor
from app.services.errors import RateLimited
from app.settings import Settings

USER = Actor(user_id=1, role="scheduler")
OTHER_USER = Actor(user_id=2, role="scheduler")
SERVICE = Actor(user_id=None, role="scheduler", service_key="tk_1")


@pytest.fixture
def limits(tmp_path: Path) -> RateLimits:
    return RateLimits(Settings(redis_url=None, var_dir=tmp_path))


async def test_101st_request_in_a_minute_is_refused(limits: RateLimits) -> None:
    for n in range(100):
        state = await limits.check(USER)
        assert state.remaining == 99 - n
    with pytest.raises(RateLimited) as refused:
        await limits.check(USER)
    error = refused.value
    assert error.status == 429
    assert error.headers["RateLimit-Limit"] == "100"
    assert error.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(error.headers["Retry-After"]) <= 60
    assert error.headers["Retry-After"] == error.headers["RateLimit-Reset"]
    assert error.retry_after == int(error.headers["Retry-After"])
    # Others are counted apart.
    assert (await limits.check(OTHER_USER)).remaining == 99


async def test_headers_of_an_allowed_request(limits: RateLimits) -> None:
    state = await limits.check(USER)
    assert state == RateLimitState(limit=100, remaining=99, reset=state.reset)
    assert 59 <= state.reset <= 60
    assert headers(state) == {
        "RateLimit-Limit": "100",
        "RateLimit-Remaining": "99",
        "RateLimit-Reset": str(state.reset),
    }
    assert headers(state, exceeded=True)["Retry-After"] == str(state.reset)


async def test_service_keys_get_1000_a_minute(limits: RateLimits) -> None:
    for _ in range(999):
        await limits.check(SERVICE)
    assert (await limits.check(SERVICE)).remaining == 0
    with pytest.raises(RateLimited):
        await limits.check(SERVICE)


async def test_unauthenticated_requests_are_limited_per_ip(limits: RateLimits) -> None:
    for _ in range(100):
        await limits.check("192.0.2.7")
    with pytest.raises(RateLimited):
        await limits.check("192.0.2.7")
    assert (await limits.check("192.0.2.8")).remaining == 99
    # An IP and a user id never share a counter.
    assert (await limits.check(USER)).remaining == 99


async def test_limits_come_from_settings(tmp_path: Path) -> None:
    settings = Settings(redis_url=None, var_dir=tmp_path, rate_limit_user="3/minute")
    limits = RateLimits(settings)
    for _ in range(3):
        await limits.check(USER)
    with pytest.raises(RateLimited):
        await limits.check(USER)


class FlakyStorage(MemoryStorage):
    down = True

    async def acquire_entry(self, *args: Any, **kwargs: Any) -> bool:
        if self.down:
            raise ConnectionError("redis went away")
        return await super().acquire_entry(*args, **kwargs)


async def test_storage_failure_fails_open_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FlakyStorage()
    limits = RateLimits(Settings(redis_url=None, var_dir=tmp_path), storage=storage)
    with caplog.at_level(logging.WARNING, logger="app.auth.rate_limit"):
        states = [await limits.check(USER) for _ in range(150)]
        assert all(not state.enforced for state in states)
        assert headers(states[0]) == {}
        assert len(caplog.records) == 1  # logged once per outage, not per request

        storage.down = False
        monkeypatch.setattr(rate_limit, "RETRY_STORAGE_AFTER_SECONDS", 0.0)
        state = await limits.check(USER)
    assert state.enforced and state.remaining == 99
    assert "back" in caplog.records[-1].message


async def test_unreachable_redis_fails_open(tmp_path: Path) -> None:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", var_dir=tmp_path)
    state = await RateLimits(settings).check(USER)
    assert not state.enforced


def test_redis_url_must_be_redis(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="REDIS_URL"):
        RateLimits(Settings(redis_url="http://cache:6379", var_dir=tmp_path))
