"""The one HTTP client factory: pooled keep-alive connections, timeouts, W3C trace context and the
request id carried to whoever is called."""

from __future__ import annotations

import httpx

from maille_kit.logging import request_id_var
from maille_kit.telemetry import inject_headers


async def _carry_context(request: httpx.Request) -> None:
    carried: dict[str, str] = {}
    inject_headers(carried)
    request.headers.update(carried)
    request_id = request_id_var.get()
    if request_id and "x-request-id" not in request.headers:
        request.headers["x-request-id"] = request_id


def http_client(
    *,
    base_url: str = "",
    timeout: float = 10.0,
    connect_timeout: float = 2.0,
    max_connections: int = 100,
    keepalive: int = 20,
    **kwargs: object,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` with Maille's defaults."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=keepalive),
        event_hooks={"request": [_carry_context]},
        **kwargs,  # type: ignore[arg-type]
    )
