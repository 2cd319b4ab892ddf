"""Guessing passwords is slow: logins are limited per user name and per address.

    attempt ─► address over its failures?  429 + Retry-After; nothing is checked
          └─► user name locked?            429 + Retry-After; the password is not checked,
          │                                 so the right one does not work either
          └─► check the password
                wrong: one more failure for the name and the address; the 5th
                       failure in a row locks the name for 30 s, each further one
                       doubles the lock (to 15 min at most); audited without PII
                right: the name's failures are forgotten

Both the login form (`/login`) and `POST /api/v1/auth/token` come through
`log_in`. Unknown and known user names are treated alike, so a lock says
nothing about whether an account exists. Attempts refused while locked are not
counted (they cost nothing), so a lock ends when it says it does.

Counters live in Redis when `REDIS_URL` is set (every instance sees the same
locks) and in process otherwise, through the `limits` storages that the API's
rate limits use; if Redis fails, this instance counts on by itself. A lock is
timed by `app.clock`, so tests move time instead of sleeping; the per-address
window is `limits`' moving window (real time).

Nothing personal is stored or audited: names and addresses are keyed hashes
(HMAC under the secret key); the audit entry gives the name's hash and the
address's class (`ipv4-private`, `ipv6-global`, ...).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import HTTPConnection

from app import clock
from app.auth.rate_limit import counter_storage
from app.auth.tokens import check_credentials
from app.db import tables
from app.services.context import Actor, Services
from app.services.errors import RateLimited, ServiceError, Unauthorized
from app.services.users import normalize_username
from app.services.write_path import record_access
from app.settings import Settings

log = logging.getLogger(__name__)

FREE_FAILURES = 5
FIRST_LOCK = timedelta(seconds=30)
LONGEST_LOCK = timedelta(minutes=15)
# A name's failures in a row are forgotten a day after the first of them.
FAILURES_KEPT_S = 24 * 3600
ANONYMOUS = Actor(user_id=None, role="anonymous")
_KEY_CONTEXT = b"takt-login:"
RETRY_STORAGE_AFTER_S = 5.0
T = TypeVar("T")


class TooManyLoginAttempts(RateLimited):
    code = "too_many_login_attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        ServiceError.__init__(self, message, {"retry_after": retry_after})
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


@dataclass(frozen=True, slots=True)
class Failure:
    failures: int  # in a row, for this name
    locked_for: timedelta | None  # the lock this failure started


def lock_after(failures: int) -> timedelta | None:
    """How long the name is locked after its `failures`-th failure in a row."""
    if failures < FREE_FAILURES:
        return None
    doublings = min(failures - FREE_FAILURES, 16)
    return min(FIRST_LOCK * (1 << doublings), LONGEST_LOCK)


class LoginGuard:
    """The login limits of one app instance (`app.state.login_guard`)."""

    def __init__(self, settings: Settings, *, storage: Storage | None = None) -> None:
        self._settings = settings
        self._storage = storage or counter_storage(settings.redis_url)
        self._fallback = MemoryStorage()
        self._failing_since: float | None = None
        self._address_failures: RateLimitItem = parse(settings.login_failures_per_address)

    async def admit(self, username: str, address: str) -> None:
        """Raise `TooManyLoginAttempts` when the address or the name may not try now."""
        address_key = self._key("address", address)
        name_key = self._key("name", normalize_username(username))
        item = self._address_failures

        async def address_wait(store: Storage) -> int:
            limiter = MovingWindowRateLimiter(store)
            if await limiter.test(item, address_key):
                return 0
            reset_at, _ = await limiter.get_window_stats(item, address_key)
            return max(1, math.ceil(reset_at - time.time()))

        async def locked_until(store: Storage) -> int:
            failures = await store.get(f"{name_key}:failures")
            return await store.get(f"{name_key}:until:{failures}") if failures else 0

        retry = await self._run(address_wait)
        if retry > 0:
            raise TooManyLoginAttempts(
                f"too many failed logins from this address; try again in {retry} s",
                retry_after=retry,
            )
        retry = math.ceil(await self._run(locked_until) - clock.timestamp())
        if retry > 0:
            raise TooManyLoginAttempts(
                f"too many failed logins for this user name; try again in {retry} s",
                retry_after=retry,
            )

    async def failed(self, username: str, address: str) -> Failure:
        """Count a wrong password; the failure that reaches the limit locks the name."""
        address_key = self._key("address", address)
        name_key = self._key("name", normalize_username(username))

        async def count(store: Storage) -> Failure:
            await MovingWindowRateLimiter(store).hit(self._address_failures, address_key)
            # Atomic: each failure gets its own number, and only its request writes
            # that number's lock, so concurrent failures cannot garble a lock.
            failures = await store.incr(f"{name_key}:failures", FAILURES_KEPT_S)
            lock = lock_after(failures)
            if lock is not None:
                until = int(clock.timestamp()) + int(lock.total_seconds())
                expiry = math.ceil(lock.total_seconds()) + 60
                await store.incr(f"{name_key}:until:{failures}", expiry, amount=until)
            return Failure(failures, lock)

        return await self._run(count)

    async def succeeded(self, username: str) -> None:
        name_key = self._key("name", normalize_username(username))

        async def forget(store: Storage) -> None:
            failures = await store.get(f"{name_key}:failures")
            for number in range(FREE_FAILURES, failures + 1):
                await store.clear(f"{name_key}:until:{number}")
            await store.clear(f"{name_key}:failures")

        await self._run(forget)

    def name_hash(self, username: str) -> str:
        return self._key("name", normalize_username(username)).rpartition(":")[2]

    def _key(self, kind: str, value: str) -> str:
        digest = hmac.new(
            self._settings.secret_key,
            _KEY_CONTEXT + kind.encode() + b":" + value.encode(),
            hashlib.sha256,
        ).hexdigest()[:32]
        return f"takt:login:{kind}:{digest}"

    async def _run(self, operation: Callable[[Storage], Awaitable[T]]) -> T:
        """`operation` on the shared counters; on this instance's own while they fail."""
        failing_since = self._failing_since
        if failing_since is not None and time.monotonic() - failing_since < RETRY_STORAGE_AFTER_S:
            return await operation(self._fallback)
        try:
            result = await operation(self._storage)
        except Exception as exc:
            if failing_since is None:
                log.error("login limits: shared counters unavailable; counting here", exc_info=exc)
            self._failing_since = time.monotonic()
            return await operation(self._fallback)
        if failing_since is not None:
            log.warning("login limits: shared counters are back")
            self._failing_since = None
        return result


