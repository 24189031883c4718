"""The outbox: events are written to the service's own database beside the change that caused them,
then relayed to JetStream until JetStream has acknowledged each one.

Nothing is lost while NATS is away: an event leaves the outbox only once JetStream holds it. An event
sent twice (an acknowledgement was lost, two replicas relayed the same event) carries its id in
`Nats-Msg-Id`, so JetStream drops the copy within the stream's de-duplication window; consumers drop
any later copy by event id.

Two things keep it fast on a docstore where every write is a round trip:
- concurrent `publish` calls are written together (one `insert_many` for all the events waiting), and
  each call returns once its event is stored;
- the relay sends what was just written from memory and reads the outbox collection only to sweep up
  what is left there (after a failure, or from before a restart).
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
Doc = dict[str, Any]


class RelayError(RuntimeError):
    """Some events of a batch were not acknowledged by JetStream; they stay in the outbox."""


class Outbox:
    """A service's outbox, its group writer and its relay."""

    def __init__(
        self,
        db: AsyncDatabase[Doc],
        bus: Bus,
        *,
        source: str,
        batch_size: int = 1000,
        ack_timeout: float = 5.0,
        sweep_interval: float = 5.0,
    ) -> None:
        self.collection = db[OUTBOX]
        self.bus = bus
        self.source = source
        self.batch_size = batch_size
        self.ack_timeout = ack_timeout
        self.sweep_interval = sweep_interval
        self._to_write: list[tuple[Doc, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._to_relay: list[Doc] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._sweep_due = True  # what an earlier run left behind
        self._relayed = meter().create_counter("maille.outbox.relayed", description="events JetStream acknowledged")
        self._failures = meter().create_counter("maille.outbox.relay_failures", description="relay rounds that failed")

    async def publish(self, *, type: str, tenant: str, payload: Message, session: AsyncClientSession | None = None) -> str:
        """Write one event to the outbox (in `session`, beside the change, when given); its id once stored."""
        envelope = make_envelope(type=type, tenant=tenant, source=self.source, payload=payload)
        await self.add([envelope], session=session)
        return envelope.id

    async def add(self, envelopes: Sequence[Envelope], *, session: AsyncClientSession | None = None) -> None:
        """Write events to the outbox; returns once they are stored. The relay sends them as soon as it can."""
        if not envelopes:
            return
        headers = inject_headers({})
        now = datetime.now(UTC)
        docs = [
            {"_id": e.id, "subject": e.type, "data": Binary(e.SerializeToString()), "headers": headers, "created_at": now}
            for e in envelopes
        ]
        if session is not None:
            # Part of the caller's transaction: written now, relayed once the sweep finds it committed.
            await self.collection.insert_many(docs, ordered=True, session=session)
            self._sweep_due = True
            self._wake.set()
            return
        loop = asyncio.get_running_loop()
        futures = []
        for doc in docs:
            future: asyncio.Future[None] = loop.create_future()
            self._to_write.append((doc, future))
            futures.append(future)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting(), name=f"outbox-writer-{self.source}")
        await asyncio.gather(*futures)

    async def _write_waiting(self) -> None:
        # Everything that arrived while the previous write ran goes in the next one.
        while self._to_write:
            batch, self._to_write = self._to_write[: self.batch_size], self._to_write[self.batch_size :]
            docs = [doc for doc, _ in batch]
            try:
                await self.collection.insert_many(docs, ordered=True)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            self._to_relay.extend(docs)
            self._wake.set()

    async def pending(self) -> int:
        """How many events wait in the outbox."""
        return await self.collection.count_documents({})

    def start(self) -> None:
        """Start relaying in the background."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.source}")

    async def stop(self, *, drain_timeout: float = 5.0) -> None:
        """Relay what can be relayed within `drain_timeout`, then stop; the rest waits in the outbox."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
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
        """Send one batch in order, from memory or swept from the outbox; how many JetStream acknowledged."""
        if self._sweep_due:
            # Everything queued in memory is in the collection too: the sweep sends it.
            self._to_relay.clear()
            # Recent events are being relayed from memory by now; a transaction's events are swept
            # at the next round, once committed.
            docs = await self.collection.find({}, sort=[("_id", 1)], limit=self.batch_size).to_list()
            if len(docs) < self.batch_size:
                self._sweep_due = False
        else:
            docs, self._to_relay = self._to_relay[: self.batch_size], self._to_relay[self.batch_size :]
        if not docs:
            return 0
        try:
            acked = await self._send(docs)
        except Exception:
            self._sweep_due = True
            raise
        if acked:
            await self.collection.delete_many({"_id": {"$in": acked}})
            self._relayed.add(len(acked))
        if len(acked) < len(docs):
            self._sweep_due = True
            raise RelayError(f"{len(docs) - len(acked)} of {len(docs)} events not acknowledged by JetStream")
        return len(acked)

    async def _send(self, docs: list[Doc]) -> list[str]:
        js = self.bus.js
        futures: list[asyncio.Future[Any]] = []
        try:
            for doc in docs:
                headers = {**doc.get("headers", {}), "Nats-Msg-Id": doc["_id"]}
                futures.append(await js.publish_async(doc["subject"], bytes(doc["data"]), headers=headers))
            await asyncio.wait(futures, timeout=self.ack_timeout)
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()
        return [
            doc["_id"] for doc, future in zip(docs, futures) if not future.cancelled() and future.exception() is None
        ]

    def has_work(self) -> bool:
        """Whether events wait in memory or a sweep is due."""
        return bool(self._to_relay) or self._sweep_due

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            self._wake.clear()  # an event added while this round runs wakes the next one
            try:
                sent = await self.relay_once()
                backoff = 0.1
            except Exception as exc:  # NATS away, docstore away: the events stay in the outbox
                self._failures.add(1)
                log.warning("outbox relay failed, retrying in %.1fs: %s", backoff, exc)
                if self._stopping:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if sent and self.has_work():
                continue
            if self._stopping and not self.has_work():
                return
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.sweep_interval)
            except TimeoutError:
                self._sweep_due = True  # now and then, look for anything left behind
