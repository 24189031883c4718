"""The gateway's app and entry point.

`Gateway` is the ASGI app uvicorn serves: a request for `/api/<service>/…` of a configured service goes
straight to the proxy; everything else (health, sign-in, the landing page, the API document, unknown
routes) to the gateway's own FastAPI app, built by the kit like every service's.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from maille_gateway import __doc__ as description
from maille_gateway import __version__
from maille_gateway.limits import RateLimiter
from maille_gateway.policy import Policies
from maille_gateway.proxy import Proxy
from maille_gateway.sessions import Sessions
from maille_gateway.settings import GatewaySettings
from maille_gateway.upstream import Upstreams
from maille_gateway.web import router as web_router
from maille_kit.app import Runtime, ServiceSpec, create_app, load_settings, serve
from maille_kit.auth import TokenVerifier


class Gateway:
    """The gateway's ASGI app."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.version = __version__
        self.state: dict[str, Any] = {}
        self.verifier = TokenVerifier(issuer=settings.auth_issuer, audience=settings.auth_audience, jwks_url=settings.auth_jwks_url)
        self.sessions = Sessions(settings, self.verifier)
        self.policies = Policies(settings.public_paths, settings.policies)
        self.limiter = RateLimiter(burst_seconds=settings.rate_burst_seconds, share=settings.rate_share)
        self.upstreams = Upstreams(
            settings.routes, connect_timeout=settings.upstream_connect_timeout, response_timeout=settings.upstream_timeout,
            max_connections=settings.upstream_max_connections, failures_to_open=settings.circuit_failures,
            open_seconds=settings.circuit_open_seconds,
        )
        self.proxy = Proxy(settings, self.verifier, self.sessions, self.policies, self.limiter)
        self.app: FastAPI = create_app(ServiceSpec(
            name="gateway", version=__version__, settings=settings, routers=[web_router], uses_docstore=False,
            on_start=self._start, on_stop=self._stop, description=description or "",
        ))
        self.app.state.gateway = self
        self.app.state.token_verifier = self.verifier

    async def _start(self, runtime: Runtime) -> None:
        await self.sessions.start(runtime.bus)

    async def _stop(self, runtime: Runtime) -> None:
        await self.upstreams.close()
        self.proxy.access_log.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith("/api/"):
                end = path.find("/", 5)
                upstream = self.upstreams.get(path[5:end]) if end > 5 else None
                if upstream is not None:
                    await self.proxy(scope, receive, send, upstream)
                    return
        await self.app(scope, receive, send)


def app(settings: GatewaySettings | None = None) -> Gateway:
    """The gateway's ASGI app (a factory: `uvicorn --factory maille_gateway.main:app`)."""
    return Gateway(settings or load_settings(GatewaySettings))


def main() -> None:
    """Serve the gateway until SIGTERM: one process, or `MAILLE_GATEWAY_WORKERS` of them."""
    settings = load_settings(GatewaySettings)
    if settings.workers == 1:
        serve(app(settings), settings)  # type: ignore[arg-type]
        return
    uvicorn.run(
        "maille_gateway.main:app", factory=True, workers=settings.workers, host=settings.http_host, port=settings.http_port,
        log_config=None, access_log=False, server_header=False, timeout_graceful_shutdown=10,
    )
