"""The Redis hub: one instance's subscribers fed from Redis pub/sub, across instances.

Why `redis.asyncio` directly and not `broadcaster`: broadcaster (alpha) keeps an
unbounded queue per subscriber, and its Redis subscriber hangs after a Redis
disconnect (encode/broadcaster#144) with no signal that messages were lost.
redis-py's own `PubSub` object is no better for us: on a dropped connection
its retry logic reconnects and resubscribes silently, so the gap is invisible.
A gap is exactly what subscribers must hear about (Redis pub/sub is
at-most-once), so this module owns the subscriber connection itself:

    publish ──► PUBLISH on the publisher client ──► Redis
                   │ fails (Redis away)                │
                   ▼                                   ▼
            deliver locally, remember      one subscriber connection per
            the channel; announce a        instance, read by one task that
            resync there once Redis is     fans out to bounded local
            back (other instances missed   `Subscription`s
            the message)                              │ connection lost
                                                      ▼
                                      reconnect with backoff + jitter, SUBSCRIBE
                                      every channel with local subscribers, then
                                      RESYNC to every local subscriber

Every message goes through Redis, so all instances see one order; only when
Redis refuses a publish is it delivered locally, and `publish` never raises:
writes are committed before they are published and must not fail because
Redis is down (SPEC §6). Redis-level SUBSCRIBE/UNSUBSCRIBE follow the local
subscriber count of each channel. RESYNC is delivered only once the
resubscription is confirmed, so whatever a subscriber reads from the change log
after it, later commits still reach it as messages.

While the subscription is down, nothing from other instances arrives at all:
the `Backfill` (backfill.py) then reads the change log every second and
delivers what this instance's subscribers have not had, so no board stays
stale while Redis is away; while it is up, the same look every few seconds
catches a message another instance could not publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import Counter
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app import tracing
from app.realtime.backfill import Backfill, ReadBacklog
from app.realtime.hub import DEFAULT_QUEUE_SIZE, RESYNC, Message, Subscription
from app.realtime.racing import first_to_end

log = logging.getLogger(__name__)

# Always subscribed, and subscribed last: its confirmation means every channel
# before it in the same SUBSCRIBE is live. Also carries nothing else.
CONTROL_CHANNEL = "takt:hub:control"
CONNECT_TIMEOUT_S = 1.0
PUBLISH_TIMEOUT_S = 1.0
# How long a new subscriber waits for Redis to confirm its channel.
SUBSCRIBE_WAIT_S = 2.0
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 5.0
# A PING every so often; no reply at all for 3 of them means a dead connection
# that the kernel has not noticed (half-open TCP across a real network).
HEARTBEAT_S = 5.0
# How long `stop` waits for the reader to end before cancelling it again.
STOP_RETRY_S = 0.2

RECONNECTS = Counter("takt_hub_reconnects_total", "Redis hub subscriber reconnects")
PUBLISH_FAILURES = Counter(
    "takt_hub_publish_failures_total", "Publishes Redis refused (delivered locally)"
)
RESYNCS = Counter("takt_hub_resyncs_total", "Resync markers delivered after a gap")


def backoff_delay(
    attempt: int, *, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_CAP_S
) -> float:
    """Exponential with jitter: instances that lost Redis together do not return in step."""
    ceiling = min(cap, base * 2 ** min(attempt, 16))
    return random.uniform(ceiling / 2, ceiling)


class RedisHub:
    """The `Hub` for several app instances sharing one Redis."""

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        backoff_cap: float = BACKOFF_CAP_S,
        heartbeat: float = HEARTBEAT_S,
    ) -> None:
        self._url = url
        self._queue_size = queue_size
        self._backoff_cap = backoff_cap
        self._heartbeat = heartbeat
        self._subscribers: dict[str, set[Subscription]] = {}
        # Per channel: SUBSCRIBEs sent on the current connection and not yet
        # confirmed, and an event set once none are outstanding.
        self._unconfirmed: dict[str, int] = {}
        self._confirmed: dict[str, asyncio.Event] = {}
        # Channels whose publish Redis refused: other instances missed something there.
        self._unannounced: set[str] = set()
        self._conn: AbstractConnection | None = None
        self._send_lock = asyncio.Lock()
        self._connected = False
        self._last_seen = 0.0
        self._publisher: Redis | None = None
        self._pool: ConnectionPool | None = None
        self._reader: asyncio.Task[None] | None = None
        # Per channel with local subscribers: the newest revision delivered to them.
        self._delivered: dict[str, int] = {}
        self._backfill: Backfill | None = None
        self._backfilling: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool:
        """Subscribed to Redis right now (False while reconnecting)."""
        return self._connected

    @property
    def degraded(self) -> bool:
        return not self._connected

    def fill_gaps_from(self, read: ReadBacklog, **options: float) -> None:
        self._backfill = Backfill(self, read, **options)

    async def start(self) -> None:
        no_retry = Retry(NoBackoff(), 0)  # retries are ours: backoff here, resync after
        options: dict[str, Any] = {
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            "socket_timeout": PUBLISH_TIMEOUT_S,
            "retry": no_retry,
        }
        self._publisher = Redis.from_url(self._url, **options)
        # RESP2: subscription messages come back from `read_response` as plain
        # arrays; RESP3 (redis-py 8's default) hands them to a push callback.
        self._pool = ConnectionPool.from_url(self._url, **options, protocol=2)
        self._reader = asyncio.create_task(self._read_forever(), name="redis-hub-reader")
        if self._backfill is not None:
            looking = tracing.untraced(self._backfill.run())  # a look every second or so
            self._backfilling = asyncio.create_task(looking, name="redis-hub-backfill")

    async def stop(self) -> None:
        if self._backfilling is not None:
            self._backfilling.cancel()
            await asyncio.wait({self._backfilling})
            self._backfilling = None
        if self._reader is not None:
            # A cancellation that lands as a redis-py command completes can be lost (seen
            # with redis-py 8 on Python 3.11, sending SUBSCRIBE); the reader then carries
            # on subscribed. So cancel until it has ended.
            while not self._reader.done():
                self._reader.cancel()
                await asyncio.wait({self._reader}, timeout=STOP_RETRY_S)
            self._reader = None
        await self._drop_connection()
        if self._publisher is not None:
            await self._publisher.aclose()
            self._publisher = None
        if self._pool is not None:
            await self._pool.disconnect()
            self._pool = None
        self._subscribers.clear()
        self._delivered.clear()

    # --- publishing -------------------------------------------------------------------------

    async def publish(self, channel: str, message: Message) -> None:
        await self._announce_resyncs()
        if await self._publish_raw(channel, message):
            return
        PUBLISH_FAILURES.inc()
        self._unannounced.add(channel)
        self._deliver(channel, message)

    async def _publish_raw(self, channel: str, message: Message) -> bool:
        # While the subscriber connection is down Redis is very likely down too:
        # do not make every write wait for a connect timeout.
        if not self._connected or self._publisher is None:
            return False
        data = json.dumps(message, separators=(",", ":"), default=str)
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self._publisher.publish(channel, data)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("redis publish on %s failed (%s); delivered locally", channel, exc)
            return False
        return True

    async def _announce_resyncs(self) -> None:
        """Tell every instance's subscribers of channels we could not publish on to resync."""
        while self._unannounced:
            channel = self._unannounced.pop()
            if not await self._publish_raw(channel, RESYNC):
                self._unannounced.add(channel)
                return

    def _deliver(self, channel: str, message: Message) -> None:
        subscriptions = self._subscribers.get(channel)
        if not subscriptions:
            return
        revision = message.get("revision")
        if isinstance(revision, int) and not isinstance(revision, bool):
            self.note_delivered(channel, revision)
        for subscription in list(subscriptions):
            subscription.deliver(message)

    # --- what the backfill asks -------------------------------------------------------------

    def local_channels(self) -> list[str]:
        return list(self._subscribers)

    def delivered_revision(self, channel: str) -> int | None:
        return self._delivered.get(channel)

    def deliver_local(self, channel: str, message: Message) -> None:
        self._deliver(channel, message)

    def note_delivered(self, channel: str, revision: int) -> None:
        if channel in self._subscribers:
            self._delivered[channel] = max(revision, self._delivered.get(channel, revision))

    def _resync_everyone(self) -> None:
        for subscriptions in self._subscribers.values():
            for subscription in subscriptions:
                subscription.deliver(RESYNC)
                RESYNCS.inc()

    # --- subscribing ------------------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(channel, self._queue_size)
        subscribers = self._subscribers.setdefault(channel, set())
        first = not subscribers
        subscribers.add(subscription)
        try:
            if first:
                await self._send_subscribe(channel)
            await self._await_confirmation(channel)
            yield subscription
        finally:
            subscribers.discard(subscription)
            if not subscribers and self._subscribers.get(channel) is subscribers:
                del self._subscribers[channel]
                self._delivered.pop(channel, None)
                await self._send_unsubscribe(channel)

    async def _send_subscribe(self, channel: str) -> None:
        async with self._send_lock:
            self._confirmed.setdefault(channel, asyncio.Event()).clear()
            if self._conn is None:
                return  # the reader subscribes it when it (re)connects
            self._unconfirmed[channel] = self._unconfirmed.get(channel, 0) + 1
            await self._send(self._conn, "SUBSCRIBE", channel)

    async def _send_unsubscribe(self, channel: str) -> None:
        async with self._send_lock:
            self._confirmed.pop(channel, None)
            if self._conn is not None:
                await self._send(self._conn, "UNSUBSCRIBE", channel)

    async def _await_confirmation(self, channel: str) -> None:
        """Wait until PUBLISHes on `channel` reach us, unless Redis is away.

        While disconnected the subscriber goes ahead: the RESYNC that follows
        the reconnect covers whatever it misses until then.
        """
        event = self._confirmed.get(channel)
        if event is None or not self._connected:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SUBSCRIBE_WAIT_S):
                await event.wait()

    async def _send(self, conn: AbstractConnection, *args: str) -> None:
        try:
            await conn.send_command(*args, check_health=False)
        except (RedisError, OSError) as exc:
            # The reader sees the same failure and reconnects; nothing to do here.
            log.debug("redis hub: %s not sent (%s)", args[0], exc)

    # --- the reader -------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session()
            except (RedisError, OSError, TimeoutError) as exc:
                if self._connected or attempt == 0:
                    log.warning("redis hub: subscriber connection lost (%s); reconnecting", exc)
            except Exception:
                # A bug must not end fan-out for good: log it and start afresh.
                log.exception("redis hub: reader failed; reconnecting")
            finally:
                was_connected = self._connected
                await self._drop_connection()
            if was_connected:
                attempt = 0
                RECONNECTS.inc()
            await asyncio.sleep(backoff_delay(attempt, cap=self._backoff_cap))
            attempt += 1

    async def _session(self) -> None:
        """One subscriber connection, from connect to failure."""
        assert self._pool is not None
        conn: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        await conn.connect()  # type: ignore[no-untyped-call]
        async with self._send_lock:
            self._conn = conn
            channels = [*self._subscribers, CONTROL_CHANNEL]
            for channel in channels[:-1]:
                self._confirmed.setdefault(channel, asyncio.Event()).clear()
                self._unconfirmed[channel] = self._unconfirmed.get(channel, 0) + 1
            await conn.send_command("SUBSCRIBE", *channels, check_health=False)
        self._last_seen = time.monotonic()
        # Whichever ends first (both only end by raising) ends the session.
        await first_to_end(
            asyncio.create_task(self._receive(conn), name="redis-hub-receive"),
            asyncio.create_task(self._heartbeats(conn), name="redis-hub-heartbeat"),
        )

    async def _receive(self, conn: AbstractConnection) -> None:
        while True:
            response = await conn.read_response(timeout=math.inf)
            self._last_seen = time.monotonic()
            if not isinstance(response, list) or len(response) < 2:
                continue
            kind, channel = bytes(response[0]).decode(), bytes(response[1]).decode()
            if kind == "message":
                self._on_message(channel, response[2])
            elif kind == "subscribe":
                await self._on_subscribed(channel)

    def _on_message(self, channel: str, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            log.warning("redis hub: undecodable message on %s dropped", channel)
            return
        if not isinstance(message, dict):
            return
        if message.get("kind") == RESYNC["kind"]:
            message = RESYNC  # the marker is recognised by identity
            RESYNCS.inc()
        self._deliver(channel, message)

    async def _on_subscribed(self, channel: str) -> None:
        if channel == CONTROL_CHANNEL:
            # Every channel of this connection's first SUBSCRIBE is live now.
            self._connected = True
            log.info("redis hub: subscribed (%d channels)", len(self._subscribers))
            self._resync_everyone()
            await self._announce_resyncs()
            return
        left = self._unconfirmed.get(channel, 0) - 1
        self._unconfirmed[channel] = max(0, left)
        if left <= 0 and channel in self._confirmed:
            self._confirmed[channel].set()

    async def _heartbeats(self, conn: AbstractConnection) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            if time.monotonic() - self._last_seen > 3 * self._heartbeat:
                raise TimeoutError("no reply from Redis to three heartbeats")
            async with self._send_lock:
                await conn.send_command("PING", check_health=False)

    async def _drop_connection(self) -> None:
        async with self._send_lock:
            conn, self._conn = self._conn, None
            self._connected = False
            self._unconfirmed.clear()
            for event in self._confirmed.values():
                event.clear()
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
