"""The request middleware every service and the gateway run: request id, W3C trace context, one
access-log line and RED metrics per request."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maille_kit.logging import request_id_var
from maille_kit.problems import unexpected_response
from maille_kit.telemetry import REQUEST_SECONDS, extract_context, meter, tracer

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("maille.access")
SLOW_SECONDS = 1.0  # a request this slow is logged even when only problems are


class RequestContextMiddleware:
    """Pure ASGI (so bodies stream through untouched)."""

    def __init__(
        self, app: ASGIApp, *, quiet_paths: tuple[str, ...] = ("/healthz", "/readyz"), log_every: bool = True
    ) -> None:
        self.app = app
        self.quiet_paths = quiet_paths
        # Every request, or only the problems (an error answer, or a slow one): behind the gateway, which logs every
        # request at the edge, a service's line for each of them is the same fact written twice.
        self.log_every = log_every
        self._duration = meter().create_histogram(
            "http.server.request.duration",
            unit="s",
            description="duration of HTTP requests",
            explicit_bucket_boundaries_advisory=REQUEST_SECONDS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        sent_id = headers.get(REQUEST_ID_HEADER, "")
        request_id = sent_id if _REQUEST_ID.match(sent_id) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        method, path = scope["method"], scope["path"]
        status = 500
        response_started = False
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message["headers"] = [*kept, (b"x-request-id", request_id.encode())]
            await send(message)

        span_name = f"{method} {path}"
        with tracer().start_as_current_span(
            span_name,
            context=extract_context(headers),
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        ) as span:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                # Answered here, inside the request's context, so that the 500 carries its request id.
                if response_started:
                    raise
                span.record_exception(exc)
                response = unexpected_response(exc, method, path)
                await response(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = _route_of(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.response.status_code", status)
                span.set_attribute("http.route", route)
                self._duration.record(
                    elapsed, {"http.request.method": method, "http.route": route, "http.response.status_code": status}
                )
                if path not in self.quiet_paths and (self.log_every or status >= 400 or elapsed >= SLOW_SECONDS):
                    access_log.info(
                        "%s %s %d",
                        method,
                        path,
                        status,
                        extra={
                            "method": method,
                            "path": path,
                            "route": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                        },
                    )
                request_id_var.reset(token)


def _route_of(scope: MutableMapping[str, Any]) -> str:
    # The route template, not the path, so that metrics do not grow one series per id.
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
