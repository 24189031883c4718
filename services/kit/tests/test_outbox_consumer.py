"""Events through the real NATS and docstore: none lost while NATS is away, none handled twice,
and what cannot be handled goes to the dead-letter subject while consumption goes on."""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.wrappers_pb2 import Int64Value

from maille.identity.v1 import directory_pb2 as pb
from maille_contracts import PERSON_DELETED, PERSON_UPDATED
from maille_devstack.processes import NatsServer
from maille_devstack.pytest_plugin import until
from maille_kit.bus import Bus, Stream, dead_letter_stream
from maille_kit.consumer import CLAIMED, REASON_HEADER, SUBJECT_HEADER, EventConsumer
from maille_kit.directory import keeping
from maille_kit.docstore import Docstore
from maille_kit.events import Event, make_envelope
from maille_kit.outbox import Outbox


def unique_stream() -> Stream:
    tag = uuid.uuid4().hex[:8]
    return Stream(name=f"KIT_{tag.upper()}", subjects=(f"kit{tag}.>",))


def subject_of(stream: Stream, fact: str = "counted") -> str:
    return f"{stream.subjects[0][:-2]}.item.{fact}.v1"


async def message_ids(bus: Bus, stream: Stream, expected: int, timeout: float = 30) -> list[str]:
    """The message ids the stream holds, in its order, once `expected` are there (or `timeout` has passed)."""
    sub = await bus.js.pull_subscribe(stream.subjects[0], stream=stream.name)
    received: list[str] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(received) < expected and asyncio.get_running_loop().time() < deadline:
        try:
            messages = await sub.fetch(min(expected, 300), timeout=1)
        except TimeoutError:
            continue
        for message in messages:
            received.append(message.headers["Nats-Msg-Id"])
            await message.ack()
    return received


async def connected(nats: NatsServer, name: str, *streams: Stream) -> Bus:
    """A bus connected to `nats`, with `streams` made."""
    bus = Bus(nats.url, name=name)
    await bus.connect(timeout=10)
    await bus.ensure_streams(list(streams))
    return bus


async def written_while_away(
    nats: NatsServer, docstore: Docstore, name: str, count: int, **options: Any
) -> tuple[Bus, Stream, Outbox]:
    """An outbox (of service "kit") given `count` events while NATS is stopped; NATS is still stopped on return."""
    stream = unique_stream()
    bus = await connected(nats, name, stream)
    outbox = Outbox(docstore, bus, source="kit", **options)
    nats.stop()
    for n in range(count):
        await outbox.publish(type=subject_of(stream), tenant="t", payload=Int64Value(value=n))
    return bus, stream, outbox


async def back(nats: NatsServer, bus: Bus) -> None:
    """NATS started again, and `bus` reconnected to it."""
    nats.start()
    await until(lambda: bus.connected, "the reconnection", 20)


def kit_consumer(
    bus: Bus,
    docstore: Docstore,
    stream: Stream,
    durable: str,
    handler: Callable[[Event], Awaitable[None]],
    **settings: Any,
) -> EventConsumer:
    """A consumer of `stream` for service "kit" (durable `durable`) handing each event to `handler`."""
    return EventConsumer(
        bus,
        docstore,
        service="kit",
        durable=durable,
        stream=stream.name,
        subjects=stream.subjects,
        handler=handler,
        **settings,
    )


def counted(subject: str, value: int) -> bytes:
    """An event of type `subject` carrying the number `value`, as it goes on the wire."""
    return make_envelope(type=subject, tenant="t", source="kit", payload=Int64Value(value=value)).SerializeToString()


def recording_consumer(
    bus: Bus, docstore: Docstore, stream: Stream, durable: str, **settings: Any
) -> tuple[EventConsumer, list[str]]:
    """A consumer of `stream` (service "kit") whose handler writes down each event's id, and that list."""
    handled: list[str] = []

    async def handle(event: Event) -> None:
        handled.append(event.id)

    consumer = kit_consumer(bus, docstore, stream, durable, handle, **settings)
    return consumer, handled


