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

    async def of_editor(self, editor: str, *, offset: int, limit: int) -> list[Doc]:
        cursor = self.collection.find({"idEditeur": editor}).sort("_id", 1).skip(offset).limit(limit)
        return [doc async for doc in cursor]
