"""The HTTP client every service uses (httpx over httpcore) searches no module path while it works: httpcore imports
`sniffio` at each lock and event it sets up, and a failed import is searched for again every time — a fifth of the
library's CPU while it synced PMB readers, until the kit declared sniffio (encode/httpcore discussion #1102)."""

from __future__ import annotations

import asyncio
import importlib.machinery
from typing import Any

import httpx

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_requests_search_no_module_path(monkeypatch: Any) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    searched: list[str] = []
    find_spec = importlib.machinery.PathFinder.find_spec

    def counting(name: str, *args: Any, **kwargs: Any) -> Any:
        searched.append(name)
        return find_spec(name, *args, **kwargs)

    try:
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(url)).text == "ok"  # what a first request imports, once
            monkeypatch.setattr(importlib.machinery.PathFinder, "find_spec", counting)
            for _ in range(20):
                assert (await client.get(url)).status_code == 200
    finally:
        server.close()
    assert searched == [], f"modules searched for at each request: {sorted(set(searched))}"
