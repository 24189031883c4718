"""Routing by path prefix: `/api/<name>/…` goes, streamed both ways, to the service named <name>."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from maille_kit.app import get_runtime
from maille_kit.problems import Problem

# Hop-by-hop headers (RFC 9110 §7.6.1) are the gateway's own business, not passed on.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host"}
)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

router = APIRouter()


@router.api_route("/api/{service}/{path:path}", methods=METHODS, include_in_schema=False)
async def proxy(service: str, path: str, request: Request) -> StreamingResponse:
    """Forward the request to the service and stream its answer back."""
    runtime = get_runtime(request)
    client: httpx.AsyncClient | None = runtime.state["upstreams"].get(service)
    if client is None:
        raise Problem(404, f"No service answers /api/{service}/.", title="Unknown route")
    headers = [(k, v) for k, v in request.headers.raw if k.decode("latin-1").lower() not in HOP_BY_HOP]
    has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
    upstream_request = client.build_request(
        request.method,
        httpx.URL(path=request.url.path, query=request.url.query.encode("latin-1")),
        headers=headers,
        content=request.stream() if has_body else None,
    )
    retry_after = str(runtime.settings.retry_after)
    try:
        response = await client.send(upstream_request, stream=True)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
        raise Problem(
            503, f"The {service} service is unavailable; try again shortly.", title="Service unavailable",
            headers={"Retry-After": retry_after}, service=service,
        ) from exc
    except httpx.TimeoutException as exc:
        raise Problem(504, f"The {service} service did not answer in time.", title="Gateway timeout", service=service) from exc
    response_headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}}
    if "content-length" in response.headers and "content-encoding" not in response.headers:
        response_headers["content-length"] = response.headers["content-length"]
    return StreamingResponse(
        response.aiter_raw(), status_code=response.status_code, headers=response_headers, background=BackgroundTask(response.aclose)
    )
