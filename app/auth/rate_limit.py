"""Sliding-window rate limits per principal (SPEC §5).

People get `Settings.rate_limit_user` (100/minute), service keys
`rate_limit_service` (1000/minute), unauthenticated requests the user limit
per client IP. The window is a true moving window (`limits`'
MovingWindowRateLimiter): at most N requests in any 60 s.

Counters live in Redis when `REDIS_URL` is set, so all instances share them,
and in process otherwise. If Redis is unreachable the limiter fails open:
requests are served unlimited (and without `RateLimit-*` headers) and the
outage is logged once, until Redis answers again.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from app.services.context import Actor
from app.services.errors import RateLimited
from app.settings import Settings

log = logging.getLogger(__name__)

# Keep a dead Redis from stalling requests: give up quickly, fail open, and
# leave it alone for a few seconds before trying again.
REDIS_TIMEOUT_SECONDS = 0.25
RETRY_STORAGE_AFTER_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class RateLimitState:
    limit: int
    remaining: int
    # Seconds until the window has room again (0 when nothing is counted).
    reset: int
    # False when the counters were unreachable and the request went unchecked.
    enforced: bool = True


class RateLimits:
    """The limits of one app instance; `check` counts a request against its principal."""

    def __init__(self, settings: Settings, *, storage: Storage | None = None) -> None:
        self._storage = storage or counter_storage(settings.redis_url)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._user: RateLimitItem = parse(settings.rate_limit_user)
        self._service: RateLimitItem = parse(settings.rate_limit_service)
        self._failing_since: float | None = None

    async def check(self, who: Actor | str) -> RateLimitState:
        """Count one request by an actor, or by a client IP when unauthenticated.

        Raises `RateLimited` (with the response headers) past the limit.
        """
        item, key = self._item_and_key(who)
        unchecked = RateLimitState(
            limit=item.amount, remaining=item.amount, reset=0, enforced=False
        )
        failing_since = self._failing_since
        if (
            failing_since is not None
            and time.monotonic() - failing_since < RETRY_STORAGE_AFTER_SECONDS
        ):
            return unchecked
        try:
            allowed = await self._limiter.hit(item, key)
            reset_at, remaining = await self._limiter.get_window_stats(item, key)
        except Exception as exc:  # any storage failure: serve rather than refuse
            if failing_since is None:
                log.error("rate-limit storage unavailable; not limiting", exc_info=exc)
            self._failing_since = time.monotonic()
            return unchecked
        if failing_since is not None:
            log.warning("rate-limit storage is back; limiting again")
            self._failing_since = None
        state = RateLimitState(
            limit=item.amount,
            remaining=max(remaining, 0),
            reset=max(0, math.ceil(reset_at - time.time())),
        )
        if not allowed:
            raise RateLimited(
                limit=state.limit, retry_after=max(state.reset, 1), headers=headers(state, True)
            )
        return state

    def _item_and_key(self, who: Actor | str) -> tuple[RateLimitItem, str]:
        if isinstance(who, str):
            return self._user, f"ip:{who}"
        if who.service_key is not None:
            return self._service, who.principal
        return self._user, who.principal


def headers(state: RateLimitState, exceeded: bool = False) -> dict[str, str]:
    """`RateLimit-*` response headers for `state`, plus `Retry-After` when refused."""
    if not state.enforced:
        return {}
    values = {
        "RateLimit-Limit": str(state.limit),
        "RateLimit-Remaining": str(state.remaining),
        "RateLimit-Reset": str(state.reset),
    }
    if exceeded:
        values["Retry-After"] = str(max(state.reset, 1))
    return values


def counter_storage(redis_url: str | None) -> Storage:
    """Redis (shared by every instance) when `redis_url` is set, else this process's memory."""
    if redis_url is None:
        return MemoryStorage()
    scheme, sep, rest = redis_url.partition("://")
    if not sep or scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"REDIS_URL must be redis://, rediss:// or unix://, not {scheme!r}")
    uri = f"async+redis+unix://{rest}" if scheme == "unix" else f"async+{redis_url}"
    return RedisStorage(
        uri,
        implementation="redispy",
        wrap_exceptions=True,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )
