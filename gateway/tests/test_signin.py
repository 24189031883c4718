"""A browser signs in through Keycloak's own login page and uses Maille with its session: the real
Keycloak, the real gateway and identity processes, the real NATS KV holding the session."""

import asyncio
import html
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from maille.observatory.v1 import usage_pb2
from maille_devstack.browser import Browser
from maille_devstack.paths import bin_of
from maille_devstack.processes import DocstoreServer, NatsServer, ServiceProcess, free_port
from maille_devstack.pytest_plugin import KeycloakClients
from maille_kit.bus import Bus
from maille_kit.docstore import Docstore
from maille_kit.events import decode
from maille_kit.usage import pseudonym
from maille_observatory.events import STREAM as OBSERVATORY_STREAM

from .conftest import Echo

pytestmark = pytest.mark.keycloak
PASSWORD = "s3cret-Password"
TENANT = "ac-test"
USAGE_KEY = "a-usage-key-of-the-tests"


async def uses_told(nats: NatsServer, after: int, kind: int, timeout: float = 15) -> tuple[list[Any], bytes]:
    """The uses of `kind` the stream OBSERVATORY has received after its sequence `after` (and their raw bytes)."""
    bus = Bus(nats.url, name="test-uses")
    await bus.connect(timeout=5)
    try:
        deadline = time.monotonic() + timeout
        while True:
            last = (await bus.js.stream_info("OBSERVATORY")).state.last_seq
            raw = b"".join(
                [(await bus.js.get_msg("OBSERVATORY", seq)).data or b"" for seq in range(after + 1, last + 1)]
            )
            found = []
            for seq in range(after + 1, last + 1):
                event = decode((await bus.js.get_msg("OBSERVATORY", seq)).data or b"")
                found += [u for u in event.unpack(usage_pb2.UseRecorded).uses if u.kind == kind]
            if found or time.monotonic() > deadline:
                return found, raw
            await asyncio.sleep(0.3)
    finally:
        await bus.close()


async def observatory_stream(nats: NatsServer) -> int:
    """The observatory's stream (as it declares it), and its last sequence now."""
    bus = Bus(nats.url, name="test-uses")
    await bus.connect(timeout=5)
    try:
        await bus.ensure_streams([OBSERVATORY_STREAM])
        return int((await bus.js.stream_info("OBSERVATORY")).state.last_seq)
    finally:
        await bus.close()


def import_directory(folder: Path, database: str, nats: NatsServer, docstore: DocstoreServer) -> None:
    """A small synthetic directory, imported as an operator does (`maille-identity import-aaf`)."""
    identity = str(bin_of("maille-identity"))
    subprocess.run(
        [identity, "generate-aaf", str(folder), "--persons", "40", "--schools", "1"], check=True, capture_output=True
    )
    env = {
        **os.environ,
        "MAILLE_IDENTITY_DATABASE": database,
        "MAILLE_IDENTITY_MONGODB_URL": docstore.url,
        "MAILLE_IDENTITY_NATS_URL": nats.url,
        "MAILLE_IDENTITY_TENANT": TENANT,
        "CI": "1",
    }
    subprocess.run(
        [identity, "import-aaf", str(folder), "--report", str(folder / "report.txt")],
        env=env,
        check=True,
        capture_output=True,
    )


@pytest.fixture
async def a_pupil(
    tmp_path: Path, docstore: Docstore, database_name: str, nats_server: NatsServer, docstore_server: DocstoreServer
) -> dict[str, Any]:
    """A pupil of a small directory identity imported into `database_name`, as identity keeps them."""
    import_directory(tmp_path / "feed", database_name, nats_server, docstore_server)
    pupil = await docstore.db.persons.find_one({"kind": "pupil"})
    assert pupil is not None
    return pupil