async def test_nothing_lost_nothing_twice_across_a_nats_outage(
    nats_factory: Callable[[], NatsServer], docstore: Docstore
) -> None:
    nats = nats_factory()
    stream = unique_stream()
    bus = await connected(nats, "outage-test", stream, dead_letter_stream("kit"))
    outbox = Outbox(docstore, bus, source="kit", ack_timeout=1.0)
    outbox.start()
    consumer, handled = recording_consumer(bus, docstore, stream, durable="outage")
    await consumer.start()
    published: list[str] = []
    try:
        for n in range(1000):
            published.append(
                await outbox.publish(type=subject_of(stream), tenant="ac-test", payload=Int64Value(value=n))
            )
            if n == 300:
                nats.stop()  # NATS goes away while the service keeps publishing
            if n == 700:
                await asyncio.sleep(0.5)
                nats.start()
            if n % 50 == 0:
                await asyncio.sleep(0.01)
        await until(lambda: len(set(handled)) >= 1000, "all 1,000 events handled", 60)
        await asyncio.sleep(1.0)  # room for any duplicate to show up
    finally:
        await consumer.stop()
        await outbox.stop()
        await bus.close()
    assert sorted(handled) == sorted(published)  # every event, exactly once
    assert len(handled) == 1000
    assert await outbox.pending() == 0


async def test_malformed_event_dead_lettered_and_consumption_goes_on(bus: Bus, docstore: Docstore) -> None:
    stream = unique_stream()
    await bus.ensure_streams([stream, dead_letter_stream("kit")])
    handled: list[int] = []

    async def handle(event: Event) -> None:
        handled.append(event.unpack(Int64Value).value)

    consumer = kit_consumer(
        bus,
        docstore,
        stream,
        f"dl{uuid.uuid4().hex[:6]}",
        handle,
    )
    subject = subject_of(stream)
    dead = await bus.nc.subscribe(consumer.dead_letter_subject(subject))
    await consumer.start()
    try:
        await bus.js.publish(
            subject,
            counted(subject, 1),
        )
        await bus.js.publish(subject, b"\x08\x96\x01 this is not an envelope")
        await bus.js.publish(
            subject,
            counted(subject, 2),
        )
        letter = await dead.next_msg(timeout=10)
        await until(lambda: handled == [1, 2], "the two good events", 10)
    finally:
        await consumer.stop()
    assert letter.data == b"\x08\x96\x01 this is not an envelope"
    assert letter.headers[REASON_HEADER].startswith("malformed event:")
    assert letter.headers[SUBJECT_HEADER] == subject
    # The dead letter is kept in its own stream for an operator.
    kept = await bus.js.get_last_msg(dead_letter_stream("kit").name, consumer.dead_letter_subject(subject))
    assert kept.data == letter.data


async def test_handler_that_keeps_failing_is_dead_lettered(bus: Bus, docstore: Docstore) -> None:
    stream = unique_stream()
    await bus.ensure_streams([stream, dead_letter_stream("kit")])
    tries: dict[int, int] = {}

    async def handle(event: Event) -> None:
        value = event.unpack(Int64Value).value
        tries[value] = tries.get(value, 0) + 1
        if value == 13:
            raise ValueError("thirteen is unlucky")

    consumer = kit_consumer(
        bus,
        docstore,
        stream,
        f"fail{uuid.uuid4().hex[:6]}",
        handle,
        max_deliver=3,
        retry_delay=0.05,
    )
    subject = subject_of(stream)
    dead = await bus.nc.subscribe(consumer.dead_letter_subject(subject))
    await consumer.start()
    try:
        for value in (12, 13, 14):
            await bus.js.publish(
                subject,
                counted(subject, value),
            )
        letter = await dead.next_msg(timeout=15)
        await until(lambda: 14 in tries, "the event after the failing one", 10)
    finally:
        await consumer.stop()
    assert tries == {12: 1, 13: 3, 14: 1}
    assert "handler failed 3 times" in letter.headers[REASON_HEADER]
    assert "thirteen is unlucky" in letter.headers[REASON_HEADER]