def address_class(address: str) -> str:
    """`ipv4-private`, `ipv6-loopback`, ... or `unknown`: what an address is, not which."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "private", "link_local", "multicast", "reserved", "global"):
        if getattr(ip, f"is_{kind}"):
            return f"ipv{ip.version}-{kind.replace('_', '-')}"
    return f"ipv{ip.version}-other"


def client_address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


def login_guard_of(conn: HTTPConnection) -> LoginGuard:
    guard: LoginGuard = conn.app.state.login_guard
    return guard


async def log_in(
    *, services: Services, guard: LoginGuard, username: str, password: str, address: str
) -> tables.User:
    """The user, if the guard lets them try and the password is right.

    Raises `TooManyLoginAttempts` (429) or `Unauthorized` (401).
    """
    await guard.admit(username, address)
    try:
        user = await check_credentials(services=services, username=username, password=password)
    except Unauthorized:
        failure = await guard.failed(username, address)
        await _audit_failure(services, guard, username, address, failure)
        raise
    await guard.succeeded(username)
    return user


async def _audit_failure(
    services: Services, guard: LoginGuard, username: str, address: str, failure: Failure
) -> None:
    details: dict[str, object] = {
        "username_hmac": guard.name_hash(username),
        "address_class": address_class(address),
        "failures_in_a_row": failure.failures,
    }
    if failure.locked_for is not None:
        details["locked_for_s"] = int(failure.locked_for.total_seconds())
    await record_access(services, ANONYMOUS, "login.failed", "users", details=details)
