"""Fixtures for the gateway's tests: an echoing upstream, a token issuer of the test's own (for tokens
Keycloak will not mint: expired, not yet valid, signed by a withdrawn key), and a gateway in front."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from maille_devstack.processes import ServiceProcess


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@dataclass
class Echo:
    """An upstream that answers every request with what it received (method, path, headers, body size)."""

    url: str
    server: _Server
    behaviour: dict[str, Any] = field(default_factory=dict)


def _echo_handler(echo_ref: list[Echo]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            echo = echo_ref[0]
            received = 0
            if "chunked" in self.headers.get("transfer-encoding", ""):
                while True:
                    size = int(self.rfile.readline().strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    received += len(self.rfile.read(size))
                    self.rfile.readline()
            elif self.headers.get("content-length"):
                received = len(self.rfile.read(int(self.headers["content-length"])))
            echo.behaviour["seen"] = echo.behaviour.get("seen", 0) + 1
            echo.behaviour.setdefault("paths", []).append(self.path)
            if echo.behaviour.get("drop", 0) > 0:  # closes the connection without answering
                echo.behaviour["drop"] -= 1
                self.close_connection = True
                return
            delay = echo.behaviour.get("delay", 0)
            if delay:
                time.sleep(delay)
            if self.path.startswith("/api/echo/v1/big"):  # a large answer, streamed in chunks
                size = int(self.path.rsplit("/", 1)[1])
                self.send_response(200)
                self.send_header("content-type", "application/octet-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                block = b"x" * 65536
                left = size
                while left:
                    part = block[: min(left, len(block))]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    left -= len(part)
                self.wfile.write(b"0\r\n\r\n")
                return
            body = json.dumps(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "received": received,
                }
            ).encode()
            status = echo.behaviour.get("status", 200)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except BrokenPipeError:  # the gateway gave up waiting (timeout tests)
                pass

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    return Handler


@pytest.fixture
def echo() -> Iterator[Echo]:
    ref: list[Echo] = []
    server = _Server(("127.0.0.1", 0), _echo_handler(ref))
    echo = Echo(url=f"http://127.0.0.1:{server.server_address[1]}", server=server)
    ref.append(echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield echo
    server.shutdown()


@dataclass
class Issuer:
    """A token issuer of the test's own: its keys published as a JWKS the gateway fetches."""

    url: str
    keys: list[RSAKey]
    server: _Server

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/test"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks"

    def rotate(self, *, withdraw_old: bool = False) -> None:
        """A new signing key; the old one stays published unless withdrawn."""
        new = RSAKey.generate_key(2048, parameters={"kid": f"key-{len(self.keys) + 1}", "use": "sig", "alg": "RS256"})
        self.keys = [new] if withdraw_old else [new, *self.keys]

    def token(
        self,
        *,
        key: RSAKey | None = None,
        lifetime: int = 300,
        not_before: int = 0,
        audience: str = "maille",
        issuer: str | None = None,
        roles: tuple[str, ...] = (),
        subject: str = "client-1",
        **claims: Any,
    ) -> str:
        now = int(time.time())
        key = key or self.keys[0]
        body = {
            "iss": issuer or self.issuer,
            "aud": [audience],
            "sub": subject,
            "azp": subject,
            "iat": now,
            "exp": now + lifetime,
            "realm_access": {"roles": list(roles)},
            **claims,
        }
        if not_before:
            body["nbf"] = now + not_before
        return jwt.encode({"alg": "RS256", "kid": key.kid}, body, key)


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    ref: list[Issuer] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"keys": [k.as_dict(private=False) for k in ref[0].keys]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = _Server(("127.0.0.1", 0), Handler)
    first = RSAKey.generate_key(2048, parameters={"kid": "key-1", "use": "sig", "alg": "RS256"})
    found = Issuer(url=f"http://127.0.0.1:{server.server_address[1]}", keys=[first], server=server)
    ref.append(found)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield found
    server.shutdown()


@pytest.fixture
def gateway(
    service_factory: Callable[..., ServiceProcess], echo: Echo, issuer: Issuer
) -> Callable[..., ServiceProcess]:
    """A gateway routing /api/echo/ to the echoing upstream, trusting the test's issuer."""

    def start(raw_env: dict[str, str] | None = None, **settings: str) -> ServiceProcess:
        env = {
            **(raw_env or {}),
            "MAILLE_GATEWAY_ROUTES": json.dumps({"echo": echo.url}),
            "MAILLE_GATEWAY_AUTH_ISSUER": issuer.issuer,
            "MAILLE_GATEWAY_AUTH_JWKS_URL": issuer.jwks_url,
        }
        env |= {f"MAILLE_GATEWAY_{k.upper()}": v for k, v in settings.items()}
        return service_factory("gateway", env=env)

    return start
