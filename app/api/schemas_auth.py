"""The auth routes' request and response bodies: logging in, tokens, user accounts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from app.api.schemas import Id, Strict, omitted

# --- tokens ------------------------------------------------------------------------------------


class TokenRequest(Strict):
    username: Annotated[str, Field(min_length=1, max_length=100)]
    password: Annotated[str, Field(min_length=1, max_length=1000)]


class RefreshRequest(Strict):
    refresh_token: Annotated[str, Field(min_length=1, max_length=500)]


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


# --- accounts --------------------------------------------------------------------------------


class UserIn(Strict):
    username: Annotated[str, Field(min_length=2, max_length=100, pattern=r"^[a-z0-9_.-]+$")]
    password: Annotated[str, Field(min_length=8, max_length=1000)]
    role: Literal["operator", "scheduler", "manager", "admin"]
    operator_id: Id | None = None
    display_name: Annotated[str, Field(max_length=200)] = ""


class UserPatch(Strict):
    """Disabling a user or changing their role ends all their sessions at once."""

    role: Literal["operator", "scheduler", "manager", "admin"] = omitted()
    active: bool = omitted()
    display_name: Annotated[str, Field(max_length=200)] = omitted()


class SessionsEndedOut(BaseModel):
    ended: int


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    operator_id: int | None
    active: bool