async def test_a_batch_handler_takes_the_batch_and_a_failing_batch_goes_one_by_one(
    bus: Bus, docstore: Docstore
) -> None:
    """Events that arrive together go to the batch handler together, once each; when it fails, the same events
    go to the event handler one at a time, where only the failing one is retried and dead-lettered."""
    stream = unique_stream()
    await bus.ensure_streams([stream, dead_letter_stream("kit")])
    batches: list[list[int]] = []
    singles: list[int] = []

    async def handle_many(events: list[Event]) -> None:
        values = [event.unpack(Int64Value).value for event in events]
        if 13 in values:
            raise ValueError("thirteen is in this batch")
        batches.append(values)

    async def handle(event: Event) -> None:
        value = event.unpack(Int64Value).value
        if value == 13:
            raise ValueError("thirteen is unlucky")
        singles.append(value)

    durable = f"batch{uuid.uuid4().hex[:6]}"

    def consumer_() -> EventConsumer:
        return kit_consumer(
            bus,
            docstore,
            stream,
            durable,
            handle,
            batch_handler=handle_many,
            max_deliver=2,
            retry_delay=0.05,
        )

    consumer = consumer_()
    subject = subject_of(stream)
    dead = await bus.nc.subscribe(consumer.dead_letter_subject(subject))

    async def publish(values: range | tuple[int, ...]) -> None:
        for value in values:
            await bus.js.publish(
                subject,
                counted(subject, value),
            )

    await publish(range(100))  # all there before the consumer starts: they arrive together, 13 among them
    await consumer.start()
    try:
        letter = await dead.next_msg(timeout=15)
        await until(lambda: sum(map(len, batches)) + len(singles) >= 99, "the first hundred events", 15)
        first = [*(v for batch in batches for v in batch), *singles]
        await consumer.stop()
        await publish(range(100, 200))  # while it is stopped: together again when it starts again
        consumer = consumer_()
        await consumer.start()
        await until(lambda: sum(map(len, batches)) + len(singles) >= 199, "the next hundred", 15)
    finally:
        await consumer.stop()
    assert sorted(first) == [v for v in range(100) if v != 13]  # each once, 13 never
    assert 13 not in singles and "thirteen is unlucky" in letter.headers[REASON_HEADER]
    assert sorted([*(v for batch in batches for v in batch), *singles]) == [v for v in range(200) if v != 13]
    assert max(len(batch) for batch in batches) > 1  # together, not one by one


async def test_same_event_sent_twice_handled_once(bus: Bus, docstore: Docstore) -> None:
    stream = unique_stream()
    await bus.ensure_streams([stream])
    consumer, handled = recording_consumer(bus, docstore, stream, durable="twice")
    subject = subject_of(stream)
    envelope = make_envelope(type=subject, tenant="t", source="kit", payload=Int64Value(value=5))
    await consumer.start()
    try:
        # Two copies that JetStream does not de-duplicate (different message ids): the consumer must.
        await bus.js.publish(subject, envelope.SerializeToString(), headers={"Nats-Msg-Id": "copy-1"})
        await bus.js.publish(subject, envelope.SerializeToString(), headers={"Nats-Msg-Id": "copy-2"})
        other = make_envelope(type=subject, tenant="t", source="kit", payload=Int64Value(value=6))
        await bus.js.publish(subject, other.SerializeToString())
        await until(lambda: other.id in handled, "the third event", 10)
    finally:
        await consumer.stop()
    assert handled == [envelope.id, other.id]


async def test_updates_of_fields_a_service_does_not_keep_are_passed_by(bus: Bus, docstore: Docstore) -> None:
    """A consumer `keeping` a person's profiles: a change of first names is acknowledged without a claim, a mark
    or a call; a change of profiles, an update that names nothing and any other event are handled."""
    stream = unique_stream()  # identity's event types, on subjects of the test's own
    await bus.ensure_streams([stream])
    consumer, handled = recording_consumer(bus, docstore, stream, durable="keeper", wants=keeping(["profiles"]))

    def update(changed: list[str]) -> Any:
        person = pb.Person(id="p-1", first_name="Léna")
        return make_envelope(
            type=PERSON_UPDATED, tenant="t", source="kit", payload=pb.PersonUpdated(person=person, changed=changed)
        )

    renamed, moved, unknown = update(["last_name", "first_name"]), update(["profiles", "group_ids"]), update([])
    gone = make_envelope(type=PERSON_DELETED, tenant="t", source="kit", payload=pb.PersonDeleted(id="p-1"))
    await consumer.start()
    try:
        for envelope in (renamed, moved, unknown, gone):
            await bus.js.publish(subject_of(stream, envelope.type), envelope.SerializeToString())
        await until(lambda: gone.id in handled, "the deletion", 10)
        await until(lambda: consumer._marking is None or consumer._marking.done(), "the done marks", 10)
    finally:
        await consumer.stop()
    assert handled == [moved.id, unknown.id, gone.id]
    assert await docstore.db[CLAIMED].find_one({"_id": f"keeper:{renamed.id}"}) is None
    assert await docstore.db[CLAIMED].count_documents({"_id": {"$gte": "keeper:", "$lt": "keeper;"}}) == 3
    info = await bus.js.consumer_info(stream.name, "keeper")
    assert (info.num_pending, info.num_ack_pending) == (0, 0)  # the one passed by is acknowledged too
    with pytest.raises(ValueError, match="prenom"):
        keeping(["profiles", "prenom"])


