"""Every query of the observatory's collections, and nowhere else. Everything is read and written by `_id`.

- `days` (_id = "<day>|<UAI>"), `weeks` (_id = "<ISO week>|<UAI>"), `months` (_id = "<month>|<UAI>"): one school's
  rollups (`rollups.Rollup.doc`): counts, the few persons behind each (up to five pseudonyms, then only "enough"),
  the sketches of distinct persons and their estimates, the stream sequence of the last use folded in.
- `scopes` (_id = "<month>|<scope>"): a month's figures merged for a scope — the académie, a district, a type of
  school, a collectivité (`views.Summary`): what the dashboards read beside the schools' own months.
- `schools` (_id = UAI): name and type, from the directory. `persons` (_id = person id): only what the populations
  need — the (school, profile) pairs, the classes, a pupil's adults, the schools one directs.
- `territories` (_id = territory id): an operator's declaration — a collectivité's or a district's schools, and who
  views them (person ids); the académie's viewers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from pymongo import ReplaceOne

from maille_kit.docstore import Docstore, by_ids

Doc = dict[str, Any]
DAYS, WEEKS, MONTHS, SCOPES = "days", "weeks", "months", "scopes"
SCHOOLS, PERSONS, TERRITORIES = "schools", "persons", "territories"
COLLECTIONS = (DAYS, WEEKS, MONTHS, SCOPES, SCHOOLS, PERSONS, TERRITORIES)
BATCH = 50  # writes per command (FerretDB v1 never answers an update command of 100 statements or more)


class ObservatoryRepository:
    def __init__(self, docstore: Docstore) -> None:
        self.docstore = docstore
        self.db = docstore.db

    async def rollups(
        self, collection: str, ids: Sequence[str], projection: dict[str, Any] | None = None
    ) -> dict[str, Doc]:
        return await by_ids(self.db[collection], ids, projection)

    async def write(self, collection: str, docs: Sequence[Doc]) -> None:
        """Replace (or create) whole documents, fifty a command."""
        for start in range(0, len(docs), BATCH):
            chunk = docs[start : start + BATCH]
            await self.db[collection].bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in chunk])

    async def scopes(self, ids: Sequence[str]) -> dict[str, Doc]:
        return await by_ids(self.db[SCOPES], ids)

    async def every(self, collection: str) -> AsyncIterator[Doc]:
        async for doc in self.db[collection].find({}):
            yield doc

    async def persons(self, ids: Sequence[str]) -> dict[str, Doc]:
        return await by_ids(self.db[PERSONS], ids)

    async def write_persons(self, docs: Sequence[Doc], gone: Sequence[str]) -> None:
        await self.write(PERSONS, docs)
        for start in range(0, len(gone), BATCH):
            await self.db[PERSONS].delete_many({"_id": {"$in": list(gone[start : start + BATCH])}})

    async def write_school(self, doc: Doc) -> None:
        await self.write(SCHOOLS, [doc])

    async def forget_school(self, uai: str) -> None:
        await self.db[SCHOOLS].delete_one({"_id": uai})

    async def put_territory(self, doc: Doc) -> None:
        await self.write(TERRITORIES, [doc])

    async def delete_territory(self, territory_id: str) -> bool:
        return bool((await self.db[TERRITORIES].delete_one({"_id": territory_id})).deleted_count)