@pytest.fixture
def signed_in_platform(
    tmp_path: Path, service_factory: Callable[..., ServiceProcess], keycloak_clients: KeycloakClients, echo: Echo
):
    def start(
        identity_database: str, ent_id: str | None = None, roles: tuple[str, ...] = (), token_seconds: int | None = None
    ):
        auth = {"AUTH_ISSUER": keycloak_clients.issuer}
        identity = service_factory(
            "identity",
            env={f"MAILLE_IDENTITY_{k}": v for k, v in auth.items()}
            | {
                "MAILLE_IDENTITY_DATABASE": identity_database,
                "MAILLE_IDENTITY_TENANT": TENANT,
                "MAILLE_IDENTITY_IMPORT_DIR": str(tmp_path / "imports"),
            },
        )
        port = free_port()
        public = f"http://localhost:{port}"
        client_id, secret = keycloak_clients.browser_client(public, token_seconds=token_seconds)
        gateway = service_factory(
            "gateway",
            port=port,
            env={f"MAILLE_GATEWAY_{k}": v for k, v in auth.items()}
            | {
                "MAILLE_GATEWAY_ROUTES": json.dumps({"identity": identity.url, "echo": echo.url}),
                "MAILLE_GATEWAY_PORTAL_DIR": "/nonexistent",  # the gateway's own page says who signed in
                "MAILLE_GATEWAY_PUBLIC_URL": public,
                "MAILLE_GATEWAY_OIDC_CLIENT_ID": client_id,
                "MAILLE_GATEWAY_OIDC_CLIENT_SECRET": secret,
                "MAILLE_GATEWAY_USAGE_KEY": USAGE_KEY,
            },
        )
        username = keycloak_clients.user(password=PASSWORD, roles=roles)
        if ent_id is not None:  # identity links the account, as an operator has it do for a local account
            env = {
                **os.environ,
                "MAILLE_IDENTITY_DATABASE": identity_database,
                "MAILLE_IDENTITY_TENANT": TENANT,
                "MAILLE_IDENTITY_MONGODB_URL": identity.process.env["MAILLE_IDENTITY_MONGODB_URL"],
                "MAILLE_IDENTITY_KEYCLOAK_URL": keycloak_clients.server.url,
            }
            subprocess.run(
                [str(bin_of("maille-identity")), "link-account", username, ent_id],
                env=env,
                check=True,
                capture_output=True,
                timeout=120,
            )
        return public, identity, gateway, username

    return start


async def test_a_browser_signs_in_and_reaches_a_service_with_its_session(
    a_pupil: dict[str, Any], database_name: str, nats_server: NatsServer, signed_in_platform
) -> None:
    ent_id = a_pupil["_id"]
    before = await observatory_stream(nats_server)
    public, identity, gateway, username = signed_in_platform(database_name, ent_id=ent_id)
    me = f"{public}/api/identity/v1/me"

    # Without a session the route is refused, in the one error shape.
    browser = Browser()
    refused = browser.request("GET", me)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["www-authenticate"].startswith("Bearer")

    # /login → Keycloak's login page → credentials → back through /auth/callback → the page asked for.
    to_keycloak = browser.request("GET", f"{public}/login?next=/api/identity/v1/me")
    asked = parse_qs(urlsplit(to_keycloak.headers["location"]).query)
    assert asked["code_challenge_method"] == ["S256"] and asked["response_type"] == ["code"] and asked["nonce"]
    login_page = browser.go(to_keycloak.headers["location"])
    assert login_page.status_code == 200 and "kc-form-login" in login_page.text
    landed = browser.sign_in(login_page, username, PASSWORD)
    assert landed.status_code == 200, landed.text
    assert str(landed.url) == me
    assert landed.json()["id"] == ent_id and landed.json()["last_name"] == a_pupil["last_name"]
    gateway_cookies = browser.site_cookies(public)
    assert {"maille_session", "maille_csrf"} <= set(gateway_cookies)

    # The session cookie is httpOnly, Secure, SameSite; the CSRF cookie is readable by the page's scripts.
    flags = browser.set_cookie["maille_session"].lower()
    assert "httponly" in flags and "secure" in flags and "samesite=lax" in flags
    assert "httponly" not in browser.set_cookie["maille_csrf"].lower()
    # The landing page says who you are and what you can open.
    landing = browser.request("GET", f"{public}/")
    assert "Test User" in landing.text and "/api/identity/" in landing.text and "Se déconnecter" in landing.text

    # A state-changing request from the browser needs the CSRF token; with it, it reaches the service.
    forged = browser.request("POST", me, json={})
    assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]
    with_token = browser.request("POST", me, json={}, headers={"x-csrf-token": gateway_cookies["maille_csrf"]})
    assert with_token.status_code == 405  # identity's own answer: the gateway let it through

    # The sign-in was told to the observatory: the school and profile, never the person but by the month's pseudonym.
    signins, raw = await uses_told(nats_server, before, usage_pb2.KIND_SIGN_IN)
    assert len(signins) == 1 and signins[0].service == "connexion" and signins[0].detail == ""
    assert signins[0].pseudonym == pseudonym(USAGE_KEY.encode(), ent_id, signins[0].at_ms)
    assert ent_id.encode() not in raw and username.encode() not in raw
    # The portal says which screen was opened: with the CSRF token, a screen it has; else a clear refusal.
    uses = f"{public}/api/uses"
    assert browser.request("POST", uses, json={"service": "messagerie"}).status_code == 403
    csrf = {"x-csrf-token": gateway_cookies["maille_csrf"]}
    bad = browser.request("POST", uses, content=b"{not json", headers=csrf)
    assert bad.status_code == 400 and "not JSON" in bad.json()["detail"]
    unknown = browser.request("POST", uses, json={"service": "../etc"}, headers=csrf)
    assert unknown.status_code == 422 and "messagerie" in unknown.json()["detail"]
    assert browser.request("POST", uses, json={"service": "messagerie"}, headers=csrf).status_code == 204
    opened, _ = await uses_told(nats_server, before, usage_pb2.KIND_SERVICE_OPENED)
    assert [u.service for u in opened] == ["messagerie"] and opened[0].pseudonym == signins[0].pseudonym

    # Sign-out ends the session everywhere: the same cookie no longer works.
    session_cookie = gateway_cookies["maille_session"]
    out = browser.request("POST", f"{public}/logout", data={"csrf": gateway_cookies["maille_csrf"]})
    assert out.status_code == 303 and "/protocol/openid-connect/logout" in out.headers["location"]
    again = httpx.get(me, headers={"cookie": f"maille_session={session_cookie}"})
    assert again.status_code == 401


