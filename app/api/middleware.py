"""Cross-cutting HTTP behaviour of the API: rate limits and idempotent replays.

Both are pure ASGI middleware that only look at `/api/` requests. They need
to know *who* is calling before the endpoint authenticates fully, so they
derive a principal key from the credentials: a verified JWT's subject, a
service key's id, or else the client address.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import suppress
from typing import Any

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import clock
from app.auth.api_keys import SCHEME
from app.auth.principal import page_session_actor
from app.auth.rate_limit import RateLimits, headers
from app.auth.tokens import decode_access_token
from app.db import tables as t
from app.http_errors import error_response
from app.services.context import Actor, Services
from app.services.errors import RateLimited, ServiceError
from app.settings import Settings

log = structlog.get_logger(__name__)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PENDING = 0


def principal_of(scope: Scope, settings: Settings) -> Actor | str:
    """The caller as far as the headers tell: an actor, or the client IP.

    A signed (service) request is counted per client address under the service
    limit: its key id is not verified yet here, and trusting it would let
    anyone spend a real service's budget or invent key ids for fresh budgets.
    """
    authorization = Headers(scope=scope).get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    client = scope.get("client")
    address = client[0] if client else "unknown"
    if scheme.lower() == "bearer" and credentials:
        try:
            return decode_access_token(credentials.strip(), settings=settings)
        except ServiceError:
            pass
    elif scheme == SCHEME:
        return Actor(user_id=None, role="service", service_key=f"ip:{address}")
    elif not authorization:
        # A Takt page calling for its person (cookie + CSRF header): that person's budget/keys.
        headers = Headers(scope=scope)
        actor = page_session_actor(headers, HTTPConnection(scope).cookies, settings)
        if actor is not None:
            return actor
    return address


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.limits = RateLimits(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        # The budget is the token's (signature and expiry checked); the endpoint still asks
        # whether its login is live (`auth.tokens.live_access_actor`), as for page sessions.
        principal = principal_of(scope, self.settings)
        try:
            state = await self.limits.check(principal)
        except RateLimited as exc:
            response = error_response(429, exc.code, exc.message, exc.details, exc.headers)
            await response(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in headers(state).items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class IdempotencyMiddleware:
    """`Idempotency-Key` on a state-changing request: the first response is kept
    and replayed for the same key; the same key with another request is refused.
    """

    def __init__(self, app: ASGIApp, *, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = Headers(scope=scope).get("idempotency-key")
        if (
            key is None
            or scope["method"] not in WRITE_METHODS
            or not scope["path"].startswith("/api/")
            or not _routed(scope)
        ):
            # Nothing to keep: the router answers (404, 405) as it would without a key.
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 200:
            await error_response(
                400, "bad_idempotency_key", "Idempotency-Key must be 1 to 200 characters"
            )(scope, receive, send)
            return
        body = await _read_all(receive)
        principal = principal_of(scope, self.services.settings)
        owner = principal.principal if isinstance(principal, Actor) else f"ip:{principal}"
        fingerprint = _fingerprint(scope, body)
        claimed = await self._claim(owner, key, fingerprint)
        if claimed is not None:
            await _replay_or_refuse(claimed, fingerprint, scope, receive, send)
            return
        # The response is held back until its record is committed: once a client has
        # the first response, a replay of the key finds it (never "in progress").
        held: list[Message] = []
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            held.append(message)

        try:
            await self.app(scope, _replaying(body, receive), capture)
        except BaseException:
            # No response to keep: free the key so that the client may try again.
            with suppress(Exception):
                await self._settle(owner, key, {**captured, "status": 500})
            raise
        try:
            await self._settle(owner, key, captured)
        except Exception:
            # The change itself is committed: say so rather than turn it into an error.
            # The key stays "in progress" (replays answer 409, not a second change).
            log.exception("idempotency: could not keep the response", key_owner=owner)
        for message in held:
            await send(message)

    async def _claim(self, owner: str, key: str, fingerprint: str) -> t.IdempotencyRecord | None:
        """Reserve the key; or, when it is taken, the record holding it."""
        try:
            async with self.services.db.write() as session:
                session.add(
                    t.IdempotencyRecord(
                        principal=owner,
                        key=key,
                        request_hash=fingerprint,
                        status_code=PENDING,
                        response_body=b"",
                        response_headers={},
                        created_at=clock.now(),
                    )
                )
            return None
        except IntegrityError:
            async with self.services.db.read() as session:
                found = (
                    await session.execute(
                        select(t.IdempotencyRecord).where(
                            t.IdempotencyRecord.principal == owner, t.IdempotencyRecord.key == key
                        )
                    )
                ).scalar_one()
            return found

    async def _settle(self, owner: str, key: str, captured: dict[str, Any]) -> None:
        where = (t.IdempotencyRecord.principal == owner, t.IdempotencyRecord.key == key)
        async with self.services.db.write() as session:
            if captured["status"] >= 500 or captured["status"] == 429:
                # Not a result worth keeping: let the client try again with the same key.
                await session.execute(delete(t.IdempotencyRecord).where(*where))
                return
            kept = {
                k.decode(): v.decode()
                for k, v in captured["headers"]
                if k.lower() in (b"content-type", b"etag", b"location")
            }
            await session.execute(
                update(t.IdempotencyRecord)
                .where(*where)
                .values(
                    status_code=captured["status"],
                    response_body=captured["body"],
                    response_headers=kept,
                )
            )


async def _replay_or_refuse(
    record: t.IdempotencyRecord, fingerprint: str, scope: Scope, receive: Receive, send: Send
) -> None:
    response: Response
    if record.request_hash != fingerprint:
        response = error_response(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
        )
    elif record.status_code == PENDING:
        response = error_response(
            409,
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still being processed; retry shortly",
            headers={"Retry-After": "1"},
        )
    else:
        response = Response(
            record.response_body,
            status_code=record.status_code,
            headers={**record.response_headers, "Idempotent-Replayed": "true"},
        )
    await response(scope, receive, send)


def _routed(scope: Scope) -> bool:
    """Does a route take this method at this path? (The app is in the scope.)"""
    router = getattr(scope.get("app"), "router", None)
    if router is None:
        return True
    return any(route.matches(scope)[0] is Match.FULL for route in router.routes)


def _fingerprint(scope: Scope, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True).encode() if body else b""
    except (ValueError, RecursionError):  # the endpoint refuses it; the raw bytes will do
        canonical = body
    digest = hashlib.sha256()
    for part in (
        scope["method"].encode(),
        scope["path"].encode(),
        scope["query_string"],
        canonical,
    ):
        digest.update(part + b"\0")
    return digest.hexdigest()


async def _read_all(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, original: Receive) -> Receive:
    """Hand the already-read body to the app once, then the client's own messages."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive
