"""One change and its events, never one without the other: the kit's unit of work.

The docstore has no transactions that every deployment can count on (FerretDB has none), so a change of
several documents and the events that tell of it cannot be written at once. The one rule of the house:

1. A unit of work is described before anything is done: the writes it makes (`insert`, `put`, `update`,
   `delete`), the steps it runs (a function the service registered, with its input) and its events, whose
   ids are fixed then. The description is written to the `works` collection in one insert: that is the
   commit point. Before it, nothing happened; after it, all of it will happen.
2. The writes are applied and the steps run, in order. Each is idempotent: an insert of a document already
   there changes nothing, a `put` replaces, an update only sets, adds to sets or pulls (never `$inc` or
   `$push`), a step does the same.
3. The events go to JetStream (or the outbox while NATS is away) with their fixed ids, and the description
   is deleted.

A change that must not overwrite another made meanwhile (a vendor's resource at a version, a document that
must be new) begins with *guards*: `insert(..., guard=True)`, `update(..., guard=True)`. A guard that does not
hold when first applied undoes nothing (guards come first) and the unit is dropped, events and all:
`commit` raises `Conflict`. A guarded write marks its document with the unit's id (`_work`), so that a unit
finished again after a failure knows its own write from another's.

A replica that dies between 1 and 3 leaves its description behind; any replica of the service finds it
`abandoned_after` seconds later and does 2 and 3 again: the change is whole, and its events are published
once in effect (JetStream drops a copy within its window, the consumers drop any later copy by event id).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
from bson import Binary
from google.protobuf.message import Message
from pymongo import DeleteMany, IndexModel, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.errors import DuplicateKeyError

from maille.events.v1.envelope_pb2 import Envelope
from maille_kit.docstore import Docstore, insert_missing
from maille_kit.events import make_envelope, new_event_id
from maille_kit.outbox import Outbox
from maille_kit.telemetry import meter

log = logging.getLogger("maille.work")

WORKS = "works"
INDEXES = {WORKS: [IndexModel([("at", 1)], name="at")]}  # declared by the kit for every service with a docstore
Doc = dict[str, Any]
Step = Callable[[Doc], Awaitable[None]]
# update operators that give the same document however many times they are applied
IDEMPOTENT = frozenset(
    {"$set", "$unset", "$setOnInsert", "$addToSet", "$pull", "$pullAll", "$currentDate", "$min", "$max"}
)


class NotIdempotent(ValueError):
    """An update a unit of work could not apply twice safely (`$inc`, `$push`…)."""


class Conflict(RuntimeError):
    """A guard of the unit of work did not hold (another change came first): nothing was done."""


@dataclass
class Work:
    """What one change does: its writes and steps, in order, and its events. Build it, then `Works.commit` it."""

    source: str
    id: str = field(default_factory=new_event_id)
    ops: list[Doc] = field(default_factory=list)
    events: list[Envelope] = field(default_factory=list)

    def insert(self, collection: str, *docs: Doc, guard: bool = False) -> Work:
        """Insert documents (each with its `_id`); one already there stays as it is — or, with `guard`, the
        unit is dropped (`Conflict`)."""
        for doc in docs:
            if "_id" not in doc:
                raise ValueError("a unit of work inserts documents with their _id")
            if guard:
                self._guard({"op": "insert", "c": collection, "doc": {**doc, "_work": self.id}, "guard": True})
            else:
                self.ops.append({"op": "insert", "c": collection, "doc": doc})
        return self

    def _guard(self, op: Doc) -> None:
        if any(not o.get("guard") for o in self.ops):
            raise ValueError("a unit of work's guards come before its other writes")
        self.ops.append(op)

    def put(self, collection: str, doc: Doc) -> Work:
        """Replace the document of that `_id`, or insert it."""
        self.ops.append({"op": "put", "c": collection, "doc": doc})
        return self

    def update(
        self,
        collection: str,
        filter: Doc,
        update: Doc,
        *,
        upsert: bool = False,
        many: bool = False,
        guard: bool = False,
    ) -> Work:
        """Update (one or `many`) documents, with operators that can be applied twice. With `guard`, `filter`
        (by `_id`, and what must still hold: a version…) must match one document, or the unit is dropped."""
        wrong = sorted(set(update) - IDEMPOTENT)
        if wrong:
            raise NotIdempotent(
                f"a unit of work cannot apply {', '.join(wrong)} twice safely; use $set, $addToSet, $pull…"
            )
        if guard:
            if "_id" not in filter or many or upsert:
                raise ValueError("a guard updates one document, named by its _id, without upsert")
            marked = {**update, "$set": {**update.get("$set", {}), "_work": self.id}}
            self._guard(
                {
                    "op": "update",
                    "c": collection,
                    "filter": filter,
                    "update": marked,
                    "upsert": False,
                    "many": False,
                    "guard": True,
                }
            )
        else:
            self.ops.append(
                {"op": "update", "c": collection, "filter": filter, "update": update, "upsert": upsert, "many": many}
            )
        return self

    def delete(self, collection: str, filter: Doc) -> Work:
        """Delete the documents `filter` matches."""
        self.ops.append({"op": "delete", "c": collection, "filter": filter})
        return self

    def step(self, name: str, input: Doc) -> Work:
        """Run the service's registered step `name` with `input` (it must be idempotent)."""
        self.ops.append({"op": "step", "name": name, "input": input})
        return self

    def event(self, *, type: str, tenant: str, payload: Message, id: str | None = None) -> str:
        """An event of this change; its id (fixed now: the same if the change is done again)."""
        envelope = make_envelope(type=type, tenant=tenant, source=self.source, payload=payload, id=id)
        self.events.append(envelope)
        return envelope.id

    def add_events(self, envelopes: Iterable[Envelope]) -> Work:
        self.events.extend(envelopes)
        return self


