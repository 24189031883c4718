"""Live streams: `GET /live`, a person's open page hearing at once of a new notification and of their unread count
(server-sent events), for as long as the page stays open.

Tens of thousands of pages stay open at once and nearly all are silent, so an open stream costs no task and no buffer
of its own: once the session is checked (one short task), the stream is its connection's protocol, filed under the
person it belongs to. The timeline publishes a person's signals on core NATS (`maille_contracts.live_subject`); each
gateway process subscribes once to them all and writes a signal straight to the connections of that person it holds.
One timer for all streams sends each a comment line every `LIVE_HEARTBEAT` seconds, a share of them each second
(proxies keep the connection open; no second holds them all), and ends the streams past their time (`live_seconds`,
with some spread): the browser's EventSource opens it again, which checks the session again — a signed-out session is
heard of at the latest then. A client that does not read its stream (a buffer past `SLOW_BYTES`) is cut off, never
buffered for."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import deque
from typing import TYPE_CHECKING, Any

from maille_contracts import LIVE_PREFIX, live_subject
from maille_kit.telemetry import observe

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from maille_gateway.sessions import Sessions

log = logging.getLogger("maille.gateway")

LIVE_PATH = b"/live"
LIVE_HEARTBEAT = 25.0
SLOW_BYTES = 64 * 1024
HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-store\r\n"
    b"x-accel-buffering: no\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n"
)
REFUSED = (
    b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/problem+json\r\ncache-control: no-store\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s"
)


class LiveStreams:
    """The open streams of one gateway process, by person (their live subject)."""

    def __init__(self, sessions: Sessions, *, live_seconds: float) -> None:
        self.sessions = sessions
        self.live_seconds = live_seconds
        self.by_subject: dict[str, set[Any]] = {}  # live subject -> the protocols streaming to that person
        self.ends: dict[Any, float] = {}  # protocol -> when its stream ends (loop time)
        self._round: deque[Any] = deque()  # the streams in turn for the heartbeat: a 25th of them each second
        self._subscription: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self._unobserve = observe(
            "maille.gateway.live.streams", lambda: [(len(self.ends), {})], description="live streams open"
        )

    async def start(self, nc: Any) -> None:
        self._subscription = await nc.subscribe(f"{LIVE_PREFIX}>", cb=self._heard)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(1.0, self._beat, loop)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._subscription is not None:
            try:
                await self._subscription.unsubscribe()
            except Exception as exc:  # NATS gone first
                log.debug("live subscription not ended: %s", exc)
        for protocol in list(self.ends):
            protocol.transport.close()
        self._unobserve()

    def open(self, protocol: Any, cookie: bytes | None) -> None:
        """A `GET /live` whose headers just arrived on `protocol`: its session checked (a short task), then the
        stream filed, or a 401."""
        protocol.idle_since = None  # not an idle keep-alive connection any more: the sweep leaves it
        protocol.streaming = True  # what its client sends from now on is not read as requests
        asyncio.get_running_loop().create_task(self._open(protocol, cookie))

    async def _open(self, protocol: Any, cookie: bytes | None) -> None:
        transport = protocol.transport
        try:
            session = await asyncio.wait_for(self.sessions.from_cookie(cookie), 5) if cookie else None
        except Exception as exc:  # NATS away: said as a refusal; the page tries again later
            log.warning("live stream refused: the session could not be read (%s)", exc)
            session = None
        if transport.is_closing():
            return
        if session is None or not session.person:
            body = json.dumps(
                {
                    "type": "/problems/unauthorized",
                    "title": "Unauthorized",
                    "status": 401,
                    "detail": "sign in to follow your notifications",
                    "instance": "/live",
                }
            ).encode()
            transport.write(REFUSED % (len(body), body))
            transport.close()
            return
        subject = live_subject(session.person)
        protocol.live_subject = subject
        self.by_subject.setdefault(subject, set()).add(protocol)
        loop = asyncio.get_running_loop()
        self.ends[protocol] = loop.time() + self.live_seconds * random.uniform(0.8, 1.0)
        self._round.append(protocol)
        transport.write(HEAD + b"retry: 3000\n: ouvert\n\n")

    def closed(self, protocol: Any) -> None:
        """The connection of a stream is gone."""
        self.ends.pop(protocol, None)
        subject = getattr(protocol, "live_subject", None)
        if subject is not None:
            held = self.by_subject.get(subject)
            if held is not None:
                held.discard(protocol)
                if not held:
                    del self.by_subject[subject]

    def end_person(self, person: str) -> None:
        """A sign-out: the person's streams on this process end now."""
        for protocol in list(self.by_subject.get(live_subject(person), ())):
            protocol.transport.close()

    async def _heard(self, msg: Msg) -> None:
        held = self.by_subject.get(msg.subject)
        if not held:
            return
        try:
            signal = json.loads(msg.data)
            event = str(signal["event"])
            data = json.dumps(signal["data"], ensure_ascii=False, separators=(",", ":"))
        except (ValueError, KeyError, TypeError):
            log.warning("a live signal that is not one was dropped")
            return
        frame = f"event: {event}\ndata: {data}\n\n".encode()
        for protocol in list(held):
            self._write(protocol, frame)

    def _write(self, protocol: Any, frame: bytes) -> None:
        transport = protocol.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() > SLOW_BYTES:
            transport.close()  # a client that does not read: cut off, not buffered for
            return
        transport.write(frame)

    def _beat(self, loop: asyncio.AbstractEventLoop) -> None:
        """Each second, a 25th of the streams: each gets its heartbeat every 25 s, and never all at once (20,000
        writes in one callback would hold the process for a tenth of a second)."""
        now = loop.time()
        for _ in range(min(len(self._round), -(-len(self._round) // int(LIVE_HEARTBEAT)))):
            protocol = self._round.popleft()
            end = self.ends.get(protocol)
            if end is None:
                continue  # closed since: leaves the round
            if end <= now:
                protocol.transport.close()  # the browser opens it again (and the session is checked again)
                continue
            self._write(protocol, b": \n\n")
            self._round.append(protocol)
        self._timer = loop.call_later(1.0, self._beat, loop)
