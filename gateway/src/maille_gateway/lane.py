"""The fast lane: the platform's most common request, relayed inside the HTTP connection's own callbacks.

Nearly every request at the 8 a.m. peak is alike: a GET carrying a bearer token the gateway verified a
moment ago, for a service with an idle keep-alive connection, answered with a small body. Through the
general path (`proxy.Proxy`, an ASGI handler under uvicorn) such a request costs an ASGI task, a chain
of coroutines, event dictionaries and two writes for its answer — most of the gateway's time. The lane
does the same work — access rules, rate limit, the same headers both ways, request id and trace
context, metrics and the access line — in the protocol's callbacks, and answers in one write.

It takes only a request it can finish as the general path would, and decides before changing anything:
no token or one not verified yet, a refusal, a session cookie, a request body, a trace to be recorded, no
idle connection — all go the general path from the start. A request that goes off the common path
once sent is handed to the general path, which carries on from there: an answer that is large or
streamed is streamed back by it; a GET the upstream did not answer (connection closed, no answer in
time) is retried by it, the lane's attempt counted among its retries.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanContext, TraceFlags
from uvicorn.middleware.proxy_headers import _TrustedHosts
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from maille_gateway.live import LIVE_PATH, LiveStreams
from maille_gateway.proxy import (
    API_CSP,
    RESPONSE_DROPPED,
    connection_named,
    outgoing_headers,
    parse_traceparent,
    request_id_from,
    split_headers,
)
from maille_gateway.upstream import Relay, Response, Upstream, UpstreamError, UpstreamTimeout, _Connection

if TYPE_CHECKING:
    from maille_gateway.main import Gateway

log = logging.getLogger("maille.gateway")

SMALL_ANSWER = 64 * 1024  # answers up to this size (with a Content-Length) are held whole and sent in one write
STATUS_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, HTTPStatus(code).phrase.encode()) for code in map(int, HTTPStatus)}
NO_BODY = frozenset({204, 304})
LANE_CSP = b"content-security-policy: " + API_CSP + b"\r\n"
_FLAGS = {True: TraceFlags(TraceFlags.SAMPLED), False: TraceFlags(TraceFlags.DEFAULT)}


class _NoEvent:
    """What uvicorn's protocol sets on a request's cycle when data or a disconnect arrives: nothing waits on it here."""

    def set(self) -> None:
        pass


_NO_EVENT = _NoEvent()


class GatewayHttp(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, with the gateway's fast lane in front of its ASGI path.

    Two of uvicorn's per-request costs go too: the ASGI scope is made only for a request that takes the
    ASGI path, and idle keep-alive connections are closed by one sweep a second rather than a timer armed
    and cancelled around every request.
    """

    def __init__(
        self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        gateway = getattr(config, "app", None)
        self.lane: FastLane | None = getattr(gateway, "lane", None)
        self.live: LiveStreams | None = getattr(gateway, "live", None)
        self.streaming = False  # a live stream (live.py): what the client sends is not read as requests any more
        self.idle_since: float | None = None
        self.behind_proxy = False
        self.sampled = False  # the lane drew this request's new trace to be recorded

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.idle_since = self.loop.time()
        # From a trusted proxy (FORWARDED_ALLOW_IPS), the caller's address and scheme are read from its headers.
        self.behind_proxy = (
            self.lane is not None and self.client is not None and self.client[0] in self.lane.trusted_proxies
        )
        if not getattr(self.server_state, "maille_sweeping", False):  # one sweep per server
            self.server_state.maille_sweeping = True  # type: ignore[attr-defined]  # our mark on uvicorn's state
            _sweep_idle(self.loop, self.server_state.connections, self.timeout_keep_alive)

    def on_message_begin(self) -> None:
        self.sampled = False
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.scope = None  # type: ignore[assignment]

    def new_scope(self, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        """The ASGI scope of a request, as uvicorn makes it (path, method and query added later)."""
        return {
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "root_path": self.root_path,
            "headers": headers,
            "state": self.app_state.copy(),
        }

    def data_received(self, data: bytes) -> None:
        if not self.streaming:
            super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.streaming and self.live is not None:
            self.live.closed(self)
        super().connection_lost(exc)

    def on_body(self, body: bytes) -> None:
        if not self.streaming:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self.streaming:
            super().on_message_complete()

    def on_headers_complete(self) -> None:
        if (
            self.live is not None
            and self.url.partition(b"?")[0] == LIVE_PATH
            and self.parser.get_method() == b"GET"
            and (self.cycle is None or self.cycle.response_complete)
        ):
            self.live.open(self, next((value for name, value in self.headers if name == b"cookie"), None))
            return
        lane = self.lane
        if lane is not None and (self.cycle is None or self.cycle.response_complete) and lane.take(self):
            return
        self.scope = self.new_scope(self.headers)  # type: ignore[assignment]
        if self.sampled:
            self.scope["maille.sampled"] = True  # type: ignore[typeddict-unknown-key]  # an ASGI extension key
        super().on_headers_complete()

    def _unset_keepalive_if_required(self) -> None:
        self.idle_since = None

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self.idle_since = self.loop.time()


def _sweep_idle(loop: asyncio.AbstractEventLoop, connections: set[Any], timeout: float) -> None:
    """Once a second, close the keep-alive connections idle for longer than `timeout`."""

    def sweep() -> None:
        limit = loop.time() - timeout
        for protocol in list(connections):
            idle_since = getattr(protocol, "idle_since", None)  # (None for a request in hand or a live stream)
            if idle_since is not None and idle_since < limit and not protocol.transport.is_closing():
                protocol.transport.close()
        loop.call_later(1.0, sweep)

    loop.call_later(1.0, sweep)


class FastLane:
    """Decides which requests take the lane, and starts them."""

    def __init__(self, gateway: Gateway) -> None:
        self.proxy = gateway.proxy
        self.verifier = gateway.verifier
        self.policies = gateway.policies
        self.limiter = gateway.limiter
        self.upstreams = gateway.upstreams
        self._default_list: list[tuple[bytes, bytes]] | None = None
        self.trusted_proxies = _TrustedHosts(forwarded_allow_ips())
        self._default_bytes = b""

    def default_headers(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        """uvicorn's headers for every answer (its Date, a new list every second), as bytes."""
        if headers is not self._default_list:
            self._default_list = headers
            self._default_bytes = b"".join(b"%s: %s\r\n" % (name, value) for name, value in headers)
        return self._default_bytes

    def take(self, http: GatewayHttp) -> bool:
        """Start relaying the request whose headers just arrived; False (nothing changed) when it is not for the
        lane."""
        parser = http.parser
        if (
            parser.get_method() != b"GET"
            or parser.get_http_version() != "1.1"
            or http.expect_100_continue
            or parser.should_upgrade()
        ):
            return False
        raw_path, _, query = http.url.partition(b"?")
        if not raw_path.startswith(b"/api/") or b"%" in raw_path:
            return False
        end = raw_path.find(b"/", 5)
        upstream = self.upstreams.get(raw_path[5:end].decode("ascii", "replace")) if end > 5 else None
        if upstream is None:
            return False
        forwarded, authorization, _, sent_id, traceparent, content_length, _, chunked = split_headers(http.headers)
        if authorization is None or chunked or (content_length is not None and content_length != b"0"):
            return False
        # The lane records no span: a trace to be recorded (the caller's say, or drawn now) goes the general path.
        parent = parse_traceparent(traceparent)
        sampled = parent.trace_flags.sampled if parent else self.proxy.new_trace_sampled()
        if sampled and self.proxy.recording:
            http.sampled = parent is None  # drawn here: the general path records it, it does not draw again
            return False
        if authorization[:7].lower() != b"bearer ":
            return False
        token = authorization[7:].strip().decode("latin-1")
        principal = self.verifier.known(token)
        if principal is None:
            return False
        path = raw_path.decode("ascii")
        if self.policies.allows(path, principal) is not None:
            return False
        connection = upstream.lend()
        if connection is None:
            return False
        caller, rate = self.proxy.caller_key(principal, None)
        if self.limiter.take(caller, rate):
            upstream.give_back(connection)
            return False
        # Taken: from here on the lane answers, or hands over to the general path.
        rid = request_id_from(sent_id)
        ctx = SpanContext(
            parent.trace_id if parent else random.getrandbits(128),
            random.getrandbits(64),
            is_remote=False,
            trace_flags=_FLAGS[sampled],
        )
        client, scheme = (
            forwarded_by_proxy(http.headers, self.trusted_proxies, http.client, http.scheme)
            if http.behind_proxy
            else (http.client, http.scheme)
        )
        headers = outgoing_headers(forwarded, token, rid.encode(), ctx, client, scheme or "http")
        request = upstream.head_bytes("GET", http.url, headers)
        _LaneRequest(
            self,
            http,
            upstream,
            connection,
            (http.headers, path, raw_path, query),
            path,
            rid,
            caller,
            ctx,
            parser.should_keep_alive(),
            request,
        )
        return True


def forwarded_allow_ips() -> str:
    """The proxies trusted to say who the caller is: uvicorn's setting, read as uvicorn reads it."""
    return os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def forwarded_by_proxy(
    headers: list[tuple[bytes, bytes]], trusted: _TrustedHosts, client: tuple[str, int] | None, scheme: str | None
) -> tuple[tuple[str, int] | None, str | None]:
    """The caller's address and scheme as a trusted proxy gives them (what uvicorn's ProxyHeadersMiddleware does
    for the general path)."""
    proto: bytes | None = None
    forwarded_for: list[bytes] = []
    for name, value in headers:
        if name == b"x-forwarded-proto":
            proto = value
        elif name == b"x-forwarded-for":
            forwarded_for.append(value)
    if proto is not None:
        text = proto.decode("latin-1").strip()
        if text in ("http", "https"):
            scheme = text
    if forwarded_for:
        host, port = trusted.get_trusted_client_address(b", ".join(forwarded_for).decode("latin-1"))
        if host:
            client = (host, port)
    return client, scheme


class _LaneRequest(Relay):
    """One request in the lane: the cycle uvicorn's protocol sees, and the relay its upstream connection tells."""

    __slots__ = (
        "lane",
        "http",
        "upstream",
        "connection",
        "request_line",
        "path",
        "rid",
        "caller",
        "ctx",
        "keep_alive",
        "started",
        "timer",
        "response_complete",
        "disconnected",
        "message_event",
        "more_body",
        "body",
        "status",
        "headers",
    )

    def __init__(
        self,
        lane: FastLane,
        http: GatewayHttp,
        upstream: Upstream,
        connection: _Connection,
        request_line: tuple[list[tuple[bytes, bytes]], str, bytes, bytes],
        path: str,
        rid: str,
        caller: str,
        ctx: SpanContext,
        keep_alive: bool,
        request: bytes,
    ) -> None:
        # request_line: what the ASGI scope is made of should the request be handed over (headers, path, raw path,
        # query)
        self.lane, self.http, self.upstream, self.connection, self.request_line = (
            lane,
            http,
            upstream,
            connection,
            request_line,
        )
        self.path, self.rid, self.caller, self.ctx, self.keep_alive = path, rid, caller, ctx, keep_alive
        self.started = time.perf_counter()
        # The attributes uvicorn's protocol reads and sets on its current cycle.
        self.response_complete = False
        self.disconnected = False
        self.message_event = _NO_EVENT
        self.more_body = True
        self.body = bytearray()
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        http.cycle = self  # type: ignore[assignment]
        self.timer = http.loop.call_later(upstream.response_timeout, self._expire)
        connection.start_relay(self, request)

    # -- what the upstream connection tells ------------------------------------------------------

    def head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status, self.headers = status, headers
        if status in NO_BODY:
            return
        length = next((value for name, value in headers if name == b"content-length"), None)
        if length is None or not length.isdigit() or int(length) > SMALL_ANSWER or status < 200:
            self._stream_back()

    def done(self) -> None:
        self.timer.cancel()
        http, connection, status = self.http, self.connection, self.status
        chunks = connection._chunks
        body = b"".join(chunks) if len(chunks) != 1 else chunks[0]
        chunks.clear()
        connection._buffered = 0
        self.upstream.settle(connection, status)
        transport = http.transport
        if transport.is_closing():  # the caller left meanwhile
            self._finish(499)
            return
        out = [
            STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status,
            self.lane.default_headers(http.server_state.default_headers),
        ]
        dropped = RESPONSE_DROPPED
        for name, _ in self.headers:
            if name == b"connection":  # the headers it names are hop-by-hop too
                dropped = dropped | connection_named(self.headers)
                break
        for name, value in self.headers:
            if name not in dropped:
                out.append(b"%s: %s\r\n" % (name, value))
        out.append(LANE_CSP)
        out.append(b"x-request-id: %s\r\n" % self.rid.encode())
        if not self.keep_alive:
            out.append(b"connection: close\r\n")
        out.append(b"\r\n")
        out.append(body)
        transport.write(b"".join(out))
        self._finish(status)
        if not self.keep_alive:
            transport.close()
        http.on_response_complete()

    def failed(self, error: UpstreamError) -> None:
        self.timer.cancel()
        self.upstream.settle(self.connection, None)
        if self.http.transport.is_closing():
            self._finish(499)
            return
        log.info("fast lane: GET %s handed to the general path: %s", self.path, error)
        # The general path tries again (a GET may be repeated), counting this attempt among its retries — unless
        # the pooled connection broke before any answer (closed by the upstream just now), which it does not count
        # either.
        if isinstance(error, UpstreamTimeout):
            cycle = self._asgi_cycle("timeout")
        elif self.status:
            cycle = self._asgi_cycle("error")
        else:
            cycle = self._asgi_cycle(None, attempts=0)
        self.http._start_asgi_task(cycle, self.http.app)

    def _expire(self) -> None:
        connection = self.connection
        connection.relay = None
        connection.close()
        self.failed(
            UpstreamTimeout(
                f"{self.upstream.name} did not answer within {self.upstream.response_timeout:g}s", sent=True
            )
        )

    # -- handing over to the general path -------------------------------------------------------

    def _asgi_cycle(self, failure: str | None = None, attempts: int = 1) -> RequestResponseCycle:
        """A uvicorn cycle for this request, in the lane's place (the request had no body); `failure`: how the
        lane's attempt ended, when it did not."""
        http = self.http
        headers, path, raw_path, query = self.request_line
        scope = http.new_scope(headers)
        scope.update(
            {
                "method": "GET",
                "path": path,
                "raw_path": raw_path,
                "query_string": query,
                "maille.lane": True,
                "maille.attempts": attempts,
                "maille.lane_failure": failure,
            }
        )
        cycle = RequestResponseCycle(
            scope=scope,  # type: ignore[arg-type]  # an HTTP scope, built above
            transport=http.transport,
            flow=http.flow,
            logger=http.logger,
            access_logger=http.access_logger,
            access_log=False,
            default_headers=http.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=self.keep_alive,
            on_response=http.on_response_complete,
        )
        cycle.more_body = False
        if http.cycle is self:  # type: ignore[comparison-overlap]  # the lane stands in for uvicorn's cycle
            http.cycle = cycle
        self.response_complete = True  # the lane is done with it; the cycle answers now
        return cycle

    def _stream_back(self) -> None:
        """A large or streamed answer: the general path's streaming sends it, with flow control both ways."""
        self.timer.cancel()
        self.connection.relay = None
        self.upstream.count(self.status)
        response = Response(self.status, self.headers, self.connection, self.upstream)
        cycle = self._asgi_cycle()
        proxy = self.lane.proxy
        state: dict[str, Any] = {"status": self.status, "caller": self.caller, "started": False, "attempts": 1}

        async def run() -> None:
            try:
                await proxy.respond(cycle.send, response, self.rid.encode(), state)  # type: ignore[arg-type]
            except Exception as exc:  # the answer is under way: all that is left is to break off the connection
                log.warning("relay of GET %s broke off: %s", self.path, exc)
                self.http.transport.close()
            finally:
                self._finish(state["status"])

        task = self.http.loop.create_task(run())
        task.add_done_callback(self.http.tasks.discard)
        self.http.tasks.add(task)

    def _finish(self, status: int) -> None:
        self.response_complete = True
        self.lane.proxy.record(
            "GET",
            self.path,
            self.upstream.name,
            status,
            time.perf_counter() - self.started,
            self.caller,
            self.ctx,
            self.rid,
            lane=True,
        )