def test_session_cookie_flags_and_a_forged_callback(signed_in_platform, docstore_server) -> None:
    public, identity, gateway, username = signed_in_platform("test_unused_identity")
    browser = Browser()
    started = browser.request("GET", f"{public}/login?next=https://evil.example/steal")
    login_cookie = started.headers["set-cookie"].lower()
    assert "httponly" in login_cookie and "secure" in login_cookie and "samesite=lax" in login_cookie
    # The sign-in answer's state must match the browser that started it.
    state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    stranger = httpx.get(f"{public}/auth/callback", params={"code": "x", "state": state}, follow_redirects=False)
    # (a person's browser: a page in French that says what to do, not a JSON body)
    assert stranger.status_code == 400 and stranger.headers["content-type"].startswith("text/html")
    assert "La connexion n'a pas abouti" in html.unescape(stranger.text) and 'href="/login?next=%2F"' in stranger.text
    # The sign-in waits in the browser's cookie, sealed: a cookie of the right state but altered is refused too.
    sealed = browser.site_cookies(public)["maille_login"]
    assert sealed.startswith(f"{state}.") and len(sealed) > len(state) + 40
    altered = sealed[:-2] + ("AA" if not sealed.endswith("AA") else "BB")
    forged = httpx.get(
        f"{public}/auth/callback",
        params={"code": "x", "state": state},
        headers={"cookie": f"maille_login={altered}"},
        follow_redirects=False,
    )
    assert forged.status_code == 400 and "La connexion n'a pas abouti" in html.unescape(forged.text)
    # Completing it goes to the site's own home, never to another site named in ?next=.
    page = browser.go(started.headers["location"])
    landed = browser.sign_in(page, username, PASSWORD)
    assert str(landed.url) == f"{public}/" and "Bonjour" in landed.text


def test_an_expiring_access_token_is_refreshed_silently(signed_in_platform) -> None:
    public, identity, gateway, username = signed_in_platform("test_unused_identity", token_seconds=34)
    browser = Browser()
    browser.sign_in(browser.go(f"{public}/login?next=/api/echo/v1/x"), username, PASSWORD)
    first = browser.request("GET", f"{public}/api/echo/v1/x")
    assert first.status_code == 200
    time.sleep(5)  # the token now has under 30 s to live: the next request refreshes it first
    second = browser.request("GET", f"{public}/api/echo/v1/x")
    assert second.status_code == 200
    old, new = first.json()["headers"]["authorization"], second.json()["headers"]["authorization"]
    assert old != new and new.startswith("Bearer ")
    # The refreshed token is kept in the session (not fetched again on every request).
    assert browser.request("GET", f"{public}/api/echo/v1/x").json()["headers"]["authorization"] == new


