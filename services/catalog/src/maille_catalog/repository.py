"""Every query of the catalog's resources, and nowhere else."""

from __future__ import annotations

from typing import Any

from maille_kit.docstore import Docstore

RESOURCES = "resources"
Doc = dict[str, Any]


class ResourceRepository:
    """The `resources` collection: one document per resource, `_id` its ARK."""

    def __init__(self, docstore: Docstore) -> None:
        self.collection = docstore.db[RESOURCES]

    async def get(self, ark: str) -> Doc | None:
        return await self.collection.find_one({"_id": ark})

    async def insert(self, doc: Doc) -> bool:
        """Insert a new resource; False when one with that ARK exists already."""
        from pymongo.errors import DuplicateKeyError

        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def replace(self, doc: Doc, *, version: int) -> bool:
        """Replace a resource if it is still at `version` (no lost update); whether it was."""
        result = await self.collection.replace_one({"_id": doc["_id"], "version": version}, doc)
        return result.modified_count == 1

    async def of_editor(self, editor: str, *, offset: int, limit: int) -> list[Doc]:
        cursor = self.collection.find({"idEditeur": editor}).sort("_id", 1).skip(offset).limit(limit)
        return [doc async for doc in cursor]
