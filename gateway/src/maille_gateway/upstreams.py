"""The services behind the gateway: one pooled keep-alive HTTP client per upstream."""

from __future__ import annotations

import httpx

from maille_kit.http import http_client


class Upstreams:
    """The gateway's routes, each with its own connection pool."""

    def __init__(self, routes: dict[str, str], *, timeout: float, connect_timeout: float) -> None:
        self.clients = {
            name: http_client(base_url=url, timeout=timeout, connect_timeout=connect_timeout)
            for name, url in routes.items()
        }

    def get(self, name: str) -> httpx.AsyncClient | None:
        """The client of the upstream serving `/api/<name>/`, if there is one."""
        return self.clients.get(name)

    async def close(self) -> None:
        """Close every pool."""
        for client in self.clients.values():
            await client.aclose()
