"""Access-log lines: the gateway writes one for every request at the edge; a service behind it (`access_log:
problems`, its default) only for what an operator looks for — an error answer, or a slow one."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from maille_kit import middleware
from maille_kit.middleware import RequestContextMiddleware
from maille_kit.settings import ServiceSettings


async def answer(request: Request) -> PlainTextResponse:
    if request.query_params.get("slow"):
        await asyncio.sleep(float(request.query_params["slow"]))
    return PlainTextResponse("ok", status_code=int(request.query_params.get("status", "200")))


def logged(log_every: bool, caplog: pytest.LogCaptureFixture, *queries: str) -> list[str]:
    app = RequestContextMiddleware(Starlette(routes=[Route("/x", answer)]), log_every=log_every)

    async def calls() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=10) as c:
            for query in queries:
                await c.get(f"/x?{query}")

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="maille.access"):
        asyncio.run(calls())
    return [r.getMessage() for r in caplog.records if r.name == "maille.access"]


def test_a_service_logs_only_problems_and_the_edge_logs_everything(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(middleware, "SLOW_SECONDS", 0.2)
    queries = ("status=200", "status=404", "status=503", "slow=0.3")
    assert logged(False, caplog, *queries) == ["GET /x 404", "GET /x 503", "GET /x 200"]  # the last one: slow
    assert logged(True, caplog, *queries) == ["GET /x 200", "GET /x 404", "GET /x 503", "GET /x 200"]
    assert ServiceSettings.model_fields["access_log"].default == "problems"
