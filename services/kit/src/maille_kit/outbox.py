"""The outbox: events are written to the service's own database beside the change that caused them,
then relayed to JetStream until JetStream has acknowledged each one.

Nothing is lost while NATS is away: an event leaves the outbox only once JetStream holds it. An event
sent twice (the acknowledgement was lost, or two replicas relayed the same batch) carries its id in
`Nats-Msg-Id`, so JetStream drops the copy within the stream's de-duplication window; consumers drop
any later copy by event id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bson import Binary
from google.protobuf.message import Message
from maille.events.v1.envelope_pb2 import Envelope
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from maille_kit.bus import Bus
from maille_kit.events import make_envelope
from maille_kit.telemetry import inject_headers, meter

log = logging.getLogger("maille.outbox")

OUTBOX = "outbox"


class Outbox:
    """A service's outbox and its relay."""

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        bus: Bus,
        *,
        source: str,
        batch_size: int = 1000,
        ack_timeout: float = 5.0,
        poll_interval: float = 1.0,
    ) -> None:
        self.collection = db[OUTBOX]
        self.bus = bus
        self.source = source
        self.batch_size = batch_size
        self.ack_timeout = ack_timeout
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        counter = meter().create_counter("maille.outbox.relayed", description="events JetStream acknowledged")
        self._relayed = counter
        self._failures = meter().create_counter("maille.outbox.relay_failures", description="relay rounds that failed")

    async def publish(
        self, *, type: str, tenant: str, payload: Message, session: AsyncClientSession | None = None
    ) -> str:
        """Write one event to the outbox (in `session`, beside the change, when given); its id."""
        envelope = make_envelope(type=type, tenant=tenant, source=self.source, payload=payload)
        await self.add([envelope], session=session)
        return envelope.id

    async def add(self, envelopes: Sequence[Envelope], *, session: AsyncClientSession | None = None) -> None:
        """Write events to the outbox; the relay sends them as soon as it can."""
        if not envelopes:
            return
        headers = inject_headers({})
        now = datetime.now(UTC)
        docs = [
            {"_id": e.id, "subject": e.type, "data": Binary(e.SerializeToString()), "headers": headers, "created_at": now}
            for e in envelopes
        ]
        await self.collection.insert_many(docs, ordered=True, session=session)
        self._wake.set()

    async def pending(self) -> int:
        """How many events wait to be relayed."""
        return await self.collection.count_documents({})

    def start(self) -> None:
        """Start relaying in the background."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.source}")

    async def stop(self, *, drain_timeout: float = 5.0) -> None:
        """Relay what can be relayed within `drain_timeout`, then stop; the rest waits in the outbox."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=drain_timeout)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def relay_once(self) -> int:
        """Send one batch of waiting events in order; how many JetStream acknowledged."""
        docs = await self.collection.find({}, sort=[("_id", 1)], limit=self.batch_size).to_list()
        if not docs:
            return 0
        js = self.bus.js
        futures: list[asyncio.Future[Any]] = []
        try:
            for doc in docs:
                headers = {**doc.get("headers", {}), "Nats-Msg-Id": doc["_id"]}
                futures.append(await js.publish_async(doc["subject"], bytes(doc["data"]), headers=headers))
            done, waiting = await asyncio.wait(futures, timeout=self.ack_timeout) if futures else (set(), set())
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()
        acked = [
            doc["_id"]
            for doc, future in zip(docs, futures)
            if future.done() and not future.cancelled() and future.exception() is None
        ]
        if acked:
            await self.collection.delete_many({"_id": {"$in": acked}})
            self._relayed.add(len(acked))
        if len(acked) < len(docs):
            failed = next(
                (f.exception() for f in futures if f.done() and not f.cancelled() and f.exception() is not None), None
            )
            raise RelayError(f"{len(docs) - len(acked)} of {len(docs)} events not acknowledged: {failed or 'timed out'}")
        return len(acked)

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            self._wake.clear()  # an event added while this round runs wakes the next one
            try:
                sent = await self.relay_once()
                backoff = 0.1
            except Exception as exc:  # NATS away, docstore away: keep the events, try again
                self._failures.add(1)
                log.warning("outbox relay failed, retrying in %.1fs: %s", backoff, exc)
                if self._stopping:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if sent == self.batch_size:
                continue  # more may be waiting
            if self._stopping:
                return
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
            except TimeoutError:
                pass


class RelayError(RuntimeError):
    """Some events of a batch were not acknowledged by JetStream; they stay in the outbox."""
