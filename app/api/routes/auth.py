from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import actor_of, if_match, json_response, path_id, services_of
from app.api.endpoint import ApiRouter, read_body
from app.api.schemas_auth import (
    RefreshRequest,
    SessionsEndedOut,
    TokenRequest,
    TokenResponse,
    UserIn,
    UserOut,
    UserPatch,
)
from app.auth import tokens
from app.auth.login_guard import client_address, log_in, login_guard_of
from app.db import tables
from app.services import sessions, users

api = ApiRouter()


def _token_body(pair: tokens.TokenPair) -> dict[str, object]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "bearer",
        "expires_in": pair.expires_in,
    }


@api.post(
    "/auth/token",
    summary="Log in: username and password for an access + refresh token "
    "(429 with Retry-After after repeated failures)",
    tag="auth",
    body=TokenRequest,
    response=TokenResponse,
    auth=False,
    errors=(401, 429),
)
async def issue_token(request: Request) -> Response:
    body = await read_body(request, TokenRequest)
    services = services_of(request)
    user = await log_in(
        services=services,
        guard=login_guard_of(request),
        username=body.username,
        password=body.password,
        address=client_address(request),
    )
    pair = await tokens.issue_tokens(services=services, user=user)
    return json_response(_token_body(pair))


@api.post(
    "/auth/refresh",
    summary="Trade a refresh token for new tokens (rotation)",
    tag="auth",
    body=RefreshRequest,
    response=TokenResponse,
    auth=False,
    errors=(401,),
)
async def refresh_token(request: Request) -> Response:
    body = await read_body(request, RefreshRequest)
    pair = await tokens.refresh(services=services_of(request), refresh_token=body.refresh_token)
    return json_response(_token_body(pair))


@api.post(
    "/auth/logout",
    summary="Log out: end the login this refresh token belongs to; its access tokens are "
    "refused from now on, on every instance",
    tag="auth",
    body=RefreshRequest,
    status=204,
    auth=False,
    errors=(401,),
)
async def log_out(request: Request) -> Response:
    body = await read_body(request, RefreshRequest)
    await tokens.logout(services=services_of(request), refresh_token=body.refresh_token)
    return Response(status_code=204)


@api.post(
    "/users",
    summary="Create a user (admins)",
    tag="auth",
    body=UserIn,
    response=UserOut,
    status=201,
    errors=(409,),
)
async def create_user(request: Request) -> Response:
    actor = await actor_of(request)
    body = await read_body(request, UserIn)
    user = await users.create_user(services=services_of(request), actor=actor, **body.model_dump())
    return json_response(_user_body(user), status=201, version=user.version)


@api.get(
    "/users/{user_id:id}", summary="One user (admins)", tag="auth", response=UserOut, errors=(404,)
)
async def get_user(request: Request) -> Response:
    user = await users.read_user(
        services=services_of(request),
        actor=await actor_of(request),
        user_id=path_id(request, "user_id"),
    )
    return json_response(_user_body(user), version=user.version)


@api.patch(
    "/users/{user_id:id}",
    summary="Change a user's role, display name or active flag (admins); disabling them or "
    "changing their role ends all their sessions, sockets and streams at once",
    tag="auth",
    body=UserPatch,
    response=UserOut,
    if_match=True,
    errors=(404, 409, 412, 428),
)
async def update_user(request: Request) -> Response:
    actor = await actor_of(request)
    body = await read_body(request, UserPatch)
    user = await users.update_user(
        services=services_of(request),
        actor=actor,
        user_id=path_id(request, "user_id"),
        expected_version=if_match(request),
        changes=body.model_dump(exclude_unset=True),
    )
    return json_response(_user_body(user), version=user.version)


@api.delete(
    "/users/{user_id:id}/sessions",
    summary="Sign a user out everywhere (admins): every session, socket and stream ends",
    tag="auth",
    response=SessionsEndedOut,
    errors=(404,),
)
async def end_user_sessions(request: Request) -> Response:
    ended = await sessions.end_sessions_of(
        services=services_of(request),
        actor=await actor_of(request),
        user_id=path_id(request, "user_id"),
    )
    return json_response({"ended": len(ended)})


def _user_body(user: tables.User) -> dict[str, object]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "operator_id": user.operator_id,
        "active": user.active,
    }
