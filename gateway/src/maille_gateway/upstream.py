"""The services behind the gateway: an HTTP/1.1 keep-alive connection pool per upstream.

Built on asyncio protocols and the httptools parser (the one uvicorn uses) rather than a general
HTTP client: the gateway forwards every request of the platform, and a general client costs several
times more per request than the proxying itself. What it does:

- keeps up to `max_connections` connections per upstream open and reuses them (a connection goes back
  to the pool only once its response has been read to the end and the upstream did not ask to close);
- streams request bodies to the upstream (chunked when their length is unknown) and response bodies
  back, with flow control both ways, so that a large upload or download never sits in memory;
- bounds the time to connect and the time to the response's headers;
- a circuit breaker: after `failures_to_open` failures in a row the upstream is not tried for
  `open_seconds`, then one request probes it (callers get 503 at once meanwhile, not a timeout each).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

CHUNK_HIGH_WATER = 256 * 1024  # bytes of response body buffered before the upstream is paused


class UpstreamError(Exception):
    """The upstream could not be reached or broke off; `sent` says whether the request may have reached it."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer in time."""


class CircuitOpen(UpstreamError):
    """The upstream failed repeatedly and is not tried for a while."""


class _Slots:
    """The connections an upstream may have in use: taken at once when one is free, else waited for in turn."""

    def __init__(self, limit: int) -> None:
        self.free = limit
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        """Take a slot if one is free now (and nobody waits for one)."""
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        return False

    async def take(self) -> None:
        if self.try_take():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as the wait was cancelled: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes straight to the next in line
                return
        self.free += 1


