"""The id token checks of single sign-on (app/auth/oidc.py), one refusal at a time,
and the role mapping. The whole flow runs against a real provider in
tests/web/test_sso_browser.py; here each check is shown to refuse on its own."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from app import clock
from app.auth.oidc import SignInRefused, role_from, verify_id_token
from app.settings import Settings

ISSUER = "https://id.plant.example"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
KEYS = {"keys": [KEY.as_dict(private=False)]}


def settings(**more: Any) -> Settings:
    return Settings(
        TAKT_OIDC_ISSUER=ISSUER,
        TAKT_OIDC_CLIENT_ID="takt",
        TAKT_OIDC_ROLE_CLAIM="groups",
        TAKT_OIDC_ROLE_MAP="planners=scheduler, managers=manager,it=admin,bogus=overlord",
        **more,
    )


def token(key: RSAKey = KEY, **changes: Any) -> str:
    now = int(clock.now().timestamp())
    claims = {
        "iss": ISSUER,
        "aud": "takt",
        "sub": "u-1",
        "nonce": "n-1",
        "iat": now,
        "exp": now + 300,
    } | changes
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)


def test_a_good_token_gives_its_claims() -> None:
    claims = verify_id_token(settings(), token(), KEYS, nonce="n-1")
    assert claims["sub"] == "u-1"
    several = token(aud=["takt", "reports"], azp="takt")
    assert verify_id_token(settings(), several, KEYS, nonce="n-1")["sub"] == "u-1"


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        (lambda: token(OTHER_KEY), "not signed by it"),
        (lambda: token(iss="https://evil.example"), "not issued by"),
        (lambda: token(aud="another-application"), "wrong audience"),
        (lambda: token(aud=["takt", "reports"], azp="reports"), "wrong audience"),
        (lambda: token(aud=None), "wrong audience"),
        (
            lambda: token(
                iat=int(clock.now().timestamp()) - 7200, exp=int(clock.now().timestamp()) - 3600
            ),
            "has expired",
        ),
        (lambda: token(nonce="someone-elses"), "does not belong to this sign-in"),
        (lambda: token(nonce=None), "does not belong to this sign-in"),
        (lambda: token(sub=None), "not valid"),
        (lambda: "not.a.token", "not signed by it"),
    ],
)
def test_a_bad_token_is_refused_saying_why(bad: Any, said: str) -> None:
    with pytest.raises(SignInRefused) as refused:
        verify_id_token(settings(), bad(), KEYS, nonce="n-1")
    assert said in refused.value.message


def test_a_token_just_past_its_expiry_is_allowed_for_clock_skew_only() -> None:
    now = int(clock.now().timestamp())
    verify_id_token(settings(), token(iat=now - 400, exp=now - 30), KEYS, nonce="n-1")
    with pytest.raises(SignInRefused):
        verify_id_token(settings(), token(iat=now - 400, exp=now - 120), KEYS, nonce="n-1")


def test_the_mapped_claim_gives_the_most_powerful_role() -> None:
    assert role_from(settings(), {"groups": ["staff", "planners"]}) == "scheduler"
    assert role_from(settings(), {"groups": ["planners", "it", "managers"]}) == "admin"
    assert role_from(settings(), {"groups": "managers"}) == "manager"
    # No mapped value, a value mapped to no Takt role, or no claim: no role (refused).
    assert role_from(settings(), {"groups": ["staff"]}) is None
    assert role_from(settings(), {"groups": ["bogus"]}) is None
    assert role_from(settings(), {}) is None
