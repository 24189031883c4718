"""The CPU of one request through the HTTP client every service uses (httpx over httpcore): 3,000 requests to a local
server answering at once, in the same process, on one connection — what the client itself costs, nothing else.

httpcore imports `sniffio` at each lock and event it sets up; where sniffio is missing (anyio no longer brings it),
each of those imports searches the whole module path again. The kit declares sniffio; to see the difference, run this
once in the project's environment and once after `uv pip uninstall sniffio` (then `uv sync` puts it back).

    .venv/bin/python bench/http_client.py [--requests 3000]

Results go to bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import time

import httpx

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def main(requests: int) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError, asyncio.CancelledError):
            pass
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    async with httpx.AsyncClient(timeout=5) as client:
        await client.get(url)
        began = time.process_time()
        for _ in range(requests):
            await client.get(url)
        spent = time.process_time() - began
    server.close()
    sniffio = "installed" if importlib.util.find_spec("sniffio") else "missing"
    print(f"sniffio {sniffio}: {spent / requests * 1e6:,.0f} µs of CPU per request ({requests:,} requests)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    asyncio.run(main(parser.parse_args().requests))