async def test_a_paced_consumer_follows_a_flood_at_its_pace_a_lone_event_at_once(bus: Bus, docstore: Docstore) -> None:
    """At 100 events a second: a flood of 300 published at once takes about two seconds, each handled once and
    none delivered again for waiting past `ack_wait`; an event after a quiet spell is handled at once."""
    stream = unique_stream()
    await bus.ensure_streams([stream])
    consumer, handled = recording_consumer(bus, docstore, stream, durable="paced", events_per_second=100, ack_wait=3)
    subject = subject_of(stream)
    flood = [make_envelope(type=subject, tenant="t", source="kit", payload=Int64Value(value=n)) for n in range(300)]
    for envelope in flood:
        await bus.js.publish(subject, envelope.SerializeToString())
    began = time.monotonic()
    await consumer.start()
    try:
        await until(lambda: len(handled) >= 100, "the first second's worth", 10)
        first_second = time.monotonic() - began
        await until(lambda: len(handled) >= 300, "the whole flood", 20)
        whole = time.monotonic() - began
        await asyncio.sleep(1.5)  # quiet: the bucket fills again
        lone = make_envelope(type=subject, tenant="t", source="kit", payload=Int64Value(value=300))
        sent = time.monotonic()
        await bus.js.publish(subject, lone.SerializeToString())
        await until(lambda: lone.id in handled, "the lone event", 10)
        lone_took = time.monotonic() - sent
        await until(lambda: consumer._marking is None or consumer._marking.done(), "the done marks", 10)
        await asyncio.sleep(0.5)
        info = await bus.js.consumer_info(stream.name, "paced")
    finally:
        await consumer.stop()
    assert sorted(handled) == sorted([envelope.id for envelope in flood] + [lone.id])  # each once
    assert first_second < 1.0 and 1.5 <= whole < 6, (first_second, whole)  # 200 past the burst at 100 a second
    assert lone_took < 0.5, lone_took
    assert info.num_redelivered == 0 and (info.num_pending, info.num_ack_pending) == (0, 0)


async def test_outbox_keeps_events_until_nats_takes_them(
    nats_factory: Callable[[], NatsServer], docstore: Docstore
) -> None:
    nats = nats_factory()
    bus, stream, outbox = await written_while_away(nats, docstore, "keep-test", 20, ack_timeout=0.5)
    with pytest.raises(Exception):
        await outbox.relay_once()
    assert await outbox.pending() == 20  # kept, not lost
    await back(nats, bus)
    relayed = 0
    for _ in range(50):
        try:
            relayed += await outbox.relay_once()
        except Exception:
            await asyncio.sleep(0.2)
        if relayed == 20:
            break
    assert relayed == 20
    info = await bus.js.stream_info(stream.name)
    assert info.state.messages == 20
    await bus.close()


async def test_two_replicas_lose_nothing_across_a_nats_outage(
    nats_factory: Callable[[], NatsServer], docstore: Docstore
) -> None:
    """Two replicas share one outbox database: neither sweeps away what the other still writes."""
    nats = nats_factory()
    stream = unique_stream()
    bus = await connected(nats, "replicas-test", stream)
    replicas = [
        Outbox(docstore, bus, source="kit", ack_timeout=0.5, sweep_interval=0.2, segment_seconds=0.1) for _ in range(2)
    ]
    for outbox in replicas:
        outbox.start()
    published: list[str] = []

    async def publish(outbox: Outbox, offset: int) -> None:
        for n in range(400):
            published.append(
                await outbox.publish(type=subject_of(stream), tenant="t", payload=Int64Value(value=offset + n))
            )
            if n % 20 == 0:
                await asyncio.sleep(0.02)

    async def outage() -> None:
        await asyncio.sleep(0.3)
        nats.stop()
        await asyncio.sleep(1.0)
        nats.start()

    try:
        await asyncio.gather(publish(replicas[0], 0), publish(replicas[1], 1000), outage())
        await until(lambda: bus.connected, "the reconnection", 20)
        received = await message_ids(bus, stream, 800)
    finally:
        for outbox in replicas:
            await outbox.stop()
        await bus.close()
    assert sorted(received) == sorted(published)  # each replica's events in JetStream, once each
    assert await replicas[0].pending() == 0


async def test_events_left_by_a_stopped_writer_are_relayed_once_abandoned(
    nats_factory: Callable[[], NatsServer], docstore: Docstore
) -> None:
    nats = nats_factory()
    bus, stream, _ = await written_while_away(nats, docstore, "abandoned-test", 30, ack_timeout=0.5)
    await back(nats, bus)
    # A live replica does not take over another's fresh events…
    replica = Outbox(docstore, bus, source="kit", abandoned_after=60)
    assert await replica.relay_once() == 0
    assert (await bus.js.stream_info(stream.name)).state.messages == 0
    # …but the service after a restart relays what its earlier life left, once nothing is written there.
    after_restart = Outbox(docstore, bus, source="kit", abandoned_after=0.5)
    await asyncio.sleep(0.6)
    assert await after_restart.relay_once() == 30
    assert (await bus.js.stream_info(stream.name)).state.messages == 30
    assert await after_restart.pending() == 0
    await bus.close()


