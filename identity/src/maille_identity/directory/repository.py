"""Every query of the directory's collections, and nowhere else.

Collections (identity's own database):
- `tenants` (_id = the tenant: an académie's or a collectivité's scope), with its name, kind and the
  `idENT` the GAR knows it by;
- `structures` (_id = UAI), `groups` (_id = `<UAI>$<code>`: classes and groups), `referentials`
  (subjects and MEFs, _id = `<kind>:<code>`), `persons` (_id = the opaque ENT id);
- `school_admins` (_id = `<UAI>:<person>`): the persons a principal made administrators of their school;
- `import_state` / `import_manifest`: the import's state per tenant — for each AAF join key, the ENT id
  given to that person and what the last import saw of them (digests of their record and document,
  their structures and links) — as a few compressed snapshot documents written at the end of each import
  that completed, so that the next one loads it in a fraction of a second (FerretDB returns a few
  thousand documents a second on a scan). While an import runs, or after one that did not complete, the
  manifest says so and the next import rebuilds the state from `persons`. Anything else that changes
  `persons` must call `invalidate_snapshot`.
"""

from __future__ import annotations

import json
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from bson import Binary

from maille_kit.docstore import Docstore, by_ids

Doc = dict[str, Any]

STRUCTURES, GROUPS, REFERENTIALS, PERSONS = "structures", "groups", "referentials", "persons"
TENANTS = "tenants"
GAR_RUNS = "gar_runs"  # each GAR export's run (_id `<tenant>:<run>`): when, how it ended, what it wrote
SCHOOL_ADMINS = "school_admins"
STATE, MANIFEST = "import_state", "import_manifest"
SNAPSHOT_CHUNK = 20_000  # key entries per snapshot document (about 1 MB compressed)


