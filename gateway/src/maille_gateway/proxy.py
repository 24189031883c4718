"""The proxy: every `/api/<service>/…` request, from the caller to the service and back.

A plain ASGI handler, not a FastAPI route: it runs for every request of the platform, so it does in one
pass what a stack of middleware would do in several — request id, trace context, the caller's identity
(bearer token or browser session), access rules, rate limit, body limits, forwarding with retries, one
access-log line and the request's metrics.

What reaches a service: the request with its own headers, minus hop-by-hop ones, cookies (the session
cookie is the gateway's business) and any `x-forwarded-*` the caller sent; plus `Authorization: Bearer`
with the caller's access token (a browser session's, or the API client's own), which the service
verifies itself — a service reached without the gateway still refuses a request without a valid token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, MutableMapping, Sequence
from http import HTTPStatus
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from starlette.types import Receive, Scope, Send

from maille_gateway.limits import RateLimiter
from maille_gateway.policy import Policies
from maille_gateway.sessions import Session, Sessions
from maille_gateway.settings import GatewaySettings
from maille_gateway.upstream import CircuitOpen, Response, Upstream, UpstreamError, UpstreamTimeout
from maille_kit.auth import Principal, TokenVerifier
from maille_kit.logging import AccessLog, request_id_var
from maille_kit.problems import PROBLEM_JSON, Problem, type_of
from maille_kit.telemetry import REQUEST_SECONDS, meter

log = logging.getLogger("maille.gateway")

# Hop-by-hop headers (RFC 9110 §7.6.1), and what the gateway sets itself.
DROPPED = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"cookie",
        b"authorization",
        b"x-request-id",
        b"traceparent",
        b"content-length",
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-csrf-token",
    }
)
# Sent by the portal with the calls it makes on its own (not on a person's action): they never refresh a token.
BACKGROUND = b"x-maille-background"
# The gateway's own Date (uvicorn's) replaces the service's: one Date per answer.
RESPONSE_DROPPED = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"x-request-id",
        b"set-cookie",
        b"server",
        b"date",
        b"content-security-policy",
    }
)
# What a service answers is data, never a page of this site: nothing in it runs, nothing frames it (an HTML
# attachment opened in the browser stays inert).
API_CSP = b"default-src 'none'; frame-ancestors 'none'; sandbox"
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
SAFE = IDEMPOTENT
# Requests done are recorded (metrics, access lines) together, in small batches: one loop over many costs less
# than one call each, and a small batch keeps the pause it makes in the event loop short.
RECORD_EVERY = 0.02  # seconds at most before a request is recorded
RECORD_BATCH = 64  # requests recorded together at most
BUFFERED_BODY = 64 * 1024  # bodies up to this size are read whole, so that they can be sent again
_REQUEST_ID_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class _SlowClient(Exception):
    pass


def request_id_from(sent: bytes | None) -> str:
    if sent and len(sent) <= 128 and all(c in _REQUEST_ID_CHARS for c in sent):
        return sent.decode("ascii")
    # Request, trace and span ids need to be unique, not secret: the PRNG (as OpenTelemetry's own id
    # generator does) spares a system call each.
    return f"{random.getrandbits(128):032x}"


def parse_traceparent(value: bytes | None) -> SpanContext | None:
    # W3C trace context: version-traceid-parentid-flags; an invalid header starts a new trace.
    if not value or len(value) < 55:
        return None
    try:
        version, trace_id, span_id, flags = value.decode("ascii").split("-")[:4]
        context = SpanContext(
            int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(int(flags, 16) & 1)
        )
    except ValueError:
        return None
    return context if version != "ff" and context.is_valid else None


class Proxy:
    """Forwards a request to its upstream on behalf of its caller."""

    def __init__(
        self,
        settings: GatewaySettings,
        verifier: TokenVerifier,
        sessions: Sessions,
        policies: Policies,
        limiter: RateLimiter,
    ) -> None:
        self.settings = settings
        self.verifier = verifier
        self.sessions = sessions
        self.policies = policies
        self.limiter = limiter
        self.retry_after = str(settings.retry_after).encode()
        self._duration = meter().create_histogram(
            "http.server.request.duration",
            unit="s",
            description="duration of HTTP requests",
            explicit_bucket_boundaries_advisory=REQUEST_SECONDS,
        )
        self._tracer = trace.get_tracer("maille.gateway")
        # Spans are recorded when a collector takes them (and the trace is sampled); otherwise the trace is only
        # carried on (the caller's trace id kept, a new span id for this hop), which costs a fraction of a span.
        self.recording = settings.otlp_endpoint is not None
        self.access_log = AccessLog("gateway")
        self._attributes: dict[tuple[str, str, int], dict[str, Any]] = {}
        self._done: list[tuple[Any, ...]] = []
        self._record_timer: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send, upstream: Upstream) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        forwarded, authorization, cookie, sent_id, traceparent, content_length, csrf, chunked = split_headers(
            scope["headers"]
        )
        request_id = request_id_from(sent_id)
        id_token = request_id_var.set(request_id)
        parent = parse_traceparent(traceparent)
        # A caller's trace is recorded when the caller says so; a new one, for `trace_sample_ratio` of them (or
        # when the fast lane drew it and handed it over for that).
        sampled = (
            parent.trace_flags.sampled if parent else bool(scope.get("maille.sampled")) or self.new_trace_sampled()
        )
        recorded = self.recording and sampled
        if recorded:
            span: trace.Span = self._tracer.start_span(
                f"{method} /api/{upstream.name}/",
                context=trace.set_span_in_context(NonRecordingSpan(parent)) if parent else None,
                kind=trace.SpanKind.SERVER,
                attributes={"http.request.method": method, "url.path": path},
            )
        else:
            span = carried_span(parent, sampled)
        # started: an answer is under way; attempts: made already by the fast lane before it handed over
        state: dict[str, Any] = {
            "status": 500,
            "caller": None,
            "started": False,
            "attempts": scope.get("maille.attempts", 0),
        }
        try:
            with trace.use_span(span, end_on_exit=False):
                await self._handle(
                    scope,
                    receive,
                    send,
                    upstream,
                    method,
                    path,
                    forwarded,
                    authorization,
                    cookie,
                    csrf,
                    content_length,
                    chunked,
                    request_id,
                    span,
                    state,
                )
        except Exception as exc:
            if state["started"]:  # the answer is under way: all that is left is to break off the connection
                log.warning("relay of %s %s broke off: %s", method, path, exc)
                raise
            log.error("unexpected error relaying %s %s", method, path, exc_info=exc)
            state["status"] = 502
            await send_problem(
                send,
                502,
                f"the gateway could not relay this request to {upstream.name}",
                instance=path,
                request_id=request_id,
                headers=[(b"x-request-id", request_id.encode())],
            )
        finally:
            status = state["status"]
            if recorded:
                span.set_attribute("http.response.status_code", status)
                span.end()
            self.record(
                method,
                path,
                upstream.name,
                status,
                time.perf_counter() - started,
                state["caller"],
                span.get_span_context(),
                request_id,
            )
            request_id_var.reset(id_token)

    def new_trace_sampled(self) -> bool:
        """Whether a trace that starts at the gateway is to be recorded (`trace_sample_ratio`)."""
        ratio = self.settings.trace_sample_ratio
        return ratio >= 1.0 or random.random() < ratio

    def record(
        self,
        method: str,
        path: str,
        upstream: str,
        status: int,
        elapsed: float,
        caller: str | None,
        ctx: SpanContext,
        request_id: str,
        *,
        lane: bool = False,
    ) -> None:
        """One request's metrics and access line, recorded with the others of the moment (every `RECORD_EVERY` s)."""
        self._done.append(
            (method, path, upstream, status, elapsed, caller, ctx.trace_id, ctx.span_id, request_id, lane)
        )
        if self._record_timer is None:
            try:
                self._record_timer = asyncio.get_running_loop().call_later(RECORD_EVERY, self.flush_records)
            except RuntimeError:  # no loop: now
                self.flush_records()
        elif len(self._done) >= RECORD_BATCH:
            self.flush_records()

    def flush_records(self) -> None:
        """Record the requests done since the last time: metrics, then access lines (one loop: cheaper than one at a
        time)."""
        if self._record_timer is not None:
            self._record_timer.cancel()
            self._record_timer = None
        done, self._done = self._done, []
        record, access, cache = self._duration.record, self.access_log.request, self._attributes
        for method, path, upstream, status, elapsed, caller, trace_id, span_id, request_id, lane in done:
            route = f"/api/{upstream}/"
            key = (method, upstream, status)
            attributes = cache.get(key)
            if attributes is None:  # one dictionary per kind of request, not one per request (and a bounded number)
                attributes = {"http.request.method": method, "http.route": route, "http.response.status_code": status}
                if len(cache) < 1000:
                    cache[key] = attributes
            record(elapsed, attributes)
            access(
                method=method,
                path=path,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                caller=caller,
                upstream=upstream,
                request_id=request_id,
                trace_id=trace_id,
                span_id=span_id,
                lane=lane,
            )

    def close(self) -> None:
        """Record what is left, and write the last access lines."""
        self.flush_records()
        self.access_log.close()

    def caller_key(self, principal: Principal, session: Session | None) -> tuple[str, float]:
        """Who a request counts against for rate limits, and their rate."""
        person = principal.person_id or (principal.subject if session is not None else None)
        if person is not None:
            return "p:" + person, self.settings.rate_person
        return "c:" + (principal.client_id or principal.subject), self.settings.rate_client

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        upstream: Upstream,
        method: str,
        path: str,
        forwarded: list[tuple[bytes, bytes]],
        authorization: bytes | None,
        cookie: bytes | None,
        csrf: bytes | None,
        content_length: bytes | None,
        chunked: bool,
        request_id: str,
        span: trace.Span,
        state: dict[str, Any],
    ) -> None:
        rid = request_id.encode()

        async def problem(
            status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = (), **extensions: Any
        ) -> None:
            state["status"] = status
            state["started"] = True
            await send_problem(
                send,
                status,
                detail,
                instance=path,
                request_id=request_id,
                headers=[*headers, (b"x-request-id", rid)],
                **extensions,
            )

        async def body_failed(exc: Exception) -> None:
            # The body, read before or while forwarding it: too large, too slow, or the caller gone.
            if isinstance(exc, _BodyTooLarge):
                await problem(413, f"the request body is larger than {self.settings.max_body_bytes} bytes")
            elif isinstance(exc, _SlowClient):
                await problem(408, f"the request body stopped arriving for {self.settings.body_read_timeout:g}s")
            else:
                state["status"] = 499

        # Who is calling.
        principal: Principal | None = None
        token: str | None = None
        session: Session | None = None
        try:
            if authorization is not None:
                scheme, _, value = authorization.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not value.strip():
                    raise Problem(
                        401,
                        "the Authorization header must be 'Bearer <token>'",
                        headers={"WWW-Authenticate": 'Bearer realm="maille", error="invalid_request"'},
                    )
                token = value.strip()
                principal = self.verifier.known(token)
                if principal is None:
                    # A token not seen yet costs a signature check: each address may have only so many checked.
                    wait = self.limiter.take(
                        "new-token:" + (scope.get("client") or ("?",))[0], self.settings.rate_new_tokens
                    )
                    if wait:
                        raise Problem(
                            429,
                            "too many new tokens from this address; slow down",
                            headers={"Retry-After": str(max(1, round(wait)))},
                        )
                    principal = await self.verifier.verify(token)
            elif cookie is not None:
                session = await self.sessions.from_cookie(cookie)
                if session is not None:
                    # A page's own background call (a count kept fresh, a stream) never keeps a session alive:
                    # only what the person does refreshes its token.
                    acting = not any(name == BACKGROUND for name, _ in forwarded)
                    token = await self.sessions.access_token(session, acting=acting)
                    principal = await self.verifier.verify(token) if token else None
                    if principal is None:
                        session = None
        except Problem as exc:
            await problem(
                exc.status, exc.detail or exc.title, [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
            )
            return
        if principal is None:
            if not self.policies.is_public(path):
                await problem(
                    401,
                    "sign in, or send a bearer token, to use this route",
                    [(b"www-authenticate", b'Bearer realm="maille"')],
                )
                return
            rate_key, rate = "ip:" + (scope.get("client") or ("?",))[0], self.settings.rate_anonymous
        else:
            refused = self.policies.allows(path, principal)
            if refused is not None:
                await problem(403, refused)
                return
            rate_key, rate = self.caller_key(principal, session)
            state["caller"] = rate_key
        # A request the fast lane handed over was counted there already.
        wait = 0.0 if scope.get("maille.lane") else self.limiter.take(rate_key, rate)
        if wait:
            await problem(429, "too many requests; slow down", [(b"retry-after", str(max(1, round(wait))).encode())])
            return
        # A browser's state-changing request must carry its session's CSRF token (a bearer call cannot be forged).
        if session is not None and method not in SAFE and (csrf is None or not session.csrf_matches(csrf)):
            await problem(403, "missing or wrong X-CSRF-Token header (take it from the csrf cookie)")
            return
        # The body: refused at once when announced too large; small ones read whole (so that a retry can send
        # them again), large ones streamed.
        length: int | None = None
        if content_length is not None:
            try:
                length = int(content_length)
            except ValueError:
                await problem(400, "the Content-Length header is not a number")
                return
            if length > self.settings.max_body_bytes:
                await problem(413, f"the request body is larger than {self.settings.max_body_bytes} bytes")
                return
        body: bytes | AsyncIterator[bytes] | None = None
        try:
            if length is not None and length <= BUFFERED_BODY:
                body = await self._read_all(receive) if length else None
            elif length is not None or chunked:
                body = self._stream(receive)
        except (_BodyTooLarge, _SlowClient, _ClientGone) as exc:
            await body_failed(exc)
            return
        # Forward.
        headers = outgoing_headers(
            forwarded, token, rid, span.get_span_context(), scope.get("client"), scope.get("scheme", "http")
        )
        target = scope.get("raw_path") or path.encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        attempts = 1 + (self.settings.upstream_retries if method in IDEMPOTENT else 0) - state["attempts"]
        response: Response | None = None
        if attempts <= 0:  # the fast lane's attempt was the last one allowed: its failure is the answer
            if scope.get("maille.lane_failure") == "timeout":
                await problem(504, f"the {upstream.name} service did not answer in time", service=upstream.name)
                return
            attempts = 0
        for attempt in range(attempts):
            try:
                response = await upstream.request(method, target, headers, body, content_length=length)
                break
            except (_BodyTooLarge, _SlowClient, _ClientGone) as exc:
                await body_failed(exc)
                return
            except CircuitOpen:
                break
            except UpstreamTimeout as exc:
                if attempt + 1 < attempts:
                    continue
                log.warning("upstream %s: %s", upstream.name, exc)
                await problem(504, f"the {upstream.name} service did not answer in time", service=upstream.name)
                return
            except UpstreamError as exc:
                if attempt + 1 < attempts and not isinstance(body, AsyncIterator):
                    await asyncio.sleep(0.05 * (attempt + 1))
                    continue
                log.warning("upstream %s: %s", upstream.name, exc)
                break
        if response is None:
            await problem(
                503,
                f"the {upstream.name} service is unavailable; try again shortly",
                [(b"retry-after", self.retry_after)],
                service=upstream.name,
            )
            return
        await self.respond(send, response, rid, state)

    async def respond(self, send: Send, response: Response, rid: bytes, state: dict[str, Any]) -> None:
        """The upstream's answer back to the caller, streamed; the connection given back at the end."""
        state["status"] = response.status
        dropped = RESPONSE_DROPPED | connection_named(response.headers)
        out = [(name, value) for name, value in response.headers if name not in dropped]
        out.append((b"content-security-policy", API_CSP))
        out.append((b"x-request-id", rid))
        state["started"] = True
        try:
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            whole = response.whole()
            if whole is not None:  # the usual small answer, already here in full: one send
                await send({"type": "http.response.body", "body": whole, "more_body": False})
                return
            pending: bytes | None = None
            async for chunk in response.body():
                if pending is not None:
                    await send({"type": "http.response.body", "body": pending, "more_body": True})
                pending = chunk
            await send({"type": "http.response.body", "body": pending or b"", "more_body": False})
        finally:
            response.release()

    async def _next(self, receive: Receive) -> MutableMapping[str, Any]:
        try:
            message = await asyncio.wait_for(receive(), self.settings.body_read_timeout)
        except TimeoutError:
            raise _SlowClient from None
        if message["type"] == "http.disconnect":
            raise _ClientGone
        return message

    async def _read_all(self, receive: Receive) -> bytes:
        return b"".join([chunk async for chunk in self._stream(receive)])

    async def _stream(self, receive: Receive) -> AsyncIterator[bytes]:
        size = 0
        while True:
            message = await self._next(receive)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.settings.max_body_bytes:
                raise _BodyTooLarge
            yield chunk
            if not message.get("more_body", False):
                return


def split_headers(
    headers: list[tuple[bytes, bytes]],
) -> tuple[
    list[tuple[bytes, bytes]], bytes | None, bytes | None, bytes | None, bytes | None, bytes | None, bytes | None, bool
]:
    """A request's headers: those forwarded as they are, then authorization, cookie, x-request-id,
    traceparent, content-length, x-csrf-token, and whether the body is chunked."""
    kept: dict[bytes, bytes] = {}  # the dropped ones, by name (a name sent twice: its last value)
    forwarded: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name in DROPPED:
            kept[name] = value
        else:
            forwarded.append((name, value))
    connection = kept.get(b"connection")
    if connection is not None:  # headers the caller named in Connection are hop-by-hop too (RFC 9110 §7.6.1)
        named = {token.strip().lower() for token in connection.split(b",")} - {b"close", b"keep-alive"}
        forwarded = [(name, value) for name, value in forwarded if name not in named]
        for name in named & {b"authorization", b"cookie", b"x-csrf-token"}:
            kept.pop(name, None)
    authorization, cookie, csrf = kept.get(b"authorization"), kept.get(b"cookie"), kept.get(b"x-csrf-token")
    sent_id, traceparent, content_length = (
        kept.get(b"x-request-id"),
        kept.get(b"traceparent"),
        kept.get(b"content-length"),
    )
    chunked = b"transfer-encoding" in kept
    return forwarded, authorization, cookie, sent_id, traceparent, content_length, csrf, chunked


def connection_named(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The header names an answer's Connection header names (hop-by-hop: never passed on)."""
    named: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            named |= {token.strip().lower() for token in value.split(b",")}
    return frozenset(named)


_FLAGS = {True: TraceFlags(TraceFlags.SAMPLED), False: TraceFlags(TraceFlags.DEFAULT)}


def carried_span(parent: SpanContext | None, sampled: bool) -> NonRecordingSpan:
    """This hop of the caller's trace when the gateway records no span: the trace id kept (or a new one), a new
    span id, and whether the trace is to be recorded passed on to the services."""
    return NonRecordingSpan(
        SpanContext(
            parent.trace_id if parent else random.getrandbits(128),
            random.getrandbits(64),
            is_remote=False,
            trace_flags=_FLAGS[sampled],
        )
    )


def outgoing_headers(
    forwarded: list[tuple[bytes, bytes]],
    token: str | None,
    rid: bytes,
    ctx: SpanContext,
    client: tuple[str, int] | None,
    scheme: str,
) -> list[tuple[bytes, bytes]]:
    """What reaches the service: the caller's own headers (`forwarded`, extended in place) and the gateway's."""
    headers = forwarded
    if token is not None:
        headers.append((b"authorization", b"Bearer " + token.encode()))
    headers.append((b"x-request-id", rid))
    headers.append((b"traceparent", b"00-%032x-%016x-%02x" % (ctx.trace_id, ctx.span_id, ctx.trace_flags)))
    if client:
        headers.append((b"x-forwarded-for", client[0].encode()))
    headers.append((b"x-forwarded-proto", scheme.encode()))
    return headers


async def send_problem(
    send: Send,
    status: int,
    detail: str,
    *,
    instance: str,
    request_id: str | None = None,
    headers: Sequence[tuple[bytes, bytes]] = (),
    **extensions: Any,
) -> None:
    """Answer with a problem document straight from ASGI (the proxy's errors)."""
    document: dict[str, Any] = {
        "type": type_of(status),
        "title": HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error",
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if request_id:
        document["request_id"] = request_id
    document.update(extensions)
    body = json.dumps(document, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
