"""Every query of the directory's collections, and nowhere else.

Collections (identity's own database):
- `structures` (_id = UAI), `groups` (_id = `<UAI>$<code>`: classes and groups), `referentials`
  (subjects and MEFs, _id = `<kind>:<code>`), `persons` (_id = the opaque ENT id);
- `person_keys`: per tenant and AAF join key, the ENT id given to that person and what the last import
  saw of them (a digest of their record, their structures, their links). It is small, so an import loads
  it whole and compares against it without reading the persons themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pymongo import ReplaceOne

from maille_kit.docstore import Docstore

Doc = dict[str, Any]

STRUCTURES, GROUPS, REFERENTIALS, PERSONS, PERSON_KEYS = "structures", "groups", "referentials", "persons", "person_keys"


class DirectoryRepository:
    """The directory's collections in identity's database."""

    def __init__(self, docstore: Docstore) -> None:
        self.docstore = docstore
        self.db = docstore.db

    async def structures(self, tenant: str) -> list[Doc]:
        return await self.db[STRUCTURES].find({"tenant": tenant}).to_list()

    async def groups(self, tenant: str) -> list[Doc]:
        return await self.db[GROUPS].find({"tenant": tenant}).to_list()

    async def referentials(self) -> list[Doc]:
        return await self.db[REFERENTIALS].find({}).to_list()

    async def person_keys(self, tenant: str) -> list[Doc]:
        return await self.db[PERSON_KEYS].find({"t": tenant}).to_list()

    async def persons_by_id(self, ids: Iterable[str]) -> list[Doc]:
        ids = list(ids)
        found: list[Doc] = []
        for start in range(0, len(ids), 500):
            found += await self.db[PERSONS].find({"_id": {"$in": ids[start : start + 500]}}).to_list()
        return found

    async def person(self, person_id: str) -> Doc | None:
        return await self.db[PERSONS].find_one({"_id": person_id})

    async def expired(self, tenant: str, now: datetime) -> list[Doc]:
        """Persons detached by a full feed whose grace period is over."""
        return await self.db[PERSONS].find({"tenant": tenant, "delete_after": {"$lte": now}}).to_list()

    async def write(
        self,
        collection: str,
        *,
        inserts: Sequence[Doc] = (),
        replaces: Sequence[Doc] = (),
        deletes: Sequence[str] = (),
    ) -> None:
        """Apply a batch of writes to one collection."""
        target = self.db[collection]
        async with self.docstore.writing():
            if inserts:
                await target.insert_many(list(inserts), ordered=False)
            if replaces:
                await target.bulk_write([ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in replaces], ordered=False)
            for start in range(0, len(deletes), 500):
                await target.delete_many({"_id": {"$in": list(deletes[start : start + 500])}})
