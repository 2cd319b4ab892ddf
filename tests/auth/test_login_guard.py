"""The login guard's counters: shared through Redis, kept in process when Redis fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import free_port

from app.auth.login_guard import FREE_FAILURES, LoginGuard, TooManyLoginAttempts, address_class
from app.settings import Settings


def test_an_address_is_told_by_its_class_only() -> None:
    assert address_class("127.0.0.1") == "ipv4-loopback"
    assert address_class("10.0.0.7") == "ipv4-private"
    assert address_class("8.8.4.4") == "ipv4-global"
    assert address_class("::1") == "ipv6-loopback"
    assert address_class("::ffff:192.168.1.9") == "ipv4-private"
    assert address_class("2001:4860::8888") == "ipv6-global"
    assert address_class("testclient") == "unknown"


@pytest.mark.redis
async def test_instances_sharing_redis_share_the_lock(redis_url: str, tmp_path: Path) -> None:
    settings = Settings(redis_url=redis_url, var_dir=tmp_path)
    first, second = LoginGuard(settings), LoginGuard(settings)
    for n in range(FREE_FAILURES):
        await (first if n % 2 else second).failed("anna", "10.0.0.1")
    with pytest.raises(TooManyLoginAttempts):
        await second.admit("anna", "10.0.0.2")
    with pytest.raises(TooManyLoginAttempts):
        await first.admit("ANNA ", "10.0.0.3")
    await first.admit("ben", "10.0.0.1")


async def test_without_redis_each_instance_still_counts(tmp_path: Path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    guard = LoginGuard(Settings(redis_url=dead, var_dir=tmp_path))
    for _ in range(FREE_FAILURES):
        await guard.admit("anna", "10.0.0.1")
        await guard.failed("anna", "10.0.0.1")
    with pytest.raises(TooManyLoginAttempts):
        await guard.admit("anna", "10.0.0.1")
