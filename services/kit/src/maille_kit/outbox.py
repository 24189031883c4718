"""The outbox: events are written to the service's own database beside the change that caused them,
then relayed to JetStream until JetStream has acknowledged each one.

Nothing is lost while NATS is away: an event leaves the outbox only once JetStream holds it. An event
sent twice (an acknowledgement was lost, two replicas relayed the same event) carries its id in
`Nats-Msg-Id`, so JetStream drops the copy within the stream's de-duplication window; consumers drop
any later copy by event id.

Three things keep it fast on a docstore where every write is a round trip and deleting documents
one by one is dear:
- concurrent `publish` calls are written together (one `insert_many` for all the events waiting), and
  each call returns once its event is stored;
- the outbox is a series of *segment* collections (`outbox_<time>_<writer>_<n>`), each written by
  one process only; the writer moves to a new one every few seconds or thousands of events, and a
  segment whose every event JetStream holds is dropped whole;
- the relay sends what was just written from memory, and reads segments only to sweep up what is
  left there: its own after a failure; another writer's (a replica that died, this service before a
  restart) once nothing has been written there for `abandoned_after` seconds — never a segment that
  another live replica may still write to.
Events written inside a caller's transaction go to `outbox_tx` instead (a segment must not be dropped
under an uncommitted write) and are swept from there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bson import Binary
from google.protobuf.message import Message
from pymongo.asynchronous.client_session import AsyncClientSession

from maille.events.v1.envelope_pb2 import Envelope
from maille_kit.bus import Bus
from maille_kit.docstore import Docstore
from maille_kit.events import make_envelope
from maille_kit.telemetry import DELAY_SECONDS, inject_headers, meter, observe

log = logging.getLogger("maille.outbox")

SEGMENT_PREFIX = "outbox_"
TX_SEGMENT = "outbox_tx"
SEGMENT = re.compile(r"^outbox_(\d{13})_[0-9a-f]{8}_\d{6}$")
Doc = dict[str, Any]


class RelayError(RuntimeError):
    """Some events of a batch were not acknowledged by JetStream; they stay in the outbox."""


class Outbox:
    """A service's outbox, its group writer and its relay."""

    def __init__(
        self,
        docstore: Docstore,
        bus: Bus,
        *,
        source: str,
        batch_size: int = 1000,
        ack_timeout: float = 5.0,
        sweep_interval: float = 5.0,
        segment_events: int = 5000,
        segment_seconds: float = 2.0,
        abandoned_after: float = 60.0,
    ) -> None:
        self.docstore = docstore
        self.db = docstore.db
        self.bus = bus
        self.source = source
        self.batch_size = batch_size
        self.ack_timeout = ack_timeout
        self.sweep_interval = sweep_interval
        self.segment_events = segment_events
        self.segment_seconds = segment_seconds
        self.abandoned_after = abandoned_after
        self._writer_id = os.urandom(4).hex()
        self._segment: str | None = None  # where the writer writes now
        self._writing_to: str | None = None  # where a write in flight goes (never dropped under it)
        self._segment_opened = 0.0
        self._next_segment: asyncio.Task[str] | None = None
        self._segments_made = 0
        self._written: dict[str, int] = {}  # per segment: events written …
        self._held: dict[str, set[str]] = {}  # … and the ids JetStream acknowledged
        self._to_write: list[tuple[Doc, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._to_relay: list[tuple[str, Doc]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._sweep_due = True  # what an earlier run left behind
        self._direct_blocked = False  # a delivery straight to JetStream failed: the outbox until caught up

        self._relayed = meter().create_counter("maille.outbox.relayed", description="events JetStream acknowledged")
        self._failures = meter().create_counter("maille.outbox.relay_failures", description="relay rounds that failed")
        self._delay = meter().create_histogram(
            "maille.outbox.relay_delay",
            unit="s",
            description="from an event's write to JetStream's acknowledgement",
            explicit_bucket_boundaries_advisory=DELAY_SECONDS,
        )
        self._unobserve: list[Any] = []

    async def publish(
        self, *, type: str, tenant: str, payload: Message, session: AsyncClientSession | None = None
    ) -> str:
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
            {
                "_id": e.id,
                "subject": e.type,
                "data": Binary(e.SerializeToString()),
                "headers": headers,
                "created_at": now,
            }
            for e in envelopes
        ]
        if session is not None:
            # Part of the caller's transaction: written now, relayed once the sweep finds it committed.
            await self.db[TX_SEGMENT].insert_many(docs, ordered=True, session=session)
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
        for future in futures:
            await future

    async def deliver(self, envelopes: Sequence[Envelope]) -> None:
        """Hand over a bulk writer's events: straight to JetStream when nothing of this outbox waits to be
        relayed, and into the outbox whatever JetStream did not acknowledge in time; returns once each
        event is held by one or the other.

        For jobs that write many changes at once (an AAF import): an event JetStream has acknowledged
        needs no copy in the docstore, and skipping that copy halves what such a job writes. Nothing is
        lost when NATS is away: what it did not take is stored as `add` would have, and from then on this
        outbox's events all go through the outbox, in order, until the relay has caught up. An event
        acknowledged too late for the wait lands twice in JetStream's hands and is dropped there as a copy.
        """
        if not envelopes:
            return
        if not self._direct_possible():
            await self.add(envelopes)
            return
        headers = inject_headers({})
        messages = [(e.type, e.SerializeToString(), {**headers, "Nats-Msg-Id": e.id}) for e in envelopes]
        try:
            acked = await self.bus.publish_batch(messages, timeout=self.ack_timeout)
        except Exception as exc:
            log.warning("events not delivered to JetStream (%s): kept in the outbox", exc)
            acked = [False] * len(envelopes)
        missed = [e for e, ok in zip(envelopes, acked) if not ok]
        self._relayed.add(len(envelopes) - len(missed))
        if missed:
            self._direct_blocked = True
            await self.add(missed)

    def _direct_possible(self) -> bool:
        # Only while the relay runs and holds nothing of ours: events delivered straight must not
        # overtake older ones still waiting in the outbox.
        if self._direct_blocked and not self._to_relay and not self._to_write and not self._sweep_due:
            self._direct_blocked = False
        return (
            self._task is not None
            and not self._stopping
            and self.bus.connected
            and not self._direct_blocked
            and not self._to_relay
            and not self._to_write
            and not self._sweep_due
        )

    async def _write_waiting(self) -> None:
        # Everything that arrived while the previous write ran goes in the next one.
        loop = asyncio.get_running_loop()
        while self._to_write:
            batch, self._to_write = self._to_write[: self.batch_size], self._to_write[self.batch_size :]
            if (
                self._segment is None
                or self._written[self._segment] >= self.segment_events
                or loop.time() - self._segment_opened > self.segment_seconds
            ):
                await self._open_segment(loop.time())
            segment = self._writing_to = self._segment
            assert segment is not None
            docs = [doc for doc, _ in batch]
            try:
                async with self.docstore.writing():
                    await self.db[segment].insert_many(docs, ordered=True)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                self._sweep_due = True  # part of the batch may be stored
                continue
            finally:
                self._writing_to = None
            self._written[segment] += len(docs)
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            self._to_relay.extend((segment, doc) for doc in docs)
            self._wake.set()

    async def _open_segment(self, now: float) -> None:
        # Creating a collection is a slow write: the next segment is made ahead, off the writer's path.
        if self._next_segment is None:
            self._next_segment = asyncio.create_task(self._make_segment())
        self._segment = await self._next_segment
        self._next_segment = asyncio.create_task(self._make_segment())
        self._segment_opened = now
        self._written[self._segment] = 0
        self._held[self._segment] = set()

    async def _make_segment(self) -> str:
        self._segments_made += 1
        ms = int(datetime.now(UTC).timestamp() * 1000)
        name = f"{SEGMENT_PREFIX}{ms:013d}_{self._writer_id}_{self._segments_made % 1_000_000:06d}"
        try:
            async with self.docstore.writing():
                await self.db.create_collection(name)
        except Exception as exc:  # made on the first insert then, at the writer's cost
            log.debug("segment %s not made ahead: %s", name, exc)
        return name

    async def pending(self) -> int:
        """How many events in the outbox are not yet known to be in JetStream."""
        total = 0
        for name in await self._segment_names():
            total += await self.db[name].count_documents({}) - len(self._held.get(name, ()))
        return total

    async def _segment_names(self) -> list[str]:
        names = await self.db.list_collection_names()
        return sorted(name for name in names if name.startswith(SEGMENT_PREFIX))

    def start(self) -> None:
        """Start relaying in the background."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.source}")
            labels = {"source": self.source}
            self._unobserve = [
                observe(
                    "maille.outbox.backlog",
                    lambda: [(len(self._to_write) + len(self._to_relay), labels)],
                    description="events this process has written and JetStream has not acknowledged yet",
                ),
                observe(
                    "maille.outbox.lag",
                    lambda: [(self.lag(), labels)],
                    unit="s",
                    description="age of the oldest event this process waits to relay (0: none waits)",
                ),
            ]

    def lag(self) -> float:
        """Seconds since the oldest event waiting in this process was written (0 when none waits)."""
        try:  # read from the scrape's thread while the loop may empty the lists
            oldest = [self._to_write[0][0]["created_at"]] if self._to_write else []
            oldest += [self._to_relay[0][1]["created_at"]] if self._to_relay else []
        except IndexError:
            return 0.0
        if not oldest:
            return 0.0
        return max(0.0, (datetime.now(UTC) - min(oldest)).total_seconds())

    async def stop(self, *, drain_timeout: float = 5.0) -> None:
        """Relay what can be relayed within `drain_timeout`, then stop; the rest waits in the outbox."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        for unobserve in self._unobserve:
            unobserve()
        self._unobserve = []
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
        self._close_idle_segment()
        await self._drop_finished()

    async def relay_once(self) -> int:
        """Send one batch in order, from memory or swept from the outbox; how many JetStream acknowledged."""
        if self._sweep_due:
            return await self._sweep()
        items, self._to_relay = self._to_relay[: self.batch_size], self._to_relay[self.batch_size :]
        if not items:
            return 0
        try:
            acked = await self._send([doc for _, doc in items])
        except Exception:
            self._sweep_due = True
            raise
        self._relayed.add(len(acked))
        self._delay.record((datetime.now(UTC) - items[0][1]["created_at"]).total_seconds())  # the batch's oldest
        if len(acked) < len(items):
            self._sweep_due = True
            raise RelayError(f"{len(items) - len(acked)} of {len(items)} events not acknowledged by JetStream")
        for segment, doc in items:
            if segment in self._held:
                self._held[segment].add(doc["_id"])
        await self._drop_finished()
        return len(acked)

    async def _sweep(self) -> int:
        # Everything queued in memory is in a segment too: the sweep sends it (JetStream drops copies).
        self._to_relay.clear()
        sent = 0
        for name in await self._segment_names():
            if name != TX_SEGMENT and name not in self._written and not await self._abandoned(name):
                continue  # another live writer's: it relays its own
            held = self._held.setdefault(name, set()) if name in self._written else set()
            swept: list[str] = []
            async for chunk in _chunks(self.db[name].find({}, sort=[("_id", 1)]), self.batch_size):
                docs = [doc for doc in chunk if doc["_id"] not in held]
                acked = await self._send(docs) if docs else []
                sent += len(acked)
                self._relayed.add(len(acked))
                held.update(acked)
                swept.extend(doc["_id"] for doc in chunk)
                if len(acked) < len(docs):
                    raise RelayError(f"{len(docs) - len(acked)} of {len(docs)} swept events not acknowledged")
            if name == TX_SEGMENT:
                if swept:
                    async with self.docstore.writing():
                        await self.db[name].delete_many({"_id": {"$in": swept}})
            elif name not in (self._segment, self._writing_to):  # closed: nothing more goes there
                await self._drop(name)
        self._sweep_due = False
        return sent

    async def _abandoned(self, name: str) -> bool:
        """Whether nothing has been written to another writer's segment for `abandoned_after` seconds."""
        match = SEGMENT.match(name)
        if match is None:
            return False  # not a segment of ours
        limit = datetime.now(UTC).timestamp() - self.abandoned_after
        newest = await self.db[name].find_one({}, {"created_at": 1}, sort=[("created_at", -1)])
        if newest is None:  # made ahead and never used: gone, it would be made again on a write
            return int(match.group(1)) / 1000 < limit
        return newest["created_at"].timestamp() < limit

    async def _drop_finished(self) -> None:
        for name, written in list(self._written.items()):
            if name not in (self._segment, self._writing_to) and len(self._held.get(name, ())) >= written:
                await self._drop(name)

    def _close_idle_segment(self) -> None:
        # Nothing waits to be written: the next write opens a new segment, this one can go once held.
        if not self._to_write and (self._writer is None or self._writer.done()):
            self._segment = None

    async def _drop(self, name: str) -> None:
        async with self.docstore.writing():
            await self.db[name].drop()
        self._written.pop(name, None)
        self._held.pop(name, None)

    async def _send(self, docs: list[Doc]) -> list[str]:
        messages = [
            (doc["subject"], bytes(doc["data"]), {**doc.get("headers", {}), "Nats-Msg-Id": doc["_id"]}) for doc in docs
        ]
        acked = await self.bus.publish_batch(messages, timeout=self.ack_timeout)
        return [doc["_id"] for doc, ok in zip(docs, acked) if ok]

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
                self._close_idle_segment()


async def _chunks(cursor: Any, size: int) -> Any:
    """The documents of `cursor` in lists of at most `size`."""
    chunk: list[Doc] = []
    async for doc in cursor:
        chunk.append(doc)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
