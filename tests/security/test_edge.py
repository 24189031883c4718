"""The public edge: sign-ins and unknown tokens throttled per address before they cost NATS writes or
signature checks, hop-by-hop headers named by Connection never passed on, security headers on every page,
the API docs served from the gateway itself. Real gateway processes, NATS and Keycloak."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import nats
import pytest

from maille_devstack.processes import NatsServer, ServiceProcess, free_port
from maille_devstack.pytest_plugin import KeycloakClients

pytestmark = pytest.mark.keycloak


@pytest.fixture
def echo() -> Iterator[str]:
    """A service that answers with the headers it received, and a header its own Connection names."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "keep-alive, X-Internal-Hop")
            self.send_header("X-Internal-Hop", "the service's own, for the next hop only")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def gateway(
    service_factory: Callable[..., ServiceProcess], keycloak_clients: KeycloakClients, echo: str
) -> Callable[..., str]:
    def start(**env: str) -> str:
        port = free_port()
        service_factory(
            "gateway",
            port=port,
            env={
                "MAILLE_GATEWAY_AUTH_ISSUER": keycloak_clients.issuer,
                "MAILLE_GATEWAY_ROUTES": json.dumps({"echo": echo}),
                "MAILLE_GATEWAY_PUBLIC_URL": f"http://localhost:{port}",
                **{f"MAILLE_GATEWAY_{k}": v for k, v in env.items()},
            },
        )
        return f"http://localhost:{port}"

    return start


def test_sign_ins_are_throttled_per_address_and_leave_nothing_on_the_server(gateway, nats_server: NatsServer) -> None:
    url = gateway(RATE_SIGN_IN="1", RATE_BURST_SECONDS="5")
    answers = [httpx.get(f"{url}/login", follow_redirects=False) for _ in range(12)]
    assert [a.status_code for a in answers[:5]] == [302] * 5  # a burst of five goes
    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) >= 6 and int(refused[0].headers["retry-after"]) >= 1
    assert refused[0].headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{url}/auth/choose", follow_redirects=False).status_code == 429  # /auth/* shares the budget
    # A sign-in started waits in its browser's sealed cookie: a flood of sign-ins never finished fills nothing here.
    assert all("maille_login=" in a.headers["set-cookie"] for a in answers[:5])

    async def streams() -> list[str]:
        nc = await nats.connect(nats_server.url)
        try:
            return [info.config.name for info in await nc.jetstream().streams_info()]
        finally:
            await nc.close()

    assert [name for name in asyncio.run(streams()) if "login" in name] == []


def _forged_token(n: int, kid: str) -> str:
    """A token that looks like the realm's (its key id) but that the realm never signed."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': kid})}.{part({'sub': f'x{n}', 'exp': 4102444800})}.{'A' * 342}"


def test_signature_checks_of_new_tokens_are_throttled_per_address(gateway, keycloak_clients: KeycloakClients) -> None:
    url = gateway(RATE_NEW_TOKENS="2", RATE_BURST_SECONDS="2")
    keys = httpx.get(f"{keycloak_clients.issuer}/protocol/openid-connect/certs").json()["keys"]
    kid = next(k["kid"] for k in keys if k.get("alg") == "RS256")
    answers = [
        httpx.get(f"{url}/api/echo/v1/x", headers={"Authorization": f"Bearer {_forged_token(n, kid)}"})
        for n in range(20)
    ]
    statuses = [a.status_code for a in answers]
    assert statuses[:4] == [401] * 4  # checked, and refused for what they are
    assert statuses.count(429) >= 12  # the rest not even checked


def test_headers_named_by_connection_are_not_passed_on(gateway, keycloak_clients: KeycloakClients) -> None:
    url = gateway()
    token = keycloak_clients.token(*keycloak_clients.make())
    answer = httpx.get(
        f"{url}/api/echo/v1/x",
        headers={
            "Authorization": f"Bearer {token}",
            "Connection": "keep-alive, X-Caller-Hop",
            "X-Caller-Hop": "for the gateway only",
            "X-Kept": "end to end",
        },
    )
    assert answer.status_code == 200, answer.text
    received = answer.json()
    assert "x-caller-hop" not in received and received["x-kept"] == "end to end"
    assert "x-internal-hop" not in answer.headers  # nor what the service named in its own Connection header


def test_every_page_carries_security_headers(gateway, keycloak_clients: KeycloakClients) -> None:
    url = gateway()
    page = httpx.get(f"{url}/")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in page.headers  # plain HTTP here
    api = httpx.get(
        f"{url}/api/echo/v1/x", headers={"Authorization": f"Bearer {keycloak_clients.token(*keycloak_clients.make())}"}
    )
    assert "sandbox" in api.headers["content-security-policy"] and api.headers["x-content-type-options"] == "nosniff"
    behind_tls = gateway(PUBLIC_URL="https://ent.example.org")
    assert httpx.get(f"{behind_tls}/healthz").headers["strict-transport-security"].startswith("max-age=")


def test_the_api_docs_need_nothing_but_the_gateway(gateway) -> None:
    url = gateway()
    page = httpx.get(f"{url}/api/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources  # nothing from a CDN
    for source in sources:
        asset = httpx.get(f"{url}{source}")
        assert asset.status_code == 200 and len(asset.content) > 20, source
    assert "SwaggerUIBundle" in httpx.get(f"{url}/api/docs/assets/swagger-ui-bundle.js").text
    assert (
        "script-src" not in page.headers["content-security-policy"]
        or "unsafe-inline" not in page.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    )
