"""Single sign-on end to end in a real browser, against a real OIDC provider on loopback.

The provider is the certified `oidc-provider` from npm (tests/js/oidc_provider.mjs,
pinned in tests/js/package.json), started here for each test; Takt is a real server
configured for it. Cases: a good login lands on the screen of the mapped role (a new
user is created, an existing one is linked); a tampered state, an id token for another
audience and an expired id token are refused and sign nobody in; the login page offers
"Sign in with <provider>" only when SSO is configured.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from browser_login import submit_login
from needs import unavailable
from playwright.async_api import Browser, Page, Route
from realtime.live_world import (
    PASSWORD,
    Plant,
    plant_fixture as plant_fixture,
    var_dir_fixture as var_dir_fixture,
)
from servers import REPO_ROOT, Popen, free_port, http_ok, wait_until

pytestmark = pytest.mark.browser

WAIT_MS = 15_000
PROVIDER_NAME = "Plant ID"
PROVIDER_SCRIPT = REPO_ROOT / "tests" / "js" / "oidc_provider.mjs"
ACCOUNTS = {
    "sam": {"name": "Sam Sommer", "groups": ["staff", "planners"]},
    "anna": {"name": "Anna Amsel", "groups": ["managers"]},
    "nobody": {"name": "No Role", "groups": ["staff"]},
}


@dataclass
class Sso:
    takt: str
    provider: str

    async def id_tokens(self, mode: str) -> None:
        """Make the provider hand out id tokens for another audience, or expired ones."""
        async with httpx.AsyncClient() as http:
            answer = await http.post(f"{self.provider}/__test/id-token", params={"mode": mode})
            assert answer.json() == {"mode": mode}


def start_provider(port: int, redirect_uri: str, secret: str, log: Path) -> Popen:
    if shutil.which("node") is None:
        unavailable("node is not installed (apt-get install nodejs npm)")
    if not (REPO_ROOT / "tests" / "js" / "node_modules" / "oidc-provider").is_dir():
        unavailable("oidc-provider is not installed (scripts/test-needs runs npm ci in tests/js)")
    env = dict(os.environ) | {
        "PORT": str(port),
        "REDIRECT_URI": redirect_uri,
        "CLIENT_SECRET": secret,
        "ACCOUNTS": json.dumps(ACCOUNTS),
    }
    process = Popen.start(["node", str(PROVIDER_SCRIPT)], log=log, env=env, cwd=REPO_ROOT)
    base = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: http_ok(base, "/.well-known/openid-configuration"),
        timeout=30,
        what="oidc provider",
        proc=process,
    )
    return process


@pytest.fixture
def sso(
    plant: Plant,
    sqlite_database_url: str,
    var_dir: Path,
    live_server: Callable[..., str],
    tmp_path: Path,
) -> Iterator[Sso]:
    """Takt configured for a provider on loopback, and that provider running."""
    provider_port = free_port()
    provider = f"http://127.0.0.1:{provider_port}"
    secret = "takt-test-client-secret"
    secret_file = tmp_path / "oidc_client_secret"
    secret_file.write_text(secret)
    env = {
        "TAKT_RATE_LIMIT_USER": "100000/minute",
        "TAKT_OIDC_ISSUER": provider,
        "TAKT_OIDC_CLIENT_ID": "takt",
        "TAKT_OIDC_CLIENT_SECRET_FILE": str(secret_file),
        "TAKT_OIDC_PROVIDER_NAME": PROVIDER_NAME,
        "TAKT_OIDC_ROLE_CLAIM": "groups",
        "TAKT_OIDC_ROLE_MAP": "planners=scheduler,managers=manager,it=admin",
    }
    takt = live_server(database_url=sqlite_database_url, var_dir=var_dir, env=env)
    process = start_provider(
        provider_port, f"{takt}/login/oidc/callback", secret, tmp_path / "oidc-provider.log"
    )
    try:
        yield Sso(takt, provider)
    finally:
        process.stop()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        yield page
    finally:
        await context.close()


async def sign_in_with_provider(page: Page, sso: Sso, account: str) -> None:
    """From Takt's login page through the provider's own login form and back."""
    await page.goto(f"{sso.takt}/login")
    offer = page.locator("#sso-login")
    assert await offer.count() == 1, (page.url, (await page.content())[:2000])
    await offer.click()
    await page.wait_for_url(f"{sso.provider}/**")
    await page.fill('input[name="login"]', account)
    await page.fill('input[name="password"]', "any password: the provider's dev login")
    async with page.expect_navigation(url=f"{sso.takt}/**", wait_until="load"):
        await page.click('button[type="submit"]')


async def signed_in(page: Page, sso: Sso) -> bool:
    """Whether this browser has a Takt session (the front door does not send it to login)."""
    answer = await page.request.get(f"{sso.takt}/", max_redirects=0)
    return not answer.headers.get("location", "/login").startswith("/login")


async def test_a_good_login_lands_on_the_screen_of_the_mapped_role(page: Page, sso: Sso) -> None:
    # A new account: created as a scheduler ("planners"), lands on the board.
    await sign_in_with_provider(page, sso, "sam")
    assert urlsplit(page.url).path == "/board"
    await page.wait_for_selector("#bars")
    assert await signed_in(page, sso)
    # The session is a real one: logging out ends it.
    await page.click("text=Log out")
    await page.wait_for_url(f"{sso.takt}/login**")
    assert not await signed_in(page, sso)


async def test_an_existing_user_is_linked_and_gets_the_mapped_role(
    page: Page, sso: Sso, browser: Browser
) -> None:
    # anna is a scheduler in Takt; the provider says "managers": she lands on the wall.
    await sign_in_with_provider(page, sso, "anna")
    assert urlsplit(page.url).path == "/wall"
    # Still the same user: her password goes on working, with the new role.
    context = await browser.new_context()
    other = await context.new_page()
    await other.goto(f"{sso.takt}/login")
    await submit_login(other, "anna", PASSWORD)
    assert urlsplit(other.url).path == "/wall"
    await context.close()


async def test_an_account_without_a_mapped_role_is_refused(page: Page, sso: Sso) -> None:
    await sign_in_with_provider(page, sso, "nobody")
    assert "has no Takt role" in (await page.text_content("#login-error") or "")
    assert not await signed_in(page, sso)


async def test_a_tampered_state_is_refused(page: Page, sso: Sso) -> None:
    """The state is changed on its way to the provider, which hands it back to Takt."""

    async def tamper(route: Route) -> None:
        response = await route.fetch(max_redirects=0)
        headers = dict(response.headers)
        parts = urlsplit(headers["location"])
        query = dict(parse_qsl(parts.query))
        assert query.get("state") and query.get("code_challenge") and query.get("nonce")
        query["state"] = "forged-" + query["state"][:8]
        headers["location"] = urlunsplit(parts._replace(query=urlencode(query)))
        await route.fulfill(status=response.status, headers=headers, body=b"")

    await page.route(f"{sso.takt}/login/oidc", tamper)
    await sign_in_with_provider(page, sso, "sam")
    assert urlsplit(page.url).path == "/login/oidc/callback"
    assert "state does not match" in (await page.text_content("#login-error") or "")
    assert not await signed_in(page, sso)


@pytest.mark.parametrize(
    ("mode", "said"),
    [("wrong-audience", "not issued for Takt"), ("expired", "has expired")],
)
async def test_an_id_token_for_another_audience_or_expired_is_refused(
    page: Page, sso: Sso, mode: str, said: str
) -> None:
    await sso.id_tokens(mode)
    await sign_in_with_provider(page, sso, "sam")
    assert said in (await page.text_content("#login-error") or "")
    assert not await signed_in(page, sso)
    # Nothing was written: sam was never created.
    await sso.id_tokens("normal")
    admin = await page.request.post(
        f"{sso.takt}/api/v1/auth/token", data={"username": "ada", "password": PASSWORD}
    )
    token = (await admin.json())["access_token"]
    for user_id in range(1, 10):
        found = await page.request.get(
            f"{sso.takt}/api/v1/users/{user_id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert found.status == 404 or (await found.json())["username"] != "sam"


async def test_the_login_page_offers_sso_only_when_configured(
    page: Page, sso: Sso, screenshot_dir: Path
) -> None:
    await page.goto(f"{sso.takt}/login")
    button = page.locator("#sso-login")
    assert await button.text_content() == f"Sign in with {PROVIDER_NAME}"
    await page.screenshot(path=str(screenshot_dir / "login-sso.png"))
    await page.goto(f"{sso.takt}/login/oidc/callback?code=x&state=y")
    assert "took too long or was started elsewhere" in (
        await page.text_content("#login-error") or ""
    )
    await page.screenshot(path=str(screenshot_dir / "login-sso-refused.png"))
