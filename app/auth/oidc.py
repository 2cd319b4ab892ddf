"""Single sign-on with an OpenID Connect provider: authorization code + PKCE.

    begin(settings, redirect_url, next_url) -> (the provider's authorize URL, a pending cookie)
    finish(settings, pending cookie, code, state, redirect_url) -> the verified identity

The browser carries what must survive the round trip in a short-lived cookie
signed with the secret key (`takt_oidc`, 10 minutes): the `state`, the
`nonce` and the PKCE `code_verifier`, and where to go afterwards. Nothing is
kept on the server, so any instance can finish what another began.

`finish` refuses (`SignInRefused`, with a message for the login page):
  - a `state` that is not the one this browser was sent off with (CSRF on the
    callback, a tampered or replayed redirect);
  - an id token whose signature is not the provider's (keys from its JWKS),
    whose issuer is not `TAKT_OIDC_ISSUER`, whose audience does not include
    our client id (and names another authorized party), that has expired or
    is not yet valid (60 s leeway for clocks), or whose nonce is not ours.

The OAuth side (authorize URL, PKCE S256, the code exchange) is authlib's
AsyncOAuth2Client; the JOSE side is joserfc, authlib's JOSE library.
"""

from __future__ import annotations

import hmac
import secrets
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import authlib.deprecate
import httpx
import jwt as pyjwt
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app import clock
from app.settings import Settings

with warnings.catch_warnings():
    # authlib would rather talk through `httpx2`; httpx (pinned) is what Takt has.
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

PENDING_COOKIE = "takt_oidc"
PENDING_MINUTES = 10
LEEWAY_S = 60
HTTP_TIMEOUT_S = 10.0
_PENDING_AUDIENCE = "takt-oidc-pending"
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class SignInRefused(Exception):
    """The sign-in cannot go on; `message` is for the person at the login page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in, from a verified id token."""

    issuer: str
    subject: str
    claims: dict[str, Any]
    next_url: str


@dataclass(frozen=True, slots=True)
class Provider:
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


_providers: dict[str, Provider] = {}


async def provider(settings: Settings) -> Provider:
    """The provider's endpoints from its discovery document (fetched once per process)."""
    issuer = settings.oidc_issuer.rstrip("/")
    found = _providers.get(issuer)
    if found is not None:
        return found
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
            response = await http.get(f"{issuer}/.well-known/openid-configuration")
            response.raise_for_status()
            document = response.json()
    except (httpx.HTTPError, ValueError):
        raise SignInRefused(
            f"{settings.oidc_provider_name} cannot be reached right now; try again shortly."
        ) from None
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise SignInRefused(f"{settings.oidc_provider_name} is misconfigured (issuer mismatch).")
    found = Provider(
        authorization_endpoint=document["authorization_endpoint"],
        token_endpoint=document["token_endpoint"],
        jwks_uri=document["jwks_uri"],
    )
    _providers[issuer] = found
    return found


def _client(settings: Settings, redirect_url: str) -> AsyncOAuth2Client:
    secret = settings.oidc_client_secret or None
    return AsyncOAuth2Client(
        client_id=settings.oidc_client_id,
        client_secret=secret,
        scope=settings.oidc_scopes,
        redirect_uri=redirect_url,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
        timeout=HTTP_TIMEOUT_S,
    )


async def begin(settings: Settings, *, redirect_url: str, next_url: str) -> tuple[str, str]:
    """Where to send the browser, and the signed cookie that remembers this attempt."""
    endpoints = await provider(settings)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    async with _client(settings, redirect_url) as client:
        url, _ = client.create_authorization_url(
            endpoints.authorization_endpoint, state=state, nonce=nonce, code_verifier=verifier
        )
    now = clock.now()
    pending = {
        "aud": _PENDING_AUDIENCE,
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "next": next_url,
        "exp": int((now + timedelta(minutes=PENDING_MINUTES)).timestamp()),
    }
    return url, pyjwt.encode(pending, settings.secret_key, algorithm="HS256")