class Works:
    """A service's units of work: commits them, and finishes those a dead replica left behind."""

    def __init__(
        self,
        docstore: Docstore,
        outbox: Outbox,
        *,
        source: str,
        abandoned_after: float = 60.0,
        check_every: float = 15.0,
    ) -> None:
        self.docstore = docstore
        self.outbox = outbox
        self.source = source
        self.collection = docstore.db[WORKS]
        self.abandoned_after = abandoned_after
        self.check_every = check_every
        self._steps: dict[str, Step] = {}
        self._task: asyncio.Task[None] | None = None
        # Units committed together (a burst of sends) write their descriptions in one insert and are forgotten in
        # one delete: on the docstore each command costs far more than each document in it.
        self._to_describe: list[tuple[Doc, asyncio.Future[None]]] = []
        self._describer: asyncio.Task[None] | None = None
        self._to_forget: list[str] = []
        self._forgetter: asyncio.Task[None] | None = None
        self._finished = meter().create_counter(
            "maille.work.finished_late", description="units of work a replica left, finished by another"
        )

    def new(self) -> Work:
        return Work(source=self.source)

    def register(self, name: str, step: Step) -> None:
        """Name an idempotent step units of work may run (the same on every replica)."""
        self._steps[name] = step

    async def commit(self, work: Work, *, after: Awaitable[Any] | None = None) -> None:
        """Do `work` whole: its description first, then its writes and steps, then its events — these once `after`
        (the unit before it, for a job that commits one unit while the next is applied) is done: events keep the
        order of their units."""
        if not work.ops and not work.events:
            return
        for op in work.ops:
            if op["op"] == "step" and op["name"] not in self._steps:
                raise KeyError(f"no step {op['name']!r} is registered")
        # One compressed blob: the docstore stores and deletes a few hundred kB, not a document of a thousand.
        description = {"_id": work.id, "at": datetime.now(UTC), "work": _pack(work)}
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._to_describe.append((description, done))
        if self._describer is None or self._describer.done():
            self._describer = asyncio.create_task(self._describe_waiting(), name=f"works-describe-{self.source}")
        await done
        await self._finish(work.ops, work.events, work.id, after=after)

    async def _describe_waiting(self) -> None:
        while self._to_describe:
            batch, self._to_describe = self._to_describe, []
            try:
                async with self.docstore.writing():
                    await self.collection.insert_many([doc for doc, _ in batch], ordered=False)
            except Exception as exc:  # none of them is committed: each caller hears it
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    def _forget(self, work_id: str) -> None:
        """A finished unit's description goes, with the others finished meanwhile (left, it is only done again)."""
        self._to_forget.append(work_id)
        if self._forgetter is None or self._forgetter.done():
            self._forgetter = asyncio.create_task(self._forget_waiting(), name=f"works-forget-{self.source}")

    async def _forget_waiting(self) -> None:
        while self._to_forget:
            batch, self._to_forget = self._to_forget, []
            try:
                async with self.docstore.writing():
                    await self.collection.delete_many({"_id": {"$in": batch}})
            except Exception as exc:  # found later by `finish_abandoned`, done again (nothing changes), then forgotten
                log.warning("%d finished units of work not forgotten yet: %s", len(batch), exc)

    async def _finish(
        self, ops: list[Doc], events: list[Envelope], work_id: str, *, after: Awaitable[Any] | None = None
    ) -> None:
        try:
            await self._check_guards([op for op in ops if op.get("guard")], work_id)
        except Conflict:
            async with self.docstore.writing():
                await self.collection.delete_one({"_id": work_id})
            raise
        await self._apply([op for op in ops if not op.get("guard")])
        if after is not None:
            await after
        await self.outbox.deliver(events)
        self._forget(work_id)

    async def _check_guards(self, guards: list[Doc], work_id: str) -> None:
        """Apply the guarded writes one by one; `Conflict` at the first that neither holds nor was this unit's."""
        for op in guards:
            collection = self.docstore.db[op["c"]]
            async with self.docstore.writing():
                if op["op"] == "insert":
                    try:
                        await collection.insert_one(op["doc"])
                        continue
                    except DuplicateKeyError:
                        key = op["doc"]["_id"]
                else:
                    if (await collection.update_one(op["filter"], op["update"])).matched_count == 1:
                        continue
                    key = op["filter"]["_id"]
            if await collection.find_one({"_id": key, "_work": work_id}, {"_id": 1}) is None:
                raise Conflict(f"{op['c']} {key!r} changed meanwhile")

    async def _apply(self, ops: list[Doc]) -> None:
        run: list[Doc] = []
        for op in ops:
            if op["op"] == "step" or (run and run[-1]["c"] != op["c"]):
                await self._write(run)
                run = []
            if op["op"] == "step":
                await self._steps[op["name"]](op["input"])
            else:
                run.append(op)
        await self._write(run)

    async def _write(self, ops: list[Doc]) -> None:
        """Consecutive writes to one collection, in order: the inserts in a row in one command (one already there
        is left as it is), the other writes in a row in another."""
        if not ops:
            return
        collection = self.docstore.db[ops[0]["c"]]
        start = 0
        while start < len(ops):
            inserting = ops[start]["op"] == "insert"
            end = start
            while end < len(ops) and (ops[end]["op"] == "insert") == inserting:
                end += 1
            async with self.docstore.writing():
                if inserting:
                    await insert_missing(collection, [op["doc"] for op in ops[start:end]])
                else:
                    await collection.bulk_write([_request(op) for op in ops[start:end]], ordered=True)
            start = end

    async def finish_abandoned(self) -> int:
        """Finish the units of work whose replica has not finished them for `abandoned_after` seconds; how many."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.abandoned_after)
        finished = 0
        async for description in self.collection.find({"at": {"$lt": cutoff}}, sort=[("_id", 1)]):
            unpacked = bson.decode(zlib.decompress(bytes(description["work"])))
            ops, events = unpacked["ops"], [Envelope.FromString(bytes(data)) for data in unpacked["events"]]
            log.warning(
                "finishing a unit of work left by a replica",
                extra={"work": description["_id"], "ops": len(ops), "events": len(events)},
            )
            try:
                await self._finish(ops, events, description["_id"])
            except Conflict as exc:  # it never happened: another change came first
                log.warning("unit of work left by a replica dropped: %s", exc, extra={"work": description["_id"]})
            finished += 1
        if finished:
            self._finished.add(finished)
            await self._forgotten()
        return finished

    async def pending(self) -> int:
        """Units of work begun and not finished (by a replica at work now, or left behind)."""
        await self._forgotten()
        return await self.collection.count_documents({})

    async def _forgotten(self) -> None:
        if self._forgetter is not None:
            await asyncio.gather(self._forgetter, return_exceptions=True)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"works-{self.source}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for task in (self._describer, self._forgetter):  # what is under way finishes
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.finish_abandoned()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the docstore or a step failing: tried again next round
                log.warning("units of work left behind not finished yet: %s", exc)
            await asyncio.sleep(self.check_every)


def _pack(work: Work) -> Binary:
    return Binary(
        zlib.compress(bson.encode({"ops": work.ops, "events": [e.SerializeToString() for e in work.events]}), 1)
    )


def _request(op: Mapping[str, Any]) -> Any:
    kind = op["op"]
    if kind == "insert":
        return InsertOne(op["doc"])
    if kind == "put":
        return ReplaceOne({"_id": op["doc"]["_id"]}, op["doc"], upsert=True)
    if kind == "update":
        return (UpdateMany if op["many"] else UpdateOne)(op["filter"], op["update"], upsert=op["upsert"])
    if kind == "delete":
        return DeleteMany(op["filter"])
    raise ValueError(f"unknown write {kind!r}")