async def test_bulk_delivery_goes_straight_to_jetstream_and_loses_nothing_across_an_outage(
    nats_factory: Callable[[], NatsServer], docstore: Docstore
) -> None:
    """A bulk job's events (an import): JetStream takes them without an outbox copy while it is up; what
    it cannot take during an outage waits in the outbox and arrives once, after the events before it."""
    nats = nats_factory()
    stream = unique_stream()
    bus = await connected(nats, "deliver-test", stream)
    outbox = Outbox(docstore, bus, source="kit", ack_timeout=0.5, sweep_interval=0.2)
    outbox.start()
    await until(lambda: not outbox.has_work(), "the first sweep", 10)

    def batch(first: int) -> list:
        return [
            make_envelope(type=subject_of(stream), tenant="t", source="kit", payload=Int64Value(value=first + n))
            for n in range(100)
        ]

    sent: list[str] = []
    try:
        before = batch(0)
        await outbox.deliver(before)
        sent += [e.id for e in before]
        assert (await bus.js.stream_info(stream.name)).state.messages == 100
        assert await outbox.pending() == 0  # nothing was written to the docstore for them
        nats.stop()
        during = batch(100)
        await outbox.deliver(during)  # returns once they are held: by the outbox, NATS being away
        sent += [e.id for e in during]
        assert await outbox.pending() == 100
        after = batch(200)
        await outbox.deliver(after)  # behind the waiting ones, not ahead of them
        sent += [e.id for e in after]
        await back(nats, bus)
        received = await message_ids(bus, stream, 300)
    finally:
        await outbox.stop()
        await bus.close()
    assert received == sent  # each once, in the order handed over
    assert await outbox.pending() == 0


async def test_a_consumer_of_a_stream_not_there_yet_waits_for_it(bus: Bus, docstore: Docstore) -> None:
    # Another service owns the stream and may start after this one (the catalog consumes identity's).
    stream = unique_stream()
    consumer, handled = recording_consumer(bus, docstore, stream, durable="early", retry_delay=0.2)
    await consumer.start()
    try:
        await asyncio.sleep(0.5)
        await bus.ensure_streams([stream])
        envelope = make_envelope(type=subject_of(stream), tenant="t", source="kit", payload=Int64Value(value=1))
        await bus.js.publish(subject_of(stream), envelope.SerializeToString())
        await until(lambda: envelope.id in handled, "the event published once the stream existed", 10)
    finally:
        await consumer.stop()
    assert handled == [envelope.id]


async def test_claims_past_the_streams_window_are_swept_and_only_this_consumers(bus: Bus, docstore: Docstore) -> None:
    """The claims and done marks do not grow for ever: past `keep_seconds` a consumer forgets its own (no copy
    of those events can come back), and leaves the recent ones and another consumer's alone."""
    stream = unique_stream()
    await bus.ensure_streams([stream])
    consumer, handled = recording_consumer(
        bus, docstore, stream, durable="sweeper", keep_seconds=3600, sweep_seconds=3600
    )
    await docstore.ensure_indexes({"events_claimed": [], "events_done": []})
    old = datetime.now(UTC) - timedelta(days=9)
    await docstore.db["events_claimed"].insert_many(
        [{"_id": "sweeper:old", "at": old}, {"_id": "other:old", "at": old}]
    )
    await docstore.db["events_done"].insert_many(
        [{"_id": "sweeper:old", "at": old}, {"_id": "sweeperx:old", "at": old}]
    )
    subject = subject_of(stream)
    fresh = make_envelope(type=subject, tenant="t", source="kit", payload=Int64Value(value=1))
    await consumer.start()  # sweeps once at start
    try:
        await bus.js.publish(subject, fresh.SerializeToString())
        await until(lambda: fresh.id in handled, "the fresh event", 10)
        await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
    claimed = sorted(d["_id"] for d in await docstore.db["events_claimed"].find().to_list())
    done = sorted(d["_id"] for d in await docstore.db["events_done"].find().to_list())
    assert claimed == ["other:old", f"sweeper:{fresh.id}"]
    assert done == [f"sweeper:{fresh.id}", "sweeperx:old"]