class Relay:
    """What a connection tells the gateway's fast lane (`lane.py`) about the response to its request."""

    def head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """The response's status and headers are in (its body follows)."""

    def done(self) -> None:
        """The whole response is in."""

    def failed(self, error: UpstreamError) -> None:
        """The upstream broke off or answered something unreadable."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = time.monotonic()
        self._head: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._complete = False
        self._wakeup: asyncio.Future[None] | None = None
        self._paused_reading = False
        self._drain: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self.keep_alive = True
        self.relay: Relay | None = None  # set while the fast lane waits on this connection

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"malformed response: {exc}", sent=True))
            self.close()

    def eof_received(self) -> bool | None:
        return False  # close

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._complete:
            self._fail(UpstreamError("the upstream closed the connection", sent=True))
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(UpstreamError("the upstream closed the connection", sent=True))

    def pause_writing(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # -- httptools callbacks ----------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        if self.relay is not None:
            self.relay.head(self.parser.get_status_code(), self._headers)
        elif self._head is not None and not self._head.done():
            self._head.set_result((self.parser.get_status_code(), self._headers))

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > CHUNK_HIGH_WATER and not self._paused_reading and self.transport is not None:
            self._paused_reading = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self._complete = True
        if self.relay is not None:
            relay, self.relay = self.relay, None
            relay.done()
            return
        self._wake()

    # -- used by the pool -------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _fail(self, error: Exception) -> None:
        self._error = error
        if self.relay is not None:
            relay, self.relay = self.relay, None
            relay.failed(error if isinstance(error, UpstreamError) else UpstreamError(str(error), sent=True))
            return
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        self._wake()

    def start(self) -> asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]]:
        """Get ready for a new response."""
        self._reset()
        self._head = asyncio.get_running_loop().create_future()
        return self._head

    def start_relay(self, relay: Relay, request: bytes) -> None:
        """Send a whole request (head, no body) and tell `relay` how the response goes (the fast lane)."""
        self._reset()
        self._head = None
        self.relay = relay
        self.transport.write(request)  # type: ignore[union-attr]

    def _reset(self) -> None:
        self._headers = []
        self._chunks.clear()
        self._buffered = 0
        self._complete = False
        self._error = None
        self.relay = None

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def drain(self) -> None:
        if self._drain is not None and not self._drain.done():
            await self._drain

    async def body(self) -> AsyncIterator[bytes]:
        """The response body as it arrives."""
        while True:
            if self._chunks:
                data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
                self._chunks.clear()
                self._buffered = 0
                if self._paused_reading and self.transport is not None and not self.closed:
                    self._paused_reading = False
                    self.transport.resume_reading()
                yield data
                continue
            if self._complete:
                return
            if self._error is not None:
                raise self._error
            self._wakeup = asyncio.get_running_loop().create_future()
            await self._wakeup
            self._wakeup = None

    @property
    def complete(self) -> bool:
        return self._complete

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


@dataclass
class Response:
    """An upstream's answer: status and headers now, the body as it is read; `release` when done."""

    status: int
    headers: list[tuple[bytes, bytes]]
    _connection: _Connection
    _upstream: Upstream
    _released: bool = False

    def whole(self) -> bytes | None:
        """The whole body when it has all arrived already (most answers are small), else None."""
        connection = self._connection
        if not connection.complete:
            return None
        chunks = connection._chunks
        data = b"".join(chunks) if len(chunks) != 1 else chunks[0]
        chunks.clear()
        connection._buffered = 0
        return data

    def body(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        return self._connection.body()

    def release(self) -> None:
        """Give the connection back (when the body was read to the end) or close it."""
        if self._released:
            return
        self._released = True
        self._upstream._release(self._connection)


class Upstream:
    """One service: its pool of connections and its circuit breaker."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        connect_timeout: float = 2.0,
        response_timeout: float = 30.0,
        max_connections: int = 256,
        keepalive_seconds: float = 30.0,
        failures_to_open: int = 5,
        open_seconds: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream {name}: {url!r} is not an http(s) URL")
        self.name = name
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = parts.scheme == "https"
        self.host_header = parts.netloc.encode("latin-1")
        self.connect_timeout = connect_timeout
        self.response_timeout = response_timeout
        self.keepalive_seconds = keepalive_seconds
        self.failures_to_open = failures_to_open
        self.open_seconds = open_seconds
        self._idle: deque[_Connection] = deque()
        self._slots = _Slots(max_connections)
        self._failures = 0
        self._open_until = 0.0
        self._probing = False

    # -- circuit breaker --------------------------------------------------------------------------

    @property
    def circuit_open(self) -> bool:
        return self._failures >= self.failures_to_open and (time.monotonic() < self._open_until or self._probing)

    def _admit(self) -> bool:
        """Whether a request may go to the upstream now; marks the half-open probe."""
        if self._failures < self.failures_to_open:
            return True
        if time.monotonic() < self._open_until or self._probing:
            return False
        self._probing = True  # half-open: this request tries the upstream for everyone
        return True

    def _succeeded(self) -> None:
        self._failures = 0
        self._probing = False

    def _failed(self) -> None:
        self._failures += 1
        self._probing = False
        if self._failures >= self.failures_to_open:
            self._open_until = time.monotonic() + self.open_seconds

    # -- connections ------------------------------------------------------------------------------

    async def _connection(self) -> tuple[_Connection, bool]:
        """A connection: an idle pooled one (True) or a new one (False)."""
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < self.keepalive_seconds:
                return connection, True
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(_Connection, self.host, self.port, ssl=self.ssl or None), self.connect_timeout
            )
        except TimeoutError:
            raise UpstreamTimeout(
                f"no connection to {self.name} within {self.connect_timeout:g}s", sent=False
            ) from None
        except OSError as exc:
            raise UpstreamError(f"no connection to {self.name}: {exc.strerror or exc}", sent=False) from None
        return connection, False

    def lend(self) -> _Connection | None:
        """For the fast lane: an idle pooled connection, with its slot, when one is there now and the circuit
        is closed; None otherwise (the caller then takes the general path). `settle` gives it back."""
        if self._failures >= self.failures_to_open or not self._idle or not self._slots.try_take():
            return None
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < self.keepalive_seconds:
                return connection
            connection.close()
        self._slots.release()
        return None

    def settle(self, connection: _Connection, status: int | None) -> None:
        """A lent connection is done with: the circuit breaker counts the outcome (None: it failed)."""
        self.count(status)
        self._release(connection)

    def give_back(self, connection: _Connection) -> None:
        """A lent connection not used after all."""
        self._release(connection)

    def count(self, status: int | None) -> None:
        """The circuit breaker counts an answer's status (None: no answer)."""
        if status is None or status in (502, 503, 504):
            self._failed()
        else:
            self._succeeded()

    def head_bytes(self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], framing: bytes = b"") -> bytes:
        """The request line and headers (`framing`: the body's length or chunking header, if it has a body)."""
        lines = [b"%s %s HTTP/1.1\r\nhost: %s\r\n" % (method.encode("ascii"), target, self.host_header)]
        for name, value in headers:
            lines.append(b"%s: %s\r\n" % (name, value))
        lines.append(framing)
        lines.append(b"\r\n")
        return b"".join(lines)

    def _release(self, connection: _Connection) -> None:
        self._slots.release()
        if connection.closed or not connection.complete or not connection.keep_alive:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)

    async def request(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterator[bytes] | bytes | None,
        *,
        content_length: int | None,
    ) -> Response:
        """Send one request; the response once its headers are in (its body streams after)."""
        if not self._admit():
            raise CircuitOpen(f"{self.name} failed repeatedly; not tried for a while", sent=False)
        await self._slots.take()
        connection: _Connection | None = None
        try:
            # A pooled connection may have been closed by the upstream just now: on a failure before
            # any answer, one new connection is tried (nothing of the request was processed).
            for attempt in range(2):
                connection, pooled = await self._connection()
                head = connection.start()
                # A timer rather than asyncio.wait_for: it costs a fraction, on every request.
                timer = asyncio.get_running_loop().call_later(self.response_timeout, self._expire, head)
                try:
                    await self._send(connection, method, target, headers, body, content_length)
                    status, response_headers = await head
                    break
                except UpstreamTimeout:
                    connection.close()
                    raise
                except UpstreamError as exc:
                    connection.close()
                    streamed = body is not None and not isinstance(body, bytes)
                    if pooled and attempt == 0 and not streamed:
                        continue
                    raise UpstreamError(str(exc), sent=True) from None
                finally:
                    timer.cancel()
            assert connection is not None
            if method == "HEAD":
                # A HEAD response has no body whatever its headers say: do not wait for one.
                connection._complete = True
                connection.keep_alive = False
        except BaseException as exc:
            self._slots.release()
            if connection is not None:
                connection.close()
            if isinstance(exc, UpstreamError) and not isinstance(exc, CircuitOpen):
                self._failed()
            elif self._probing:
                self._probing = False
            raise
        if status in (502, 503, 504):
            self._failed()
        else:
            self._succeeded()
        return Response(status, response_headers, connection, self)

    async def fetch(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None = None,
        *,
        limit: int = 1 << 20,
    ) -> tuple[int, bytes]:
        """One whole exchange, the answer read to its end: (status, body). For the gateway's own small calls
        (the token endpoint, identity at sign-in), on the same lean connections as the relay."""
        response = await self.request(
            method, target, headers, body, content_length=len(body) if body is not None else None
        )
        try:
            data = response.whole()
            if data is None:
                parts, size = [], 0
                async for chunk in response.body():
                    size += len(chunk)
                    if size > limit:
                        raise UpstreamError(f"{self.name} answered more than {limit} bytes", sent=True)
                    parts.append(chunk)
                data = b"".join(parts)
            return response.status, data
        finally:
            response.release()

    def _expire(self, head: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]]) -> None:
        if not head.done():
            head.set_exception(
                UpstreamTimeout(f"{self.name} did not answer within {self.response_timeout:g}s", sent=True)
            )

    async def _send(
        self,
        connection: _Connection,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterator[bytes] | bytes | None,
        content_length: int | None,
    ) -> None:
        if isinstance(body, bytes):
            content_length = len(body)
        chunked = body is not None and content_length is None
        framing = b""
        if chunked:
            framing = b"transfer-encoding: chunked\r\n"
        elif content_length is not None and (body is not None or method in ("POST", "PUT", "PATCH")):
            framing = b"content-length: %d\r\n" % content_length
        head = self.head_bytes(method, target, headers, framing)
        connection.write(head + body if isinstance(body, bytes) else head)
        if body is None or isinstance(body, bytes):
            return
        async for chunk in body:
            if not chunk:
                continue
            if connection.closed:
                raise UpstreamError("the upstream closed the connection", sent=True)
            connection.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            await connection.drain()
        if chunked:
            connection.write(b"0\r\n\r\n")

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


class Upstreams:
    """The gateway's routes: `/api/<name>/…` → the upstream named <name>."""

    def __init__(self, routes: dict[str, str], **options: float | int) -> None:
        self.by_name = {name: Upstream(name, url, **options) for name, url in routes.items()}  # type: ignore[arg-type]

    def get(self, name: str) -> Upstream | None:
        return self.by_name.get(name)

    async def close(self) -> None:
        for upstream in self.by_name.values():
            await upstream.close()
