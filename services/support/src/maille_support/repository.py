"""Every query of support's collections, and nowhere else.

The serving path reads and writes by `_id` (FerretDB v1, the developer's and CI's docstore, answers any other query by
reading the whole collection); the queues and the knowledge base's search are answered from memory (`queue.py`,
`knowledge.py`), which reads `requests` and `articles` whole at start and then follows the changes.

- `requests` (_id = request id): a help request — who opened it and for which school, its category, subject,
  description, the context the portal added, its status and where it is (`desk`: "school" or a desk id), its
  assignee, its clocks (opened, first answer, waiting since, time spent waiting, resolved), the ids of its messages
  (`messages`), and its link to a desk's tracker (`tracker`). Changed under its `version` (a guarded update): two
  people answering at once never lose one another's change.
- `messages` (_id = message id): a reply the person sees, or an internal note (`internal`), with its files.
- `persons`, `schools` (_id = UAI), `referents` (_id = UAI): the directory's copy, and who takes a school's requests
  first (`named` by its principal; `direction`, `function:<code>` and `staff` — whom the principal may name — kept
  from the directory).
- `desks` (_id = desk id): an operator-declared desk — kind, schools, agents, service levels, its Redmine (the API key
  sealed). `trackers` (_id = `<desk>:<issue>`): which request a tracker's issue is; `cursors` (_id = desk id): how
  far the desk's tracker has been read; `pushes` (_id = request id): which replica is taking a request to its desk's
  tracker, until when (a lease: a replica that dies leaves it to expire).
- `articles` (_id = article id), `votes` (_id = `<article>:<person>`): the knowledge base, and who said an article
  answered their question.
- `files` / `file_chunks`: screenshots, attachments and articles' images (`maille_kit.files`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReplaceOne, UpdateOne
from pymongo.errors import DuplicateKeyError

from maille_kit.docstore import Docstore, by_ids, insert_missing

Doc = dict[str, Any]
REQUESTS, MESSAGES, PERSONS, SCHOOLS, REFERENTS = "requests", "messages", "persons", "schools", "referents"
DESKS, TRACKERS, CURSORS, ARTICLES, VOTES = "desks", "trackers", "cursors", "articles", "votes"
PUSHES, FILES, FILE_CHUNKS = "pushes", "files", "file_chunks"
COLLECTIONS = (
    REQUESTS,
    MESSAGES,
    PERSONS,
    SCHOOLS,
    REFERENTS,
    DESKS,
    TRACKERS,
    CURSORS,
    PUSHES,
    ARTICLES,
    VOTES,
    FILES,
    FILE_CHUNKS,
)
SUMMARY = {
    "description": 0,
    "context": 0,
    "files": 0,
    "messages": 0,
}
BATCH = 50  # updates per command (FerretDB v1 never answers an update command of 100 statements or more)


class SupportRepository:
    def __init__(self, docstore: Docstore) -> None:
        self.docstore = docstore
        self.db = docstore.db

    # requests and messages

    async def request(self, request_id: str) -> Doc | None:
        return await self.db[REQUESTS].find_one({"_id": request_id})

    async def requests_by_id(self, ids: Sequence[str]) -> dict[str, Doc]:
        return await by_ids(self.db[REQUESTS], ids, SUMMARY)

    async def all_requests(self) -> list[Doc]:
        """Every request's summary (a replica's queues at start, and at each refresh)."""
        return [doc async for doc in self.db[REQUESTS].find({}, SUMMARY)]

    async def messages(self, ids: Sequence[str]) -> dict[str, Doc]:
        return await by_ids(self.db[MESSAGES], ids)

    # the directory

    async def person(self, person_id: str) -> Doc | None:
        return await self.db[PERSONS].find_one({"_id": person_id})

    async def persons_by_id(self, ids: Sequence[str]) -> dict[str, Doc]:
        return await by_ids(self.db[PERSONS], ids)

    async def write_persons(
        self, replaced: Sequence[Doc], deleted: Sequence[str], renamed: Collection[str] = frozenset()
    ) -> None:
        """Write the persons' copies and where they are on the staff; `renamed`: those known to have changed their
        names alone (written without a look at the copy before: their place on the staff is as it was)."""
        before = await self.persons_by_id([d["_id"] for d in replaced if d["_id"] not in renamed] + list(deleted))
        # Only the copies that change (an import's delta names persons for fields support does not keep).
        replaced = [d for d in replaced if d["_id"] in renamed or before.get(d["_id"]) != d]
        deleted = [p for p in deleted if p in before]
        async with self.docstore.writing():
            for start in range(0, len(replaced), BATCH):
                await self.db[PERSONS].bulk_write(
                    [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in replaced[start : start + BATCH]],
                    ordered=False,
                )
            if deleted:
                await self.db[PERSONS].delete_many({"_id": {"$in": list(deleted)}})
        changes: dict[tuple[str, str], dict[str, list[str]]] = {}
        now = {d["_id"]: d for d in replaced if d["_id"] not in renamed}
        for pid in [*now, *deleted]:
            old, new = staff_of(before.get(pid)), staff_of(now.get(pid))
            for key in new - old:
                changes.setdefault(key, {"add": [], "pull": []})["add"].append(pid)
            for key in old - new:
                changes.setdefault(key, {"add": [], "pull": []})["pull"].append(pid)
        if changes:
            updates = []
            for (uai, role), change in changes.items():
                if change["add"]:
                    updates.append(UpdateOne({"_id": uai}, {"$addToSet": {role: {"$each": change["add"]}}}))
                if change["pull"]:
                    updates.append(UpdateOne({"_id": uai}, {"$pull": {role: {"$in": change["pull"]}}}))
            await self._ensure(REFERENTS, [uai for uai, _ in changes])
            async with self.docstore.writing():
                for start in range(0, len(updates), BATCH):
                    await self.db[REFERENTS].bulk_write(updates[start : start + BATCH], ordered=False)

    async def _ensure(self, collection: str, ids: Sequence[str]) -> None:
        """The documents of these `_id`s there (inserted empty where missing: FerretDB's upserts are slow)."""
        known = await by_ids(self.db[collection], ids, {"_id": 1})
        missing = [{"_id": i} for i in dict.fromkeys(ids) if i not in known]
        if missing:
            async with self.docstore.writing():
                await insert_missing(self.db[collection], missing)

    async def write_school(self, doc: Doc) -> None:
        async with self.docstore.writing():
            await self.db[SCHOOLS].replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def schools_by_id(self, uais: Sequence[str]) -> dict[str, Doc]:
        return await by_ids(self.db[SCHOOLS], uais)

    async def referents(self, uai: str) -> Doc:
        return await self.db[REFERENTS].find_one({"_id": uai}) or {"_id": uai}

    async def name_referents(self, uai: str, persons: list[str]) -> None:
        await self._ensure(REFERENTS, [uai])
        async with self.docstore.writing():
            await self.db[REFERENTS].update_one({"_id": uai}, {"$set": {"named": persons}})

    # desks and their trackers

    async def desks(self) -> list[Doc]:
        return [doc async for doc in self.db[DESKS].find({})]

    async def put_desk(self, doc: Doc) -> None:
        async with self.docstore.writing():
            await self.db[DESKS].replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def delete_desk(self, desk_id: str) -> bool:
        async with self.docstore.writing():
            return (await self.db[DESKS].delete_one({"_id": desk_id})).deleted_count == 1

    async def tracked(self, desk_id: str, issues: Sequence[int]) -> dict[int, str]:
        """Which request each of these issues of the desk's tracker is."""
        found = await by_ids(self.db[TRACKERS], [f"{desk_id}:{i}" for i in issues])
        return {int(key.rsplit(":", 1)[1]): doc["request"] for key, doc in found.items()}

    async def track(self, desk_id: str, issue: int, request_id: str) -> None:
        async with self.docstore.writing():
            await insert_missing(self.db[TRACKERS], [{"_id": f"{desk_id}:{issue}", "request": request_id}])

    async def take_push(self, request_id: str, holder: str, seconds: float) -> bool:
        """Whether `holder` may take the request to its tracker now: no other holds it, or their lease is past."""
        now = datetime.now(UTC)
        lease = {"by": holder, "until": now + timedelta(seconds=seconds)}
        async with self.docstore.writing():
            try:
                await self.db[PUSHES].insert_one({"_id": request_id, **lease})
                return True
            except DuplicateKeyError:
                taken = await self.db[PUSHES].find_one_and_update(
                    {"_id": request_id, "until": {"$lt": now}}, {"$set": lease}
                )
                return taken is not None

    async def drop_push(self, request_id: str, holder: str) -> None:
        async with self.docstore.writing():
            await self.db[PUSHES].delete_one({"_id": request_id, "by": holder})

    async def cursor(self, desk_id: str) -> Doc:
        return await self.db[CURSORS].find_one({"_id": desk_id}) or {"_id": desk_id}

    async def set_cursor(self, desk_id: str, values: Doc) -> None:
        async with self.docstore.writing():
            await self.db[CURSORS].update_one({"_id": desk_id}, {"$set": values}, upsert=True)

    # the knowledge base

    async def articles(self) -> list[Doc]:
        return [doc async for doc in self.db[ARTICLES].find({})]

    async def article(self, article_id: str) -> Doc | None:
        return await self.db[ARTICLES].find_one({"_id": article_id})

    async def put_article(self, doc: Doc) -> None:
        async with self.docstore.writing():
            await self.db[ARTICLES].replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def seed_articles(self, docs: Sequence[Doc]) -> None:
        async with self.docstore.writing():
            await insert_missing(self.db[ARTICLES], docs)

    async def delete_article(self, article_id: str) -> None:
        async with self.docstore.writing():
            await self.db[ARTICLES].delete_one({"_id": article_id})

    async def vote(self, article_id: str, person: str, helped: bool) -> bool:
        """The person's word on an article (once each: said again, it replaces); whether it changed."""
        key = f"{article_id}:{person}"
        before = await self.db[VOTES].find_one({"_id": key})
        if before is not None and before.get("helped") == helped:
            return False
        async with self.docstore.writing():
            await self.db[VOTES].replace_one({"_id": key}, {"_id": key, "helped": helped}, upsert=True)
            change = {"helped": 1 if helped else 0, "unhelped": 0 if helped else 1}
            if before is not None:
                change = {k: v - (1 if (k == "helped") == before.get("helped") else 0) for k, v in change.items()}
            await self.db[ARTICLES].update_one({"_id": article_id}, {"$inc": change})
        return True


PUPIL_OR_PARENT = frozenset({"National_ELV", "National_TUT"})


def staff_of(doc: Doc | None) -> set[tuple[str, str]]:
    """Where a person is on the staff (`staff`: whom the direction may name referents), direction (`direction`) or
    holds a function (`function:<code>`), as (UAI, key)."""
    if doc is None:
        return set()
    staff = {(uai, "staff") for uai, codes in doc.get("schools", {}).items() if set(codes) - PUPIL_OR_PARENT}
    found = {(uai, "direction") for uai, codes in doc.get("schools", {}).items() if "National_DIR" in codes}
    found |= {(uai, "direction") for uai, codes in doc.get("functions", {}).items() if "DIR" in codes}
    found |= {(uai, f"function:{code}") for uai, codes in doc.get("functions", {}).items() for code in codes}
    return found | staff
