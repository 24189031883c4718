"""The idempotent consumer: a durable JetStream pull consumer that hands each event to a handler once.

- An event already handled (by event id, per consumer) is acknowledged and not handed over again.
  Each event is first *claimed* (a document keyed by consumer and event id, written for the whole
  batch at once: the unique key tells which are new), then handled, then marked *done*, and only then
  acknowledged (a process killed before the mark leaves the event to be redelivered, never acked unmarked). Only a
  redelivered event whose claim exists (a lost acknowledgement, a crash, a failed try) needs a look at
  the done marks; the common path costs two batch writes and no lookup.
- With a `batch_handler`, the events that arrived together are handed over together (a service reads and
  writes for all of them at once: an import sends thousands); if it fails, the same events go to `handler`
  one at a time, so a failing event is retried and dead-lettered alone.
- Events the service says it does not want (`wants`: a person's update of fields it keeps none of) are acknowledged
  at once, with no claim and no mark: passing an event by twice is harmless.
- A message that is not a well-formed event goes to the dead-letter subject at once, with the reason.
- A handler that keeps failing sees the event `max_deliver` times; then the event goes to the
  dead-letter subject. Either way consumption goes on with the next event.
- Nothing is acknowledged before it is handled or safely dead-lettered, so nothing is lost.
- With `events_per_second`, a replica hands over at most that many events a second on average (a second's worth
  at once after a quiet spell): a night's import of 20,000 changes is followed over a minute or two instead of
  taking the cores from the people using the platform meanwhile. What waits stays in JetStream, unacknowledged
  (`max_ack_pending` is kept within what the pace clears before `ack_wait`).
- Claims and done marks are kept `keep_seconds` (past the streams' 7-day window no copy of an event can
  come back), then swept away: they do not grow without end.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import trace
from pymongo import IndexModel
from pymongo.errors import BulkWriteError

from maille_kit.bus import Bus
from maille_kit.docstore import Docstore
from maille_kit.events import Event, MalformedEvent, decode
from maille_kit.pace import Pace
from maille_kit.telemetry import extract_context, meter, tracer

log = logging.getLogger("maille.consumer")

CLAIMED = "events_claimed"
PROCESSED = "events_done"
KEEP_SECONDS = 8 * 24 * 3600  # a day past the streams' 7-day window
SWEEP_SECONDS = 3600.0
# what the kit declares for a service with consumers: the sweep reads by age
INDEXES = {CLAIMED: [IndexModel([("at", 1)], name="at")], PROCESSED: [IndexModel([("at", 1)], name="at")]}
Handler = Callable[[Event], Awaitable[None]]
# Handles a batch's events at once, in their order (a service's own reads and writes batched); when it raises,
# the consumer hands the same events to `handler` one at a time: both must be idempotent, as handlers are.
BatchHandler = Callable[[list[Event]], Awaitable[None]]

REASON_HEADER = "Maille-Dead-Letter-Reason"
SUBJECT_HEADER = "Maille-Original-Subject"
CONSUMER_HEADER = "Maille-Consumer"
REPLAY_HEADER = "Maille-Replay-For"  # a dead letter replayed (deadletters.py): the one consumer it is for


# The consumers started in this process (the runtime reads their figures from JetStream for the metrics).
STARTED: weakref.WeakSet[EventConsumer] = weakref.WeakSet()


class EventConsumer:
    """One durable consumer of a stream, handing each event to `handler` once."""

    def __init__(
        self,
        bus: Bus,
        docstore: Docstore,
        *,
        service: str,
        durable: str,
        stream: str,
        subjects: tuple[str, ...],
        handler: Handler,
        batch_handler: BatchHandler | None = None,
        wants: Callable[[Event], bool] | None = None,
        max_deliver: int = 5,
        batch: int = 256,
        ack_wait: float = 30.0,
        events_per_second: float = 0.0,
        retry_delay: float = 1.0,
        keep_seconds: float = KEEP_SECONDS,
        sweep_seconds: float = SWEEP_SECONDS,
    ) -> None:
        self.bus = bus
        self.docstore = docstore
        self.claimed = docstore.db[CLAIMED]
        self.processed = docstore.db[PROCESSED]
        self.service = service
        self.durable = durable
        self.stream = stream
        self.subjects = subjects
        self.handler = handler
        self.batch_handler = batch_handler
        self.wants = wants
        self.max_deliver = max_deliver
        self.batch = batch
        self.ack_wait = ack_wait
        self.pace = Pace(events_per_second) if events_per_second > 0 else None
        self.chunk = max(16, int(events_per_second / 4))  # paced, what is handled at once: a quarter of a second's
        if self.pace is not None:  # what may wait delivered but unacknowledged: cleared well within ack_wait
            self.batch = max(1, min(batch, int(events_per_second * ack_wait / 8)))
        self.retry_delay = retry_delay
        self.keep_seconds = keep_seconds
        self.sweep_seconds = sweep_seconds
        self._sweeper: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._marking: asyncio.Task[None] | None = None
        self._handled = meter().create_counter("maille.consumer.handled", description="events handled")
        self._passed = meter().create_counter(
            "maille.consumer.passed_by", description="events acknowledged unhandled: nothing the service keeps"
        )
        self._dead = meter().create_counter("maille.consumer.dead_lettered", description="events dead-lettered")

    def dead_letter_subject(self, subject: str) -> str:
        """Where an event of `subject` goes when it cannot be handled."""
        return f"deadletter.{self.service}.{subject}"

    async def start(self) -> None:
        """Create (or update) the durable consumer and start consuming in the background. A stream another
        service owns may not exist yet (that service starts later): the consumer then waits for it."""
        self._stopping = False
        STARTED.add(self)
        self._inbox: list[Msg] = []
        self._arrived = asyncio.Event()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name=f"consumer-sweep-{self.durable}")
        try:
            subscription = await self._bind()
        except NotFoundError:
            log.warning("stream %s does not exist yet: consumer %s waits for it", self.stream, self.durable)
            self._task = asyncio.create_task(self._bind_later(), name=f"consumer-{self.durable}")
            return
        self._task = asyncio.create_task(self._run(subscription), name=f"consumer-{self.durable}")

    async def _bind(self) -> Any:
        # A push consumer delivered to a queue group: events arrive as soon as they are stored, every
        # replica of the service shares the work, and max_ack_pending bounds what is in flight.
        config = ConsumerConfig(
            durable_name=self.durable,
            deliver_subject=f"_maille.deliver.{self.service}.{self.durable}",
            deliver_group=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=-1,  # the consumer dead-letters after max_deliver tries itself
            max_ack_pending=self.batch * 4,
            filter_subjects=list(self.subjects) if len(self.subjects) > 1 else None,
            filter_subject=self.subjects[0] if len(self.subjects) == 1 else None,
        )
        info = await self.bus.js.add_consumer(self.stream, config)

        async def arrive(message: Msg) -> None:
            self._inbox.append(message)
            self._arrived.set()

        return await self.bus.js.subscribe_bind(
            self.stream, info.config, self.durable, cb=arrive, manual_ack=True, pending_msgs_limit=self.batch * 8
        )

    async def _bind_later(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.retry_delay)
            try:
                subscription = await self._bind()
            except NotFoundError:
                continue
            except Exception as exc:  # NATS away for a moment: try again
                log.warning("consumer %s not bound yet: %s", self.durable, exc)
                continue
            log.info("stream %s exists now: consumer %s started", self.stream, self.durable)
            await self._run(subscription)
            return

    async def sweep(self) -> int:
        """Forget this consumer's claims and done marks older than `keep_seconds`; how many went."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.keep_seconds)
        mine = {"_id": {"$gte": f"{self.durable}:", "$lt": f"{self.durable};"}, "at": {"$lt": cutoff}}
        gone = 0
        for collection in (self.claimed, self.processed):
            async with self.docstore.writing():
                gone += (await collection.delete_many(mine)).deleted_count
        return gone

    async def _sweep_forever(self) -> None:
        while not self._stopping:
            try:
                gone = await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the docstore away: the next round sweeps
                log.warning("consumer %s: old claims not swept: %s", self.durable, exc)
            else:
                if gone:
                    log.info("consumer %s: %d claims and marks past %gs swept", self.durable, gone, self.keep_seconds)
            await asyncio.sleep(self.sweep_seconds)

    async def stop(self) -> None:
        """Stop after the batch in hand."""
        STARTED.discard(self)
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        if self._task is None:
            return
        self._stopping = True
        self._task.cancel()
        done, _ = await asyncio.wait({self._task}, timeout=5)
        if not done:
            log.warning("consumer %s did not stop within 5s", self.durable)
        self._task = None
        if self._marking is not None:
            await asyncio.gather(self._marking, return_exceptions=True)
            self._marking = None

    async def _run(self, subscription: Any) -> None:
        try:
            await self._consume(subscription)
        finally:  # stopped (cancelled) too: a subscription left bound would go on taking this consumer's events
            await _quietly(asyncio.shield(subscription.unsubscribe()))

    async def _consume(self, subscription: Any) -> None:
        while not self._stopping:
            # A batch is whatever has arrived since the last one (max_ack_pending bounds it).
            await self._arrived.wait()
            self._arrived.clear()
            messages, self._inbox = self._inbox, []
            if not messages:
                continue
            if self.pace is not None and len(messages) > self.chunk:  # paced: handled a little at a time
                self._inbox = messages[self.chunk :] + self._inbox
                messages = messages[: self.chunk]
                self._arrived.set()
            try:
                handed = await self.handle_batch(messages)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # docstore away: unacknowledged events come back
                log.warning("batch of %d events not handled, will be redelivered: %s", len(messages), exc)
                for message in messages:
                    await _quietly(message.nak(delay=self.retry_delay))
                await asyncio.sleep(self.retry_delay)
                continue
            if self.pace is not None:
                await self.pace.spent(handed)
            await asyncio.sleep(0)  # between batches too, when the next one is there already

    async def handle_batch(self, messages: list[Msg]) -> int:
        """Handle one fetched batch: dead-letter the malformed, skip the handled, hand over the rest; how many
        were handed over."""
        events: list[tuple[Msg, Event]] = []
        for count, message in enumerate(messages, 1):
            if count % 32 == 0:  # a batch read through is the event loop's: the service's requests come between
                await asyncio.sleep(0)
            replayed_for = (message.headers or {}).get(REPLAY_HEADER)
            if replayed_for is not None and replayed_for != self.durable:
                await _quietly(message.ack())  # another consumer's dead letter, replayed for it alone
                continue
            try:
                event = decode(message.data)
            except MalformedEvent as exc:
                await self._dead_letter(message, f"malformed event: {exc}")
                continue
            try:
                wanted = self.wants is None or self.wants(event)
            except Exception as exc:  # a payload `wants` cannot read: the handler will say what is wrong
                log.debug("consumer %s: event %s handed over unread: %s", self.durable, event.id, exc)
                wanted = True
            if wanted:
                events.append((message, event))
            else:
                await _quietly(message.ack())
                self._passed.add(1, {"consumer": self.durable})
        if not events:
            return 0
        now = datetime.now(UTC)
        keys = [self._key(event) for _, event in events]
        async with self.docstore.writing():
            claimed_before = await _insert_new(self.claimed, [{"_id": key, "at": now} for key in keys])
        handled: list[tuple[Msg, str]] = []
        in_batch: set[str] = set()
        todo: list[tuple[Msg, Event, str]] = []
        for index, ((message, event), key) in enumerate(zip(events, keys)):
            if key in in_batch or (index in claimed_before and not await self._needs_handling(message, key)):
                await _quietly(message.ack())  # a copy of an event handled already
                continue
            in_batch.add(key)
            todo.append((message, event, key))
        if self.batch_handler is not None and len(todo) > 1 and await self._handled_together(todo):
            handled = [(message, key) for message, _, key in todo]
            todo = []
        for message, event, key in todo:
            with tracer().start_as_current_span(
                f"handle {event.type}",
                context=extract_context(message.headers),
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "nats",
                    "messaging.destination.name": message.subject,
                    "maille.event.id": event.id,
                },
            ):
                try:
                    await self.handler(event)
                except Exception as exc:
                    await self._on_failure(message, event, exc)
                    continue
            handled.append((message, key))
        if handled:
            # Marked done, then acknowledged, while the next batch is handled: an event acknowledged is always
            # marked (a process killed in between leaves it unacknowledged: redelivered, handled again — handlers
            # are idempotent — and marked then).
            if self._marking is not None:
                await self._marking
            marks = [{"_id": key, "at": now} for _, key in handled]
            self._marking = asyncio.create_task(self._mark_done([message for message, _ in handled], marks))
            self._handled.add(len(handled), {"consumer": self.durable})
        return len(handled)

    async def _handled_together(self, todo: list[tuple[Msg, Event, str]]) -> bool:
        """Hand the batch to the batch handler; False (and the events left to the handler, one by one, where a
        failing one is retried and dead-lettered alone) when it fails."""
        assert self.batch_handler is not None
        with tracer().start_as_current_span(
            f"handle {len(todo)} events",
            kind=trace.SpanKind.CONSUMER,
            links=[
                trace.Link(span.get_span_context())
                for span in (trace.get_current_span(extract_context(m.headers)) for m, _, _ in todo[:32])
                if span.get_span_context().is_valid
            ],
            attributes={"messaging.system": "nats", "messaging.batch.message_count": len(todo)},
        ):
            try:
                await self.batch_handler([event for _, event, _ in todo])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "consumer %s: a batch of %d events failed, handled one by one: %s", self.durable, len(todo), exc
                )
                return False
        return True

    async def _mark_done(self, messages: list[Msg], marks: list[dict[str, Any]]) -> None:
        try:
            async with self.docstore.writing():
                await _insert_new(self.processed, marks)
        except Exception as exc:  # the docstore away: not acknowledged, so redelivered and marked then
            log.warning("could not mark %d handled events done (they come again): %s", len(marks), exc)
            for message in messages:
                await _quietly(message.nak(delay=self.retry_delay))
            return
        for count, message in enumerate(messages, 1):
            await _quietly(message.ack())
            if count % 64 == 0:
                await asyncio.sleep(0)

    async def _needs_handling(self, message: Msg, key: str) -> bool:
        # Claimed before. A first delivery of this message is another copy of the event: skip it. A
        # redelivery may follow a crash or a failed try (handle it) or a lost ack (done: skip it).
        delivered = message.metadata.num_delivered if message.metadata else 1
        if delivered <= 1 and REPLAY_HEADER not in (message.headers or {}):  # a replay is handled unless done
            return False
        return await self.processed.find_one({"_id": key}, {"_id": 1}) is None

    async def _on_failure(self, message: Msg, event: Event, exc: Exception) -> None:
        delivered = message.metadata.num_delivered if message.metadata else 1
        if delivered >= self.max_deliver:
            log.error("event %s failed %d times, dead-lettered: %s", event.id, delivered, exc)
            await self._dead_letter(message, f"handler failed {delivered} times: {exc!r}")
        else:
            log.warning("event %s failed (try %d of %d): %s", event.id, delivered, self.max_deliver, exc)
            await _quietly(message.nak(delay=self.retry_delay * delivered))

    async def _dead_letter(self, message: Msg, reason: str) -> None:
        # Only acknowledged once the dead-letter stream holds it: a failure here means redelivery, not loss.
        seq = message.metadata.sequence.stream if message.metadata else 0
        headers = {
            REASON_HEADER: reason[:1000],
            SUBJECT_HEADER: message.subject,
            CONSUMER_HEADER: self.durable,
            "Nats-Msg-Id": f"deadletter:{self.durable}:{seq}",
        }
        await self.bus.js.publish(self.dead_letter_subject(message.subject), message.data, headers=headers)
        await message.ack()
        self._dead.add(1, {"consumer": self.durable})
        log.warning("dead-lettered message %d of %s: %s", seq, message.subject, reason[:200])

    def _key(self, event: Event) -> str:
        return f"{self.durable}:{event.id}"


async def _insert_new(collection: Any, docs: list[dict[str, Any]]) -> set[int]:
    """Insert `docs`, keeping going past duplicate keys; the positions of those whose key was taken."""
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        return {e["index"] for e in errors}
    return set()


async def _quietly(awaitable: Awaitable[None]) -> None:
    # An ack or nak lost while NATS is away only means a redelivery, which is deduplicated.
    try:
        await awaitable
    except Exception as exc:
        log.debug("ack/nak not sent: %s", exc)
