"""Every query of the messaging service's collections, and nowhere else.

Every read and write goes by `_id`: FerretDB v1 (the developer's and CI's docstore) answers any other
query by scanning the whole collection, and a region's mail is millions of documents. So:

- `messages` (_id = message id): the content, stored once however many hold it — sender, recipients as
  written (persons, groups, lists, with names), subject, sanitised body, attachments, thread, the persons
  it reached, how many still hold it, its listing `line` (sender, subject, snippet…: what a folder page
  shows, the same for every holder) and the folded words a search matches;
- `copies` (_id = `<person>:<message>`): one person's copy — its folder and whether it is read — small,
  as a send inserts one per recipient;
- `months` (_id = `<person>:<segment>`): a segment of a person's index — for messages of one month (of the
  message id), the ids in each folder (`folders`) and those unread (`unread`) — what a folder is paged through, newest
  first. A month's first segment is `<YYYYMM>`; past `SEGMENT_IDS` deliveries a replica (writer) opens its
  own, `<YYYYMM>.<writer>.<n>`, so that an index document stays small (on FerretDB an update costs in
  proportion to the whole document: ~0.5 ms at 50 ids, ~2 ms at 400); a copy records its segment (`segment`);
- `mailboxes` (_id = person): the person's folders, lists, attachment quota used, and which segments
  (`months`) have an index document. A month's own segment is not noted when a delivery makes it (that
  would be one more write per recipient for the first mail of every month): a reader looks for the month
  segments after the last one noted, up to this month, and notes those it finds (mailbox.py);
- `meta` (_id = `epoch`): the month the service first ran — where a reader with nothing noted starts looking;
- `threads` (_id = thread id): the messages of a conversation;
- `attachments` / `attachment_chunks` (_id = attachment id / `<id>:<n>`): files, in chunks by key (GridFS
  finds chunks by a secondary field: a scan on FerretDB);
- `schedule` (_id = message id): messages to send later (a small collection, read whole);
- `trash_days` (_id = `dYYYYMMDD`): what went to the trash on a day, for the retention sweep.

Keys say what they hold (`person`, `message`, `folder`, `unread`, `segment`…); data written before they did is
renamed by migration 1 (`MIGRATIONS`, applied by the bootstrap).

A delivery to N persons is N inserted copies (one insert_many) and N updates of their index segments. On
FerretDB an update command of 100 statements or more never answers (FerretDB v1.24), so updates are sent
in batches of `BATCH`.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from maille_kit.docstore import Docstore, by_ids, insert_missing
from maille_kit.migrations import Migration
from maille_messaging.schemas import message_time

Doc = dict[str, Any]
MESSAGES, COPIES, MONTHS, MAILBOXES, THREADS = "messages", "copies", "months", "mailboxes", "threads"
ATTACHMENTS, CHUNKS, SCHEDULE, TRASH_DAYS, META = "attachments", "attachment_chunks", "schedule", "trash_days", "meta"
COLLECTIONS = (MESSAGES, COPIES, MONTHS, MAILBOXES, THREADS, ATTACHMENTS, CHUNKS, SCHEDULE, TRASH_DAYS, META)
BATCH = 50
SEGMENT_IDS = 50  # deliveries a writer files into one index segment before it opens the next (by default)
SEGMENTS_KEPT = 200_000  # (person, month) pairs whose open segment a writer remembers


def copy_id(person: str, message: str) -> str:
    return f"{person}:{message}"


def month_of(message_id: str) -> str:
    return message_time(message_id).strftime("%Y%m")


def month_id(person: str, segment: str) -> str:
    return f"{person}:{segment}"


def is_month(segment: str) -> bool:
    """Whether a segment is a month's own (`<YYYYMM>`), rather than a writer's (`<YYYYMM>.<writer>.<n>`)."""
    return "." not in segment


def segment_of(copy: Doc) -> str:
    """The index segment holding a copy (copies filed before segments: their month's)."""
    return copy.get("segment") or month_of(copy["message"])


class MailRepository:
    """The messaging service's collections."""

    def __init__(self, docstore: Docstore, *, segment_size: int = SEGMENT_IDS) -> None:
        self.docstore = docstore
        self.db = docstore.db
        self._pending: list[tuple[list[Doc], str, Doc | None, asyncio.Future[None]]] = []
        self._filer: asyncio.Task[None] | None = None
        self._writer = os.urandom(3).hex()
        self._segment_size = segment_size
        self._open: OrderedDict[tuple[str, str], list[Any]] = (
            OrderedDict()
        )  # (person, month) -> [segment, deliveries in it]
        self._opened = 0
        self._epoch: str | None = None

    # messages
    async def message(self, message_id: str, projection: dict[str, Any] | None = None) -> Doc | None:
        return await self.db[MESSAGES].find_one({"_id": message_id}, projection)

    async def messages(self, ids: Sequence[str], projection: dict[str, Any] | None = None) -> dict[str, Doc]:
        return await by_ids(self.db[MESSAGES], ids, projection)

    async def put_message(self, doc: Doc) -> None:
        async with self.docstore.writing():
            await self.db[MESSAGES].replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def update_message(self, message_id: str, update: Doc) -> None:
        async with self.docstore.writing():
            await self.db[MESSAGES].update_one({"_id": message_id}, update)

    async def let_go(self, message_id: str, holders: int) -> Doc | None:
        """Count `holders` fewer holders of a message; the message as it is then (FerretDB v1 takes no projection
        here)."""
        async with self.docstore.writing():
            return await self.db[MESSAGES].find_one_and_update(
                {"_id": message_id}, {"$inc": {"holders": -holders}}, return_document=ReturnDocument.AFTER
            )

    async def delete_message(self, message_id: str) -> None:
        async with self.docstore.writing():
            await self.db[MESSAGES].delete_one({"_id": message_id})

    # copies and their month index
    async def copy(self, person: str, message_id: str) -> Doc | None:
        return await self.db[COPIES].find_one({"_id": copy_id(person, message_id)})

    async def copies(self, person: str, message_ids: Sequence[str]) -> dict[str, Doc]:
        found = await by_ids(self.db[COPIES], [copy_id(person, m) for m in message_ids])
        return {doc["message"]: doc for doc in found.values()}

    async def file(self, copies: list[Doc], *, tenant: str, message: Doc | None = None) -> None:
        """Store a message (when given) and insert copies indexed in their owners' months. Sends arriving together
        are written together (one insert of all their messages, one of all their copies, the index updates in
        batches): on FerretDB each command costs far more than each document in it."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((copies, tenant, message, done))
        if self._filer is None or self._filer.done():
            self._filer = asyncio.create_task(self._file_pending(), name="messaging-filer")
        await done

    async def _file_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._file(
                    [c for copies, _, _, _ in batch for c in copies],
                    [m for _, _, m, _ in batch if m is not None],
                    tenants={c["person"]: t for copies, t, _, _ in batch for c in copies},
                )
            except Exception as exc:
                for *_, done in batch:
                    done.set_exception(exc)
            else:
                for *_, done in batch:
                    done.set_result(None)

    async def _file(self, copies: list[Doc], messages: list[Doc], *, tenants: dict[str, str]) -> None:
        if messages:
            async with self.docstore.writing():  # filed already (a send done again after a failure): as it was
                await insert_missing(self.db[MESSAGES], messages)
        if not copies:
            return
        for copy in copies:
            copy["segment"] = self._segment(copy["person"], month_of(copy["message"]))
        async with self.docstore.writing():
            await insert_missing(self.db[COPIES], copies)  # a copy already there (a retried send) stays as it is
        updates = []
        for copy in copies:
            # $addToSet: a send done again after a failure lists each message once
            add = {
                f"folders.{copy['folder']}": copy["message"],
                **({f"unread.{copy['folder']}": copy["message"]} if copy["unread"] else {}),
            }
            update: Doc = {
                "$addToSet": add,
                "$setOnInsert": {"tenant": tenants[copy["person"]], "person": copy["person"]},
            }
            updates.append(UpdateOne({"_id": month_id(copy["person"], copy["segment"])}, update, upsert=True))
        new: set[str] = set()
        for start in range(0, len(updates), BATCH):  # the turn to write is taken per batch: other writes pass between
            async with self.docstore.writing():
                result = await self.db[MONTHS].bulk_write(updates[start : start + BATCH], ordered=True)
            new.update(str(key) for key in (result.upserted_ids or {}).values())
        new = {key for key in new if not is_month(key.rsplit(":", 1)[1])}  # a month's own: found by its readers
        if new:
            await self.note_months(new, tenants=tenants)

    def _segment(self, person: str, month: str) -> str:
        """The segment of the person's index this writer files a delivery of that month into: the month's own
        segment (`<YYYYMM>`, shared by every writer) for its first `segment_size` deliveries, then segments of
        its own — so a person who gets little mail has one index document a month, and a writer that starts
        opens no new document for them."""
        key = (person, month)
        current = self._open.get(key)
        if current is None:
            current = self._open[key] = [month, 0]
            while len(self._open) > SEGMENTS_KEPT:
                self._open.popitem(last=False)
        elif current[1] >= self._segment_size:
            self._opened += 1
            current[:] = [f"{month}.{self._writer}.{self._opened}", 0]
        self._open.move_to_end(key)
        current[1] += 1
        return current[0]

    async def note_months(self, months: Iterable[str], *, tenants: dict[str, str]) -> None:
        updates = []
        for key in months:
            person, month = key.rsplit(":", 1)
            updates.append(
                UpdateOne(
                    {"_id": person},
                    {"$addToSet": {"months": month}, "$setOnInsert": {"tenant": tenants[person]}},
                    upsert=True,
                )
            )
        for start in range(0, len(updates), BATCH):
            async with self.docstore.writing():
                await self.db[MAILBOXES].bulk_write(updates[start : start + BATCH], ordered=True)

    async def change_copy(
        self,
        copy: Doc,
        *,
        set_: Doc | None = None,
        unset: Sequence[str] = (),
        folder: str | None = None,
        unread: bool | None = None,
    ) -> None:
        """Change one copy and its month index together: its folder (`folder`), its read mark (`unread`)."""
        month = month_id(copy["person"], segment_of(copy))
        was_unread, now_unread = copy["unread"], copy["unread"] if unread is None else unread
        now_folder = copy["folder"] if folder is None else folder
        pull: Doc = {}
        push: Doc = {}
        if now_folder != copy["folder"]:
            pull[f"folders.{copy['folder']}"] = copy["message"]
            push[f"folders.{now_folder}"] = copy["message"]
        if was_unread and not (now_unread and now_folder == copy["folder"]):
            pull[f"unread.{copy['folder']}"] = copy["message"]
        if now_unread and not (was_unread and now_folder == copy["folder"]):
            push[f"unread.{now_folder}"] = copy["message"]
        index: Doc = {**({"$pull": pull} if pull else {}), **({"$push": push} if push else {})}
        change: Doc = {"$set": {**(set_ or {}), "folder": now_folder, "unread": now_unread}}
        if unset:
            change["$unset"] = {name: "" for name in unset}
        async with self.docstore.writing():
            await self.db[COPIES].update_one({"_id": copy["_id"]}, change)
            if index:
                await self.db[MONTHS].update_one({"_id": month}, index)

    async def remove_copy(self, copy: Doc) -> None:
        """Take a copy out of its owner's mailbox."""
        index: Doc = {
            "$pull": {
                f"folders.{copy['folder']}": copy["message"],
                **({f"unread.{copy['folder']}": copy["message"]} if copy["unread"] else {}),
            }
        }
        async with self.docstore.writing():
            await self.db[MONTHS].update_one({"_id": month_id(copy["person"], segment_of(copy))}, index)
            await self.db[COPIES].delete_one({"_id": copy["_id"]})

    async def months(self, person: str, months: Sequence[str]) -> dict[str, Doc]:
        """The person's index segments, by segment."""
        found = await by_ids(self.db[MONTHS], [month_id(person, m) for m in months])
        return {key.rsplit(":", 1)[1]: doc for key, doc in found.items()}

    async def epoch(self) -> str:
        """The month this service first ran (`YYYYMM`): no index segment is older."""
        if self._epoch is None:
            doc = await self.db[META].find_one({"_id": "epoch"})
            if doc is None:
                try:
                    async with self.docstore.writing():
                        await self.db[META].insert_one({"_id": "epoch", "month": datetime.now(UTC).strftime("%Y%m")})
                except DuplicateKeyError:  # another replica first
                    pass
                doc = await self.db[META].find_one({"_id": "epoch"})
            assert doc is not None
            self._epoch = str(doc["month"])
        return self._epoch

    # mailboxes
    async def mailbox(self, person: str) -> Doc | None:
        return await self.db[MAILBOXES].find_one({"_id": person})

    async def update_mailbox(self, person: str, update: Doc, *, tenant: str) -> None:
        update = {**update, "$setOnInsert": {"tenant": tenant}}
        async with self.docstore.writing():
            await self.db[MAILBOXES].update_one({"_id": person}, update, upsert=True)

    async def take_quota(self, person: str, size: int, *, limit: int, tenant: str) -> bool:
        """Count `size` bytes against the person's quota, unless it would go over `limit`."""
        async with self.docstore.writing():
            doc = await self.db[MAILBOXES].find_one({"_id": person}, {"quota": 1})
            used = (doc or {}).get("quota", 0)
            if used + size > limit:
                return False
            await self.db[MAILBOXES].update_one(
                {"_id": person}, {"$inc": {"quota": size}, "$setOnInsert": {"tenant": tenant}}, upsert=True
            )
            return True

    async def quota_used(self, person: str) -> int:
        """The bytes of files counted against the person's quota."""
        doc = await self.db[MAILBOXES].find_one({"_id": person}, {"quota": 1})
        return int((doc or {}).get("quota", 0))

    async def give_quota(self, person: str, size: int) -> None:
        async with self.docstore.writing():
            await self.db[MAILBOXES].update_one({"_id": person}, {"$inc": {"quota": -size}})

    async def drop_mailbox(self, person: str, months: Sequence[str]) -> None:
        async with self.docstore.writing():
            for month in months:
                await self.db[MONTHS].delete_one({"_id": month_id(person, month)})
            await self.db[MAILBOXES].delete_one({"_id": person})

    async def delete_copies(self, person: str, message_ids: Sequence[str]) -> None:
        async with self.docstore.writing():
            for message_id in message_ids:
                await self.db[COPIES].delete_one({"_id": copy_id(person, message_id)})

    # threads
    async def add_to_thread(self, thread: str, message_id: str, *, tenant: str) -> None:
        """A reply joins its conversation (a conversation of one message has no document: its id is the message's)."""
        async with self.docstore.writing():
            added = await self.db[THREADS].update_one({"_id": thread}, {"$addToSet": {"messages": message_id}})
            if added.matched_count == 0:
                try:
                    await self.db[THREADS].insert_one(
                        {"_id": thread, "tenant": tenant, "messages": [thread, message_id]}
                    )
                except DuplicateKeyError:  # another replica began it meanwhile
                    await self.db[THREADS].update_one({"_id": thread}, {"$addToSet": {"messages": message_id}})

    async def thread(self, thread: str) -> list[str]:
        doc = await self.db[THREADS].find_one({"_id": thread})
        return list(doc["messages"]) if doc else [thread]

    # attachments (their bytes: maille_kit.files, through attachments.DocstoreAttachments)
    async def attachment(self, attachment_id: str) -> Doc | None:
        return await self.db[ATTACHMENTS].find_one({"_id": attachment_id})

    # schedule
    async def schedule(self, doc: Doc) -> None:
        async with self.docstore.writing():
            await self.db[SCHEDULE].replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def scheduled(self) -> list[Doc]:
        return await self.db[SCHEDULE].find({}).to_list()

    async def lease(self, message_id: str, *, now: datetime, until: datetime) -> Doc | None:
        """Take a due scheduled message for a while (until `until`): the entry, for the one replica that did. A replica
        that dies or fails while sending leaves the entry, taken again once its lease has passed."""
        async with self.docstore.writing():
            return await self.db[SCHEDULE].find_one_and_update(
                {"_id": message_id, "lease": {"$lte": now}},
                {"$set": {"lease": until}, "$inc": {"tries": 1}},
                return_document=ReturnDocument.AFTER,
            )

    async def unschedule(self, message_id: str) -> bool:
        """Take a scheduled message off the schedule (sent, or cancelled); True for the one call that did."""
        async with self.docstore.writing():
            return (await self.db[SCHEDULE].delete_one({"_id": message_id})).deleted_count == 1

    # trash sweep
    async def trashed(self, day: str, keys: Sequence[str]) -> None:
        async with self.docstore.writing():
            await self.db[TRASH_DAYS].update_one(
                {"_id": day}, {"$addToSet": {"items": {"$each": list(keys)}}}, upsert=True
            )

    async def trash_days(self) -> list[Doc]:
        return await self.db[TRASH_DAYS].find({}).to_list()

    async def drop_trash_day(self, day: str) -> None:
        async with self.docstore.writing():
            await self.db[TRASH_DAYS].delete_one({"_id": day})


async def _readable_keys(docstore: Docstore) -> None:
    """Storage keys of one or two letters, written before 0.2, renamed to what they are."""
    # Each collection's documents written the old way hold the first key named (every copy had `m`…).
    renames = {
        COPIES: {
            "m": "message",
            "p": "person",
            "f": "folder",
            "u": "unread",
            "s": "segment",
            "pf": "folder_before_trash",
            "tr": "trashed_at",
        },
        MONTHS: {"p": "person", "f": "folders", "n": "unread"},
        MESSAGES: {"k": "search_key"},
        THREADS: {"m": "messages"},
    }
    for collection, fields in renames.items():
        first = next(iter(fields))
        await docstore.db[collection].update_many({first: {"$exists": True}}, {"$rename": fields})


MIGRATIONS = (Migration(1, "readable storage keys", _readable_keys),)
