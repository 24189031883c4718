"""The gateway's app and entry point.

`Gateway` is the ASGI app uvicorn serves: a request for `/api/<service>/…` of a configured service goes
straight to the proxy; everything else (health, sign-in, the landing page, the API document, unknown
routes) to the gateway's own FastAPI app, built by the kit like every service's.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import sys
import time
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from maille_gateway import __doc__ as description
from maille_gateway import __version__, portal
from maille_gateway.lane import FastLane, GatewayHttp
from maille_gateway.limits import RateLimiter
from maille_gateway.live import LiveStreams
from maille_gateway.policy import Policies
from maille_gateway.proxy import Proxy, send_problem
from maille_gateway.sessions import Sessions
from maille_gateway.settings import GatewaySettings
from maille_gateway.upstream import Upstreams
from maille_gateway.web import PAGE_STYLE_HASH
from maille_gateway.web import router as web_router
from maille_kit.app import Runtime, ServiceSpec, create_app, serve
from maille_kit.auth import TokenVerifier
from maille_kit.settings import load_settings

BACKCHANNEL_LOGOUT = "/auth/backchannel-logout"  # Keycloak's calls: not a person's sign-in


class Gateway:
    """The gateway's ASGI app."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.version = __version__
        self.state: dict[str, Any] = {}
        self.verifier = TokenVerifier(
            issuer=settings.auth_issuer, audience=settings.audience, jwks_url=settings.auth_jwks_url
        )
        self.sessions = Sessions(settings, self.verifier)
        self.policies = Policies(settings.public_paths, settings.policies)
        self.limiter = RateLimiter(burst_seconds=settings.rate_burst_seconds, share=settings.rate_share)
        self.upstreams = Upstreams(
            settings.routes,
            connect_timeout=settings.upstream_connect_timeout,
            response_timeout=settings.upstream_timeout,
            max_connections=settings.upstream_max_connections,
            failures_to_open=settings.circuit_failures,
            open_seconds=settings.circuit_open_seconds,
        )
        self.proxy = Proxy(settings, self.verifier, self.sessions, self.policies, self.limiter)
        self.lane = FastLane(self) if settings.fast_lane else None
        self.live = LiveStreams(self.sessions, live_seconds=settings.live_seconds)
        self.app: FastAPI = create_app(
            ServiceSpec(
                name="gateway",
                version=__version__,
                settings=settings,
                routers=[web_router, portal.router],
                uses_docstore=False,
                on_start=self._start,
                on_stop=self._stop,
                description=description or "",
            )
        )
        self.app.state.gateway = self
        issuer = urlsplit(settings.auth_issuer)
        self.page_policy = (
            f"default-src 'self'; style-src 'self' '{PAGE_STYLE_HASH}'; img-src 'self' data:; object-src 'none'; "
            f"base-uri 'none'; frame-ancestors 'none'; form-action 'self' {issuer.scheme}://{issuer.netloc}"
        ).encode()
        self.portal_policy = portal.policy(settings)
        self.app.state.token_verifier = self.verifier

    async def _start(self, runtime: Runtime) -> None:
        await self.sessions.start(runtime.bus)
        await self.live.start(runtime.bus.nc)
        # What start-up built lives as long as the process: out of the cycle collector's sight, and the
        # collector asked less often, so that its pauses do not land on requests (a request makes few cycles).
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)

    async def _stop(self, runtime: Runtime) -> None:
        await self.live.stop()
        await self.sessions.close()
        await self.upstreams.close()
        self.proxy.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith("/api/"):
                end = path.find("/", 5)
                upstream = self.upstreams.get(path[5:end]) if end > 5 else None
                if upstream is not None:
                    await self.proxy(scope, receive, send, upstream)
                    return
            elif (path == "/login" or path.startswith("/auth/")) and path != BACKCHANNEL_LOGOUT:
                # Each sign-in writes to NATS and calls Keycloak: so many per second from one address.
                wait = self.limiter.take("sign-in:" + (scope.get("client") or ("?",))[0], self.settings.rate_sign_in)
                if wait:
                    await send_problem(
                        send,
                        429,
                        "too many sign-ins from this address; try again in a moment",
                        instance=path,
                        headers=[(b"retry-after", str(max(1, round(wait))).encode())],
                    )
                    return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_policy(message: MutableMapping[str, Any]) -> None:
            # The gateway's own pages: their scripts, styles and forms from this site only (and Keycloak's, where a
            # sign-out form leads); an answer that already says its policy (the API docs) keeps it.
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not any(name == b"content-security-policy" for name, _ in headers):
                    headers.append((b"content-security-policy", self.page_policy))
            await send(message)

        await self.app(scope, receive, with_policy)


def app(settings: GatewaySettings | None = None) -> Gateway:
    """The gateway's ASGI app (a factory: `uvicorn --factory maille_gateway.main:app`)."""
    return Gateway(settings or load_settings(GatewaySettings))


def main() -> None:
    """Serve the gateway until SIGTERM: one process, or `MAILLE_GATEWAY_WORKERS` of them."""
    settings = load_settings(GatewaySettings)
    if settings.workers == 1:
        serve(app(settings), settings, http=GatewayHttp, headers=security_headers(settings))
        return
    sys.exit(_supervise(settings))


def security_headers(settings: GatewaySettings) -> list[tuple[str, str]]:
    """What every answer of the gateway carries: no content sniffing, no framing, no referrer to other sites, and
    HTTPS only from then on when the gateway is reached over HTTPS."""
    headers = [("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"), ("referrer-policy", "same-origin")]
    if settings.public_url.startswith("https://"):
        headers.append(("strict-transport-security", "max-age=31536000; includeSubDomains"))
    return headers


def _listener(settings: GatewaySettings) -> socket.socket:
    # Each worker has its own listening socket on the same port (SO_REUSEPORT): the kernel spreads the
    # connections evenly between them, where one shared socket lets the busiest worker take most.
    sock = socket.socket(socket.AF_INET6 if ":" in settings.http_host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.http_host, settings.http_port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _supervise(settings: GatewaySettings) -> int:
    """Run `workers` gateway processes, start again one that dies, pass SIGTERM on; the exit status."""
    children: dict[int, int] = {}  # pid -> worker number
    stopping = False

    def spawn(number: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker: its own listener, its own app, its own connections
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            # Each worker its own metrics: on the metrics port plus its number (a scrape must reach every one).
            mine = (
                settings.model_copy(update={"metrics_port": settings.metrics_port + number})
                if settings.metrics_port
                else settings
            )
            try:
                serve(
                    app(mine),
                    mine,
                    sockets=[_listener(settings)],
                    http=GatewayHttp,
                    headers=security_headers(settings),
                )
            except SystemExit as exc:
                os._exit(exc.code if isinstance(exc.code, int) else 1)
            os._exit(0)
        children[pid] = number

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for number in range(settings.workers):
        spawn(number)
    status = 0
    started = time.monotonic()
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        gone: int | None = children.pop(pid, None)
        if gone is None:
            continue
        code = os.waitstatus_to_exitcode(code)
        if stopping:
            continue
        if time.monotonic() - started < 10:  # dying at start (a port taken, a setting refused): give up
            stop(signal.SIGTERM, None)
            status = code or 3
            continue
        print(f"maille-gateway: worker {gone} (pid {pid}) exited with {code}; starting it again", file=sys.stderr)
        spawn(gone)
    return status