def _pending(settings: Settings, cookie: str | None) -> dict[str, Any]:
    expired = "This sign-in took too long or was started elsewhere. Please sign in again."
    if not cookie:
        raise SignInRefused(expired)
    try:
        claims: dict[str, Any] = pyjwt.decode(
            cookie,
            settings.secret_key,
            algorithms=["HS256"],
            audience=_PENDING_AUDIENCE,
            options={"verify_exp": False},
        )
    except pyjwt.InvalidTokenError:
        raise SignInRefused(expired) from None
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= clock.now().timestamp():
        raise SignInRefused(expired)
    return claims


async def finish(
    settings: Settings, *, cookie: str | None, code: str, state: str, redirect_url: str
) -> Identity:
    pending = _pending(settings, cookie)
    if not state or not hmac.compare_digest(state.encode(), str(pending["state"]).encode()):
        raise SignInRefused(
            "This sign-in was refused: its state does not match the one it was started with."
        )
    endpoints = await provider(settings)
    name = settings.oidc_provider_name
    try:
        async with _client(settings, redirect_url) as client:
            token = await client.fetch_token(
                endpoints.token_endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=pending["verifier"],
            )
            keys = (await client.get(endpoints.jwks_uri)).json()
    except Exception:  # authlib raises its own OAuthError, httpx its HTTPError
        raise SignInRefused(f"{name} did not accept this sign-in; please try again.") from None
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SignInRefused(f"{name} sent no identity token.")
    claims = verify_id_token(settings, id_token, keys, nonce=str(pending["nonce"]))
    return Identity(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        claims=claims,
        next_url=str(pending.get("next") or ""),
    )


def verify_id_token(
    settings: Settings, id_token: str, keys: dict[str, Any], *, nonce: str
) -> dict[str, Any]:
    """The claims of a valid id token for us; `SignInRefused` saying what is wrong."""
    name = settings.oidc_provider_name
    try:
        token = jose_jwt.decode(id_token, KeySet.import_key_set(keys), algorithms=_ALGORITHMS)  # type: ignore[arg-type]
    except (JoseError, ValueError, KeyError):
        raise SignInRefused(f"The identity token from {name} is not signed by it.") from None
    claims: dict[str, Any] = dict(token.claims)
    issuer, client_id = settings.oidc_issuer.rstrip("/"), settings.oidc_client_id
    if str(claims.get("iss", "")).rstrip("/") != issuer:
        raise SignInRefused(f"The identity token was not issued by {name}.")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    azp = claims.get("azp")
    if client_id not in audiences or (azp is not None and azp != client_id):
        raise SignInRefused("The identity token was not issued for Takt (wrong audience).")
    registry = jose_jwt.JWTClaimsRegistry(
        now=int(clock.now().timestamp()),
        leeway=LEEWAY_S,
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        if exc.error == "expired_token":
            raise SignInRefused("The identity token has expired; please sign in again.") from None
        if "nonce" in str(exc.description or ""):
            raise SignInRefused("The identity token does not belong to this sign-in.") from None
        raise SignInRefused(f"The identity token is not valid ({exc.error}).") from None
    return claims


def role_from(settings: Settings, claims: dict[str, Any]) -> str | None:
    """The Takt role the mapped claim grants (the most powerful of several), or None."""
    from app.services.context import ROLES

    mapping: dict[str, str] = {}
    for pair in settings.oidc_role_map.split(","):
        value, _, role = pair.partition("=")
        if value.strip() and role.strip() in ROLES:
            mapping[value.strip()] = role.strip()
    raw = claims.get(settings.oidc_role_claim)
    values = raw if isinstance(raw, list) else [raw]
    granted = [mapping[v] for v in values if isinstance(v, str) and v in mapping]
    return max(granted, key=ROLES.index) if granted else None
