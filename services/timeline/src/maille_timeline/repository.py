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
- `digests` (_id = person id): the notification ids waiting for the person's next daily digest.
- `mails` (_id = notification id `:` person, or `digest:<day>:<person>`): e-mails to hand to the relay; deleted once
  handed (or given up on).
- `addresses` (_id = e-mail address): how many times in a row the relay refused it (bounces).

The daily digest and the retention sweep read `digests`, `feeds` and `notes` whole: they are batch work, once a day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import DeleteOne, ReplaceOne, UpdateOne

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
COLLECTIONS = (NOTES, FEEDS, PERSONS, PREFERENCES, DIGESTS, MAILS, ADDRESSES)
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
        db = docstore.db
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

    # notifications and feeds

    async def add_note(self, note: Doc) -> None:
        async with self.docstore.writing():
            await insert_missing(self.notes, [note])

    async def deliver(self, note_id: str, persons: Iterable[str]) -> None:
        """The notification into each person's month (done again: nothing changes)."""
        month = f"{note_time(note_id):%Y%m}"
        await self._updates(
            self.feeds,
            [
                UpdateOne(
                    {"_id": f"{p}:{month}"},
                    {"$addToSet": {"ids": note_id}, "$setOnInsert": {"person": p, "month": month}},
                    upsert=True,
                )
                for p in persons
            ],
        )

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
            await self.digests.delete_one({"_id": person})
            await self.feeds.delete_many({"person": person})

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

    async def add_digests(self, note_id: str, persons: Iterable[str]) -> None:
        await self._updates(
            self.digests,
            [UpdateOne({"_id": p}, {"$addToSet": {"ids": note_id}}, upsert=True) for p in persons],
        )

    async def digest_persons(self) -> list[str]:
        """Who has a digest waiting (read whole, the cursor closed, before the digests are sent and taken off)."""
        return sorted([d["_id"] async for d in self.digests.find({}, {"_id": 1}).batch_size(10_000)])

    async def digests_by_id(self, persons: Sequence[str]) -> dict[str, Doc]:
        return await by_ids(self.digests, persons)

    async def digests_done(self, person_ids: Sequence[str], sent: dict[str, list[str]]) -> None:
        """The digests handed over: their notification ids taken off (any that arrived meanwhile stay)."""
        await self._updates(
            self.digests, [UpdateOne({"_id": p}, {"$pullAll": {"ids": sent[p]}}) for p in person_ids if p in sent]
        )
        async with self.docstore.writing():
            await self.digests.delete_many({"_id": {"$in": list(person_ids)}, "ids": {"$size": 0}})

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
