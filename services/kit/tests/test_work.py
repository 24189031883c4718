"""The unit of work on the real NATS and docstore: a change and its events whole, even when the replica doing it
dies half-way — finished by another, every write once in effect, every event once."""

import asyncio
import uuid

import pytest
from google.protobuf.wrappers_pb2 import StringValue

from maille_kit.bus import Bus, Stream
from maille_kit.docstore import Docstore
from maille_kit.outbox import Outbox
from maille_kit.work import Conflict, NotIdempotent, Works


def unique_stream() -> Stream:
    tag = uuid.uuid4().hex[:8]
    return Stream(name=f"WORK_{tag.upper()}", subjects=(f"work{tag}.>",))


async def stream_ids(bus: Bus, stream: Stream, expected: int, timeout: float = 10) -> list[str]:
    """The event ids the stream holds once `expected` are there (or `timeout` passed), then a moment more for extras."""
    sub = await bus.js.pull_subscribe(stream.subjects[0], stream=stream.name)
    ids: list[str] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            messages = await sub.fetch(50, timeout=0.5)
        except TimeoutError:
            if len(ids) >= expected:
                break
            continue
        for message in messages:
            ids.append(message.headers["Nats-Msg-Id"])
            await message.ack()
    return ids


@pytest.fixture
async def outbox(docstore: Docstore, bus: Bus) -> Outbox:
    box = Outbox(docstore, bus, source="kit", ack_timeout=2.0)
    box.start()
    yield box
    await box.stop()


async def test_a_change_its_steps_and_its_events_are_done_whole(bus: Bus, docstore: Docstore, outbox: Outbox) -> None:
    stream = unique_stream()
    await bus.ensure_streams([stream])
    works = Works(docstore, outbox, source="kit")
    stepped: list[dict] = []

    async def note(input: dict) -> None:
        stepped.append(input)

    works.register("note", note)
    work = works.new()
    work.insert("things", {"_id": "a", "n": 1}, {"_id": "b", "n": 2})
    work.update("things", {"_id": "a"}, {"$set": {"seen": True}, "$addToSet": {"tags": "x"}})
    work.step("note", {"about": "a"})
    work.put("others", {"_id": "z", "v": "first"})
    work.delete("things", {"_id": "b"})
    event_id = work.event(
        type=f"{stream.subjects[0][:-2]}.thing.changed.v1", tenant="t", payload=StringValue(value="a")
    )
    await works.commit(work)

    assert await docstore.db["things"].find({}).to_list() == [{"_id": "a", "n": 1, "seen": True, "tags": ["x"]}]
    assert await docstore.db["others"].find_one({"_id": "z"}) == {"_id": "z", "v": "first"}
    assert stepped == [{"about": "a"}]
    assert await stream_ids(bus, stream, 1) == [event_id]
    assert await works.pending() == 0


async def test_a_unit_left_half_done_is_finished_by_another_replica_once(
    bus: Bus, docstore: Docstore, outbox: Outbox
) -> None:
    stream = unique_stream()
    await bus.ensure_streams([stream])
    subject = f"{stream.subjects[0][:-2]}.thing.changed.v1"
    dying = Works(docstore, outbox, source="kit")

    async def die(input: dict) -> None:
        raise ConnectionError("the replica died here")

    dying.register("deliver", die)
    work = dying.new()
    work.insert("things", {"_id": "a", "n": 1})
    work.update("counts", {"_id": "a"}, {"$addToSet": {"holders": "p1"}}, upsert=True)
    work.step("deliver", {"to": "p1"})
    work.insert("things", {"_id": "b", "n": 2})
    ids = [work.event(type=subject, tenant="t", payload=StringValue(value=str(n))) for n in range(3)]
    with pytest.raises(ConnectionError):
        await dying.commit(work)
    # half done: the first writes are there, the last one and the events are not
    assert [d["_id"] for d in await docstore.db["things"].find({}).to_list()] == ["a"]
    assert await stream_ids(bus, stream, 0, timeout=1) == []

    delivered: list[dict] = []

    async def deliver(input: dict) -> None:
        delivered.append(input)

    other = Works(docstore, outbox, source="kit", abandoned_after=0)
    other.register("deliver", deliver)
    assert await other.finish_abandoned() == 1
    assert await other.finish_abandoned() == 0  # nothing twice

    assert await docstore.db["things"].find({}, sort=[("_id", 1)]).to_list() == [
        {"_id": "a", "n": 1},
        {"_id": "b", "n": 2},
    ]
    assert await docstore.db["counts"].find({}).to_list() == [{"_id": "a", "holders": ["p1"]}]
    assert delivered == [{"to": "p1"}]
    assert await stream_ids(bus, stream, 3) == ids
    assert await other.pending() == 0


async def test_a_write_that_could_not_be_applied_twice_is_refused(docstore: Docstore, outbox: Outbox) -> None:
    work = Works(docstore, outbox, source="kit").new()
    with pytest.raises(NotIdempotent, match=r"\$inc"):
        work.update("things", {"_id": "a"}, {"$inc": {"n": 1}})
    with pytest.raises(NotIdempotent, match=r"\$push"):
        work.update("things", {"_id": "a"}, {"$push": {"m": 1}})


async def test_a_guard_that_does_not_hold_drops_the_whole_unit(bus: Bus, docstore: Docstore, outbox: Outbox) -> None:
    stream = unique_stream()
    await bus.ensure_streams([stream])
    subject = f"{stream.subjects[0][:-2]}.thing.changed.v1"
    works = Works(docstore, outbox, source="kit")
    await docstore.db["things"].insert_one({"_id": "a", "version": 2, "v": "theirs"})

    stale = works.new()  # read at version 1, another replica wrote version 2 meanwhile
    stale.update("things", {"_id": "a", "version": 1}, {"$set": {"version": 2, "v": "mine"}}, guard=True)
    stale.insert("log", {"_id": "l1"})
    stale.event(type=subject, tenant="t", payload=StringValue(value="mine"))
    with pytest.raises(Conflict):
        await works.commit(stale)
    taken = works.new()
    taken.insert("things", {"_id": "a", "v": "new"}, guard=True)  # must be new: it is not
    with pytest.raises(Conflict):
        await works.commit(taken)
    assert await docstore.db["things"].find_one({"_id": "a"}) == {"_id": "a", "version": 2, "v": "theirs"}
    assert await docstore.db["log"].count_documents({}) == 0
    assert await stream_ids(bus, stream, 0, timeout=1) == []
    assert await works.pending() == 0

    fresh = works.new()
    fresh.update("things", {"_id": "a", "version": 2}, {"$set": {"version": 3, "v": "mine"}}, guard=True)
    fresh.event(type=subject, tenant="t", payload=StringValue(value="mine"))
    await works.commit(fresh)
    # done again after a failure, its own guarded write is known as its own: no conflict, nothing twice
    again = Works(docstore, outbox, source="kit")
    await again._finish(fresh.ops, fresh.events, fresh.id)
    assert (await docstore.db["things"].find_one({"_id": "a"}))["v"] == "mine"
    assert len(await stream_ids(bus, stream, 1)) == 1
    with pytest.raises(ValueError, match="guards come before"):
        works.new().insert("x", {"_id": 1}).insert("y", {"_id": 2}, guard=True)