def test_a_call_the_page_makes_on_its_own_never_refreshes_a_token(signed_in_platform) -> None:
    """An idle tab's own calls (X-Maille-Background) use the token while it lives and never refresh it: once it has
    expired they get a 401 — and the person's next action refreshes it as usual."""
    public, identity, gateway, username = signed_in_platform("test_unused_identity", token_seconds=34)
    browser = Browser()
    browser.sign_in(browser.go(f"{public}/login?next=/api/echo/v1/x"), username, PASSWORD)
    first = browser.request("GET", f"{public}/api/echo/v1/x")
    assert first.status_code == 200
    background = {"X-Maille-Background": "1"}
    time.sleep(5)  # under 30 s to live: a person's call would refresh it now, the page's own does not
    kept = browser.request("GET", f"{public}/api/echo/v1/x", headers=background)
    assert kept.status_code == 200
    assert kept.json()["headers"]["authorization"] == first.json()["headers"]["authorization"]
    time.sleep(25)  # within seconds of expiry: no longer sent on, and not refreshed either
    idle = browser.request("GET", f"{public}/api/echo/v1/x", headers=background)
    assert idle.status_code == 401 and idle.headers["content-type"] == "application/problem+json"
    acted = browser.request("GET", f"{public}/api/echo/v1/x")
    assert acted.status_code == 200
    assert acted.json()["headers"]["authorization"] != first.json()["headers"]["authorization"]


def test_a_directory_that_does_not_answer_ends_the_sign_in_on_a_french_page(signed_in_platform) -> None:
    """Identity (the directory) gone or stuck while someone signs in: a page saying so in French, with a way to
    try again to where they were going, a 503 with Retry-After — and no half-made session left behind."""
    public, identity, gateway, username = signed_in_platform("test_unused_identity")
    identity.stop()
    browser = Browser()
    page = browser.go(f"{public}/login?next=/api/identity/v1/me")
    failed = browser.sign_in(page, username, PASSWORD)
    assert failed.status_code == 503 and failed.headers["content-type"].startswith("text/html")
    assert failed.headers["retry-after"] == "5"
    assert (
        "L'annuaire de l'ENT ne répond pas pour le moment" in html.unescape(failed.text)
        and '<html lang="fr">' in failed.text
    )
    assert 'href="/login?next=%2Fapi%2Fidentity%2Fv1%2Fme">Réessayer</a>' in failed.text
    assert "maille_session" not in browser.site_cookies(public)


async def test_a_signed_in_page_hears_its_notifications_live(
    a_pupil: dict[str, Any], database_name: str, nats_server: NatsServer, signed_in_platform
) -> None:
    """`GET /live`: a person's open page hears, through the gateway, what the timeline publishes for them — and only
    a signed-in person's page; signing out ends the stream."""
    import nats

    from maille_contracts import live_subject

    public, identity, gateway, username = signed_in_platform(database_name, ent_id=a_pupil["_id"])
    refused = httpx.get(f"{public}/live", timeout=10)
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"

    browser = Browser()
    browser.sign_in(browser.go(f"{public}/login?next=/"), username, PASSWORD)
    cookies = browser.site_cookies(public)
    nc = await nats.connect(nats_server.url)
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=10)) as client:
            headers = {"cookie": f"maille_session={cookies['maille_session']}"}
            async with client.stream("GET", f"{public}/live", headers=headers) as stream:
                assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                assert (await anext(lines)).startswith("retry:")
                signal = {"event": "notification", "data": {"title": "Nouveau message de M. Dupont", "link": "/x"}}
                await nc.publish(live_subject("someone-else"), json.dumps(signal).encode())
                await nc.publish(live_subject(a_pupil["_id"]), json.dumps(signal).encode())
                heard = []
                async for line in lines:
                    heard.append(line)
                    if line.startswith("data:"):
                        break
                assert "event: notification" in heard
                assert json.loads(heard[-1][len("data: ") :]) == signal["data"]
                # Signing out ends the person's streams at once.
                csrf = browser.site_cookies(public)["maille_csrf"]
                browser.request("POST", f"{public}/logout", headers={"x-csrf-token": csrf})
                rest = [line async for line in lines]
                assert all(not line.startswith("data:") for line in rest)
        again = httpx.get(f"{public}/live", headers=headers, timeout=10)
        assert again.status_code == 401
    finally:
        await nc.close()
