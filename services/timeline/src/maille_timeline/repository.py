"""Every query of the timeline's collections, and nowhere else.

Every read and write of the serving path goes by `_id` (FerretDB v1, the developer's and CI's docstore, answers any
other query by reading the whole collection):

- `notes` (_id = notification id): what one notification says — kind, title, line, link, time — stored once however
  many persons it reaches (a class's mail, a school's news). A notification id is its time in microseconds (16
  digits) and a digest of the event it was made from: ids sort by time, and an event handled again makes the same id.
- `feeds` (_id = `<person>:<YYYYMM>`): a person's month — the notification ids it holds (`ids`) and those read
  (`read`); a feed page reads the months of the last six at once, by `_id`. Written with `$addToSet` only: a delivery
  done again changes nothing.
- `persons` (_id = person id): what the timeline knows of the directory — names, profiles per school, children and
  parents, e-mail addresses (identity's events).
- `preferences` (_id = person id): how the person wants each kind told, where they chose.
- `digests` (_id = `<YYYY-MM-DD>:<person>`): the notification ids waiting for the person's digest of that evening
  (a notification made after the evening's hour goes to the next evening's: the evening's are only read, sent and
  deleted, never written to meanwhile).
- `mails` (_id = notification id `:` person, or `digest:<day>:<person>`): e-mails to hand to the relay; deleted once
  handed (or given up on).
- `addresses` (_id = e-mail address): how many times in a row the relay refused it (bounces).
- `members` (_id = `school:<UAI>` or `group:<group id>`): the persons of a school, of a class or group (`ids`);
  `structures` (_id = structure id): a school's UAI and name.
- `news` (_id = news id): a news item — its author, audience, words, files, state (draft, scheduled, published,
  withdrawn), times, and at publication who it reached, by profile (`reached`); `boards` (_id = `<audience key>`):
  the news ids published to a school, a class or group, a circonscription — what its news page lists;
  `news_reads` (_id = news id): who has read it (`ids`); `news_comments` (_id = comment id, `news` its item).
- `circonscriptions` (_id = its code): a named set of schools and its advisors, as an operator declared it;
  `school_accounts` (_id = UAI): the "compte école" accounts that speak for a school.
- `files` / `file_chunks`: a news item's images and documents (`maille_kit.files`).
- `mail_notes` (_id = a mail's id): the notification that told of it — what the mail's recall withdraws.

The daily digest and the retention sweep read `digests`, `feeds` and `notes` whole: they are batch work, once a day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import DeleteOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError

from maille_kit.docstore import Docstore, by_ids, insert_missing

Doc = dict[str, Any]
NOTES, FEEDS, PERSONS, PREFERENCES, DIGESTS, MAILS, ADDRESSES = (
    "notes",
    "feeds",
    "persons",
    "preferences",
    "digests",
    "mails",
    "addresses",
)
MEMBERS, STRUCTURES, NEWS, BOARDS, READS, COMMENTS, CIRCONSCRIPTIONS, SCHOOL_ACCOUNTS = (
    "members",
    "structures",
    "news",
    "boards",
    "news_reads",
    "news_comments",
    "circonscriptions",
    "school_accounts",
)
FILES, FILE_CHUNKS = "files", "file_chunks"
MAIL_NOTES = "mail_notes"  # _id = a mail's id: the notification that tells of it (a recall withdraws it)
COLLECTIONS = (
    NOTES,
    FEEDS,
    PERSONS,
    PREFERENCES,
    DIGESTS,
    MAILS,
    ADDRESSES,
    MEMBERS,
    STRUCTURES,
    NEWS,
    BOARDS,
    READS,
    COMMENTS,
    CIRCONSCRIPTIONS,
    SCHOOL_ACCOUNTS,
    FILES,
    FILE_CHUNKS,
    MAIL_NOTES,
)
BATCH = 50  # updates per command (FerretDB v1 never answers an update command of 100 statements or more)


def time_key(at: datetime) -> str:
    """A time as the first 16 characters of a notification id (microseconds since the epoch)."""
    return f"{round(at.timestamp() * 1_000_000):016d}"


def note_time(note_id: str) -> datetime:
    return datetime.fromtimestamp(int(note_id[:16]) / 1_000_000, tz=UTC)


def month_key(person: str, note_id: str) -> str:
    return f"{person}:{note_time(note_id):%Y%m}"


def months_back(now: datetime, count: int) -> list[str]:
    """The `YYYYMM` of this month and the `count - 1` before it, newest first."""
    year, month = now.year, now.month
    found = []
    for _ in range(count):
        found.append(f"{year:04d}{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return found


class TimelineRepository:
    def __init__(self, docstore: Docstore) -> None:
        self.docstore = docstore
        self.db = db = docstore.db
        self.notes, self.feeds, self.persons = db[NOTES], db[FEEDS], db[PERSONS]
        self.preferences, self.digests, self.mails, self.addresses = (
            db[PREFERENCES],
            db[DIGESTS],
            db[MAILS],
            db[ADDRESSES],
        )

    async def _updates(self, collection: Any, updates: Sequence[Any]) -> None:
        for start in range(0, len(updates), BATCH):
            async with self.docstore.writing():
                await collection.bulk_write(list(updates[start : start + BATCH]), ordered=False)

    async def _add_to(self, collection: Any, keyed: dict[str, Doc], note_id: str) -> None:
        """`note_id` into the `ids` of each document of `keyed` (its `_id` -> what a new one holds besides). The first
        notification of a month or an evening makes each person's document: those not there are inserted together, 500 a
        command (on FerretDB an upsert costs a look-up and an insert per person, a refused insert as much); those there
        (or made meanwhile: an insert refused as a copy) get the id added, 50 a command. Done again: nothing changes."""
        there = list(await by_ids(collection, list(keyed), {"_id": 1}))
        known = set(there)
        fresh = [{"_id": key, **base, "ids": [note_id]} for key, base in keyed.items() if key not in known]
        for start in range(0, len(fresh), 500):
            chunk = fresh[start : start + 500]
            try:
                async with self.docstore.writing():
                    await collection.insert_many(chunk, ordered=False)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != 11000 for e in errors):
                    raise
                there += [chunk[e["index"]]["_id"] for e in errors]
        await self._updates(collection, [UpdateOne({"_id": key}, {"$addToSet": {"ids": note_id}}) for key in there])

    # notifications and feeds

    async def add_note(self, note: Doc) -> None:
        async with self.docstore.writing():
            await insert_missing(self.notes, [note])

    async def deliver(self, note_id: str, persons: Iterable[str]) -> None:
        """The notification into each person's month (done again: nothing changes)."""
        month = f"{note_time(note_id):%Y%m}"
        await self._add_to(self.feeds, {f"{p}:{month}": {"person": p, "month": month} for p in persons}, note_id)

    async def remember_mail(self, message_id: str, note_id: str) -> None:
        """Which notification tells of a mail (what a recall withdraws)."""
        async with self.docstore.writing():
            await insert_missing(self.db[MAIL_NOTES], [{"_id": message_id, "note": note_id}])

    async def mail_note(self, message_id: str) -> str | None:
        found = await self.db[MAIL_NOTES].find_one({"_id": message_id})
        return str(found["note"]) if found else None

    async def withdraw(self, note_id: str, persons: Sequence[str], days: Sequence[str]) -> None:
        """A notification taken back from these persons: out of their month's feed, their waiting digests, and the
        e-mails not yet handed to the relay (done again: nothing changes)."""
        month = f"{note_time(note_id):%Y%m}"
        await self._updates(
            self.feeds,
            [UpdateOne({"_id": f"{p}:{month}"}, {"$pull": {"ids": note_id, "read": note_id}}) for p in persons],
        )
        await self._updates(
            self.digests, [UpdateOne({"_id": f"{d}:{p}"}, {"$pull": {"ids": note_id}}) for d in days for p in persons]
        )
        await self.mails_done([f"{note_id}:{p}" for p in persons])

    async def months(self, person: str, months: Sequence[str]) -> list[Doc]:
        found = await by_ids(self.feeds, [f"{person}:{m}" for m in months])
        return [found[key] for key in (f"{person}:{m}" for m in months) if key in found]

    async def notes_by_id(self, ids: Sequence[str]) -> dict[str, Doc]:
        return await by_ids(self.notes, ids)

    async def mark_read(self, person: str, ids_by_month: dict[str, list[str]]) -> None:
        await self._updates(
            self.feeds,
            [
                UpdateOne({"_id": f"{person}:{month}"}, {"$addToSet": {"read": {"$each": ids}}})
                for month, ids in ids_by_month.items()
                if ids
            ],
        )

    async def forget_before(self, month: str, day: datetime) -> tuple[int, int]:
        """The months before `month` and the notes before `day` (retention): how many of each went."""
        async with self.docstore.writing():
            feeds = await self.feeds.delete_many({"month": {"$lt": month}})
        async with self.docstore.writing():
            notes = await self.notes.delete_many({"at": {"$lt": day}})
        return feeds.deleted_count, notes.deleted_count

    # the directory copy

    async def persons_by_id(self, ids: Sequence[str]) -> dict[str, Doc]:
        return await by_ids(self.persons, ids)

    async def person(self, person: str) -> Doc | None:
        return await self.persons.find_one({"_id": person})

    async def write_persons(self, replaced: Sequence[Doc], deleted: Sequence[str]) -> None:
        changes: list[Any] = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in replaced]
        changes += [DeleteOne({"_id": p}) for p in deleted]
        for start in range(0, len(changes), 500):
            async with self.docstore.writing():
                await self.persons.bulk_write(changes[start : start + 500], ordered=True)

    async def forget_person(self, person: str) -> None:
        """An erased person: their copy, preferences, digest and feed months (the notes others share stay)."""
        async with self.docstore.writing():
            await self.persons.delete_one({"_id": person})
            await self.preferences.delete_one({"_id": person})
            await self.digests.delete_many({"person": person})
            await self.feeds.delete_many({"person": person})

    # memberships and schools

    async def change_members(self, joined: dict[str, list[str]], left: dict[str, list[str]]) -> None:
        updates: list[Any] = [
            UpdateOne({"_id": key}, {"$addToSet": {"ids": {"$each": ids}}}, upsert=True) for key, ids in joined.items()
        ]
        updates += [UpdateOne({"_id": key}, {"$pullAll": {"ids": ids}}) for key, ids in left.items()]
        await self._updates(self.db[MEMBERS], updates)

    async def members(self, keys: Sequence[str]) -> dict[str, list[str]]:
        found = await by_ids(self.db[MEMBERS], keys)
        return {key: list(found.get(key, {}).get("ids", [])) for key in keys}

    async def write_structure(self, doc: Doc) -> None:
        async with self.docstore.writing():
            await self.db[STRUCTURES].replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def forget_structure(self, structure_id: str) -> None:
        async with self.docstore.writing():
            await self.db[STRUCTURES].delete_one({"_id": structure_id})

    async def uai_of_structure(self, structure_id: str) -> str | None:
        doc = await self.db[STRUCTURES].find_one({"_id": structure_id})
        return None if doc is None else doc.get("uai")

    async def school_names(self) -> dict[str, str]:
        """UAI -> the school's name (every school: a few hundred documents)."""
        return {d["uai"]: d.get("name", d["uai"]) async for d in self.db[STRUCTURES].find({}) if d.get("uai")}

    # news

    async def news(self, news_id: str) -> Doc | None:
        return await self.db[NEWS].find_one({"_id": news_id})

    async def news_by_id(self, ids: Sequence[str]) -> dict[str, Doc]:
        return await by_ids(self.db[NEWS], ids)

    async def put_news(self, doc: Doc) -> None:
        async with self.docstore.writing():
            await self.db[NEWS].replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def set_news(self, news_id: str, changes: Doc, *, state: str | None = None) -> bool:
        """Change a news item (only while it is in `state`, when given); whether it was."""
        query: Doc = {"_id": news_id} | ({"state": state} if state else {})
        async with self.docstore.writing():
            done = await self.db[NEWS].update_one(query, {"$set": changes})
        return done.matched_count == 1

    async def delete_news(self, news_id: str) -> None:
        async with self.docstore.writing():
            await self.db[NEWS].delete_one({"_id": news_id})

    async def drafts_of(self, author: str) -> list[Doc]:
        """An author's drafts and scheduled items (a scan: authors are few, and it is their page)."""
        return await self.db[NEWS].find({"author": author, "state": {"$in": ["draft", "scheduled"]}}).to_list(200)

    async def due_news(self, now: datetime) -> list[Doc]:
        return await self.db[NEWS].find({"state": "scheduled", "publish_at": {"$lte": now}}).to_list(100)

    async def pin(self, boards: Sequence[str], news_id: str) -> None:
        await self._updates(
            self.db[BOARDS], [UpdateOne({"_id": b}, {"$addToSet": {"ids": news_id}}, upsert=True) for b in boards]
        )

    async def unpin(self, boards: Sequence[str], news_id: str) -> None:
        await self._updates(self.db[BOARDS], [UpdateOne({"_id": b}, {"$pull": {"ids": news_id}}) for b in boards])

    async def board(self, key: str) -> list[str]:
        doc = await self.db[BOARDS].find_one({"_id": key})
        return list((doc or {}).get("ids", []))

    async def mark_news_read(self, news_id: str, person: str) -> None:
        async with self.docstore.writing():
            await self.db[READS].update_one({"_id": news_id}, {"$addToSet": {"ids": person}}, upsert=True)

    async def news_readers(self, news_id: str) -> set[str]:
        doc = await self.db[READS].find_one({"_id": news_id})
        return set((doc or {}).get("ids", []))

    async def add_comment(self, doc: Doc) -> None:
        async with self.docstore.writing():
            await self.db[COMMENTS].insert_one(doc)

    async def comments(self, news_id: str) -> list[Doc]:
        return await self.db[COMMENTS].find({"news": news_id}).sort("_id", 1).to_list(500)

    async def set_comment(self, comment_id: str, news_id: str, changes: Doc) -> bool:
        async with self.docstore.writing():
            done = await self.db[COMMENTS].update_one({"_id": comment_id, "news": news_id}, {"$set": changes})
        return done.matched_count == 1

    async def delete_comment(self, comment_id: str, news_id: str) -> bool:
        async with self.docstore.writing():
            done = await self.db[COMMENTS].delete_one({"_id": comment_id, "news": news_id})
        return done.deleted_count == 1

    # what operators declare

    async def circonscription(self, code: str) -> Doc | None:
        return await self.db[CIRCONSCRIPTIONS].find_one({"_id": code})

    async def circonscriptions(self) -> list[Doc]:
        return await self.db[CIRCONSCRIPTIONS].find({}).sort("_id", 1).to_list(10_000)

    async def put_circonscription(self, doc: Doc) -> None:
        async with self.docstore.writing():
            await self.db[CIRCONSCRIPTIONS].replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def delete_circonscription(self, code: str) -> bool:
        async with self.docstore.writing():
            done = await self.db[CIRCONSCRIPTIONS].delete_one({"_id": code})
        return done.deleted_count == 1

    async def school_accounts(self, uais: Sequence[str]) -> dict[str, list[str]]:
        found = await by_ids(self.db[SCHOOL_ACCOUNTS], uais)
        return {uai: list(found.get(uai, {}).get("ids", [])) for uai in uais}

    async def accounts_of(self, person: str) -> list[str]:
        """The schools a person is the "compte école" of (a small collection, read whole)."""
        return [d["_id"] async for d in self.db[SCHOOL_ACCOUNTS].find({"ids": person})]

    async def put_school_accounts(self, uai: str, persons: list[str]) -> None:
        async with self.docstore.writing():
            await self.db[SCHOOL_ACCOUNTS].replace_one({"_id": uai}, {"_id": uai, "ids": persons}, upsert=True)

    # preferences

    async def preferences_by_id(self, ids: Sequence[str]) -> dict[str, Doc]:
        return await by_ids(self.preferences, ids)

    async def set_preferences(self, person: str, kinds: dict[str, str]) -> None:
        async with self.docstore.writing():
            await self.preferences.update_one(
                {"_id": person},
                {"$set": {f"kinds.{k}": v for k, v in kinds.items()} | {"at": datetime.now(UTC)}},
                upsert=True,
            )

    # e-mail

    async def add_digests(self, note_id: str, persons: Iterable[str], day: str) -> None:
        """The notification into each person's digest of `day` (YYYY-MM-DD, the evening it is sent)."""
        await self._add_to(self.digests, {f"{day}:{p}": {"person": p, "day": day} for p in persons}, note_id)

    async def digest_keys(self, up_to: str) -> list[str]:
        """The digests waiting for `up_to` or an evening before it (`<day>:<person>`, by person): read whole, the cursor
        closed, before they are sent and deleted."""
        keys = [d["_id"] async for d in self.digests.find({}, {"_id": 1}).batch_size(10_000)]
        return sorted((k for k in keys if k[:10] <= up_to), key=lambda k: (k[11:], k[:10]))

    async def digests_by_id(self, keys: Sequence[str]) -> dict[str, Doc]:
        return await by_ids(self.digests, keys)

    async def digests_done(self, keys: Sequence[str]) -> None:
        """The digests handed over (an evening's digest is only ever added to before its evening: none is lost)."""
        if keys:
            async with self.docstore.writing():
                await self.digests.delete_many({"_id": {"$in": list(keys)}})

    async def queue_mails(self, mails: Sequence[Doc]) -> None:
        for start in range(0, len(mails), 500):
            async with self.docstore.writing():
                await insert_missing(self.mails, mails[start : start + 500])

    async def waiting_mails(self, limit: int) -> list[Doc]:
        return await self.mails.find({}).sort("_id", 1).limit(limit).to_list(limit)

    async def mails_done(self, ids: Sequence[str]) -> None:
        if ids:
            async with self.docstore.writing():
                await self.mails.delete_many({"_id": {"$in": list(ids)}})

    async def mail_retry(self, mail_id: str, tries: int, reason: str) -> None:
        async with self.docstore.writing():
            await self.mails.update_one({"_id": mail_id}, {"$set": {"tries": tries, "reason": reason[:300]}})

    async def addresses_by_id(self, addresses: Sequence[str]) -> dict[str, Doc]:
        return await by_ids(self.addresses, addresses)

    async def bounced(self, address: str, reason: str) -> None:
        async with self.docstore.writing():
            await self.addresses.update_one(
                {"_id": address},
                {"$inc": {"bounces": 1}, "$set": {"reason": reason[:300], "at": datetime.now(UTC)}},
                upsert=True,
            )

    async def delivered_to(self, addresses: Sequence[str]) -> None:
        """Addresses the relay took: their run of refusals is over."""
        if addresses:
            async with self.docstore.writing():
                await self.addresses.delete_many({"_id": {"$in": list(addresses)}})

    async def bounce_count(self) -> int:
        return sum([d.get("bounces", 0) async for d in self.addresses.find({}, {"bounces": 1})])
