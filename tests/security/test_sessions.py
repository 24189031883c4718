"""Sessions end when they should: signed out at Keycloak or by an admin (back-channel logout), an account
disabled, a session past its absolute lifetime however often it was refreshed, and a sign-out only by a POST
carrying the session's CSRF token. The real Keycloak, NATS (the session buckets) and gateway."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from maille_devstack.browser import Browser
from maille_devstack.keycloak_admin import admin_client
from maille_devstack.processes import ServiceProcess, free_port
from maille_devstack.pytest_plugin import KeycloakClients

pytestmark = pytest.mark.keycloak
PASSWORD = "s3cret-Password"


@dataclass
class Gateway:
    url: str
    username: str
    clients: KeycloakClients

    def signed_in(self) -> Browser:
        browser = Browser()
        landed = browser.sign_in(browser.go(f"{self.url}/login"), self.username, PASSWORD)
        assert landed.status_code == 200 and "Bonjour" in landed.text, landed.text[:300]
        return browser

    def user_id(self) -> str:
        with self.admin() as admin:
            return (
                admin.get("/users", params={"username": self.username, "exact": "true"})
                .raise_for_status()
                .json()[0]["id"]
            )

    def admin(self) -> httpx.Client:
        server = self.clients.server
        return admin_client(server.url, server.admin_user, server.admin_password)


@pytest.fixture
def gateway(
    service_factory: Callable[..., ServiceProcess], keycloak_clients: KeycloakClients
) -> Iterator[Callable[..., Gateway]]:
    def start(*, token_seconds: int | None = None, session_seconds: int | None = None) -> Gateway:
        port = free_port()
        public = f"http://localhost:{port}"
        client_id, secret = keycloak_clients.browser_client(public, token_seconds=token_seconds)
        service_factory(
            "gateway",
            port=port,
            env={
                "MAILLE_GATEWAY_AUTH_ISSUER": keycloak_clients.issuer,
                "MAILLE_GATEWAY_ROUTES": "{}",
                # The gateway's own page says who is signed in (these tests are about sessions, not the portal's
                # screens, which tests/portal/ drives in Chromium).
                "MAILLE_GATEWAY_PORTAL_DIR": "/nonexistent",
                "MAILLE_GATEWAY_PUBLIC_URL": public,
                "MAILLE_GATEWAY_OIDC_CLIENT_ID": client_id,
                "MAILLE_GATEWAY_OIDC_CLIENT_SECRET": secret,
                **({"MAILLE_GATEWAY_SESSION_TTL_SECONDS": str(session_seconds)} if session_seconds else {}),
            },
        )
        return Gateway(url=public, username=keycloak_clients.user(password=PASSWORD), clients=keycloak_clients)

    yield start


def _signed_in(browser: Browser, gateway: Gateway) -> bool:
    return "Bonjour" in browser.request("GET", f"{gateway.url}/").text


def _within(seconds: float, check: Callable[[], bool]) -> float | None:
    """How long `check` took to come true (None: not within `seconds`)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.25)
    return None


def test_a_session_ended_at_keycloak_ends_at_the_gateway_within_seconds(gateway) -> None:
    platform = gateway()
    browser, bystander = platform.signed_in(), platform.signed_in()
    with platform.admin() as admin:  # the admin ends the person's sessions (or they signed out of Keycloak elsewhere)
        sessions = admin.get(f"/users/{platform.user_id()}/sessions").raise_for_status().json()
        admin.delete(f"/sessions/{sessions[0]['id']}").raise_for_status()
    both = (browser, bystander)
    assert _within(5, lambda: sum(not _signed_in(b, platform) for b in both) == 1) is not None
    # The other session of the same person, not ended at Keycloak, goes on.
    assert sum(_signed_in(b, platform) for b in both) == 1


def test_a_disabled_account_stops_working_within_seconds(
    gateway, service_factory, keycloak_clients: KeycloakClients
) -> None:
    platform = gateway()
    # identity, Keycloak's administrator, signs out an account an admin disabled (Keycloak does not on its own).
    service_factory(
        "identity",
        env={
            "MAILLE_IDENTITY_AUTH_ISSUER": keycloak_clients.issuer,
            "MAILLE_IDENTITY_KEYCLOAK_URL": keycloak_clients.server.url,
        },
    )
    browser = platform.signed_in()
    with platform.admin() as admin:
        user = admin.get(f"/users/{platform.user_id()}").raise_for_status().json()
        admin.put(f"/users/{user['id']}", json={**user, "enabled": False}).raise_for_status()
    assert _within(5, lambda: not _signed_in(browser, platform)) is not None


def test_a_session_ends_at_its_absolute_lifetime_whatever_the_refreshes(gateway) -> None:
    platform = gateway(token_seconds=34, session_seconds=60)  # refreshed every few seconds, for at most a minute
    browser = platform.signed_in()
    started = time.monotonic()
    while time.monotonic() - started < 55:
        assert _signed_in(browser, platform)
        time.sleep(5)
    assert _within(15, lambda: not _signed_in(browser, platform)) is not None


def test_signing_out_needs_a_post_with_the_csrf_token(gateway) -> None:
    platform = gateway()
    browser = platform.signed_in()
    page = browser.request("GET", f"{platform.url}/logout")  # a link or an <img> elsewhere: only a page with a button
    assert page.status_code == 200 and 'method="post"' in page.text and _signed_in(browser, platform)
    forged = browser.request("POST", f"{platform.url}/logout")
    assert forged.status_code == 403 and _signed_in(browser, platform)
    out = browser.post_form(page)
    assert not _signed_in(browser, platform) and out.status_code == 200