class DirectoryRepository:
    """The directory's collections in identity's database."""

    def __init__(self, docstore: Docstore) -> None:
        self.docstore = docstore
        self.db = docstore.db

    async def tenant(self, tenant: str) -> Doc | None:
        return await self.db[TENANTS].find_one({"_id": tenant})

    async def structure(self, tenant: str, uai: str) -> Doc | None:
        return await self.db[STRUCTURES].find_one({"_id": uai, "tenant": tenant})

    async def principals(self, tenant: str, uai: str) -> list[Doc]:
        """The persons of the directory with a function DIR and a function at the school (the caller checks it is one
        function: FerretDB has no $elemMatch on several fields)."""
        return (
            await self.db[PERSONS]
            .find({"tenant": tenant, "functions.structure": uai, "functions.code": "DIR"})
            .to_list()
        )

    async def delegates(self, tenant: str, uai: str) -> list[Doc]:
        return await self.db[SCHOOL_ADMINS].find({"tenant": tenant, "uai": uai}).to_list()

    async def is_delegate(self, tenant: str, uai: str, person: str) -> bool:
        return await self.db[SCHOOL_ADMINS].find_one({"_id": f"{uai}:{person}", "tenant": tenant}) is not None

    async def put_delegate(self, tenant: str, uai: str, person: str, *, by: str, at: Any) -> None:
        async with self.docstore.writing():
            await self.db[SCHOOL_ADMINS].replace_one(
                {"_id": f"{uai}:{person}"},
                {"_id": f"{uai}:{person}", "tenant": tenant, "uai": uai, "person": person, "by": by, "at": at},
                upsert=True,
            )

    async def remove_delegate(self, tenant: str, uai: str, person: str) -> bool:
        async with self.docstore.writing():
            return (
                await self.db[SCHOOL_ADMINS].delete_one({"_id": f"{uai}:{person}", "tenant": tenant})
            ).deleted_count == 1

    async def record_gar_run(self, doc: Doc) -> None:
        async with self.docstore.writing():
            await self.db[GAR_RUNS].replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def gar_runs(self, tenant: str, limit: int = 30) -> list[Doc]:
        """The tenant's last GAR export runs, newest first (one a night: a small collection, read whole)."""
        runs = [doc async for doc in self.db[GAR_RUNS].find({"tenant": tenant})]
        return sorted(runs, key=lambda d: d["started_at"], reverse=True)[:limit]

    async def tenants(self) -> list[Doc]:
        return await self.db[TENANTS].find({}).to_list()

    async def imported_tenants(self) -> list[str]:
        """The tenants a directory was imported for (each has its import's manifest)."""
        return [doc["_id"] async for doc in self.db[MANIFEST].find({}, {"_id": 1})]

    async def put_tenant(self, doc: Doc) -> None:
        async with self.docstore.writing():
            await self.db[TENANTS].replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def structures(self, tenant: str) -> list[Doc]:
        return await self.db[STRUCTURES].find({"tenant": tenant}).to_list()

    async def groups(self, tenant: str) -> list[Doc]:
        return await self.db[GROUPS].find({"tenant": tenant}).to_list()

    async def referentials(self) -> list[Doc]:
        return await self.db[REFERENTIALS].find({}).to_list()

    async def stream_persons(self, tenant: str, *, kinds: Sequence[str] | None = None) -> AsyncIterator[Doc]:
        """The tenant's persons (of these kinds), a batch at a time: the whole directory is never in memory at once."""
        query: Doc = {"tenant": tenant} if kinds is None else {"tenant": tenant, "kind": {"$in": list(kinds)}}
        async for doc in self.db[PERSONS].find(query, batch_size=2000):
            yield doc

    async def persons(self, tenant: str) -> list[Doc]:
        return await self.db[PERSONS].find({"tenant": tenant}).to_list()

    async def snapshot(self, tenant: str) -> list[Doc] | None:
        """The key entries of the last completed import, or None when there is no trustworthy snapshot."""
        manifest = await self.db[MANIFEST].find_one({"_id": tenant})
        if manifest is None or manifest.get("state") != "complete":
            return None
        entries: list[Doc] = []
        for n in range(manifest["chunks"]):
            chunk = await self.db[STATE].find_one({"_id": f"{tenant}:{manifest['generation']}:{n}"})
            if chunk is None:
                return None
            entries += json.loads(zlib.decompress(chunk["data"]))
        return entries

    async def invalidate_snapshot(self, tenant: str) -> None:
        """Say that `persons` is changing: the snapshot may no longer match it."""
        async with self.docstore.writing():
            await self.db[MANIFEST].update_one({"_id": tenant}, {"$set": {"state": "changing"}}, upsert=True)

    async def save_snapshot(self, tenant: str, entries: list[Doc]) -> None:
        """Write the key entries as a new snapshot generation, then point the manifest at it."""
        old = await self.db[MANIFEST].find_one({"_id": tenant}) or {}
        generation = secrets.token_hex(6)
        chunks = [
            {
                "_id": f"{tenant}:{generation}:{n}",
                "t": tenant,
                "data": Binary(
                    zlib.compress(
                        json.dumps(entries[start : start + SNAPSHOT_CHUNK], separators=(",", ":")).encode(), 1
                    )
                ),
            }
            for n, start in enumerate(range(0, len(entries), SNAPSHOT_CHUNK))
        ]
        async with self.docstore.writing():
            for chunk in chunks:
                await self.db[STATE].insert_one(chunk)
            await self.db[MANIFEST].replace_one(
                {"_id": tenant}, {"generation": generation, "chunks": len(chunks), "state": "complete"}, upsert=True
            )
            if old.get("generation"):
                await self.db[STATE].delete_many(
                    {"_id": {"$in": [f"{tenant}:{old['generation']}:{n}" for n in range(old.get("chunks", 0))]}}
                )

    async def persons_by_id(self, ids: Iterable[str]) -> list[Doc]:
        """Each person by key: an `_id $in` reads the whole collection on FerretDB (a parent's /me took 10 s
        while an import ran)."""
        return list((await by_ids(self.db[PERSONS], list(ids))).values())

    async def persons_by_email(self, tenant: str, emails: Sequence[str]) -> list[Doc]:
        """Persons holding one of these addresses (agents matched by their academic email)."""
        return await self.db[PERSONS].find({"tenant": tenant, "emails": {"$in": list(emails)}}).to_list()

    async def pupils_born(self, tenant: str, birth_date: str) -> list[Doc]:
        """Pupils born that day (EduConnect's fallback match by names, birth date and school)."""
        return await self.db[PERSONS].find({"tenant": tenant, "kind": "pupil", "birth_date": birth_date}).to_list()

    async def person(self, person_id: str) -> Doc | None:
        return await self.db[PERSONS].find_one({"_id": person_id})


class StructureNames:
    """A tenant's schools by UAI, read again at most every `seconds` (every sign-in lands on /me)."""

    def __init__(self, repo: DirectoryRepository, *, seconds: float = 30.0) -> None:
        self.repo = repo
        self.seconds = seconds
        self._by_tenant: dict[str, tuple[float, dict[str, str]]] = {}

    async def of(self, tenant: str) -> dict[str, str]:
        found = self._by_tenant.get(tenant)
        if found is None or time.monotonic() - found[0] > self.seconds:
            names = {doc["_id"]: doc["name"] for doc in await self.repo.structures(tenant)}
            found = self._by_tenant[tenant] = (time.monotonic(), names)
        return found[1]
