"""Every query of the catalog's resources, subscriptions, assignments and favourites, and nowhere else (the
writes of a change go through its unit of work, `maille_kit.work`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from maille_kit.docstore import Docstore, by_ids

RESOURCES = "resources"
SUBSCRIPTIONS = "subscriptions"
ASSIGNMENTS = "assignments"  # _id `<subscription>|<person>`
FAVOURITES = "favourites"  # _id the person
Doc = dict[str, Any]


class ResourceRepository:
    """The `resources` collection: one document per resource, `_id` its ARK."""

    def __init__(self, docstore: Docstore) -> None:
        self.collection = docstore.db[RESOURCES]

    async def get(self, ark: str) -> Doc | None:
        return await self.collection.find_one({"_id": ark})

    async def of_editor(self, editor: str, *, after: str | None, limit: int) -> list[Doc]:
        query: Doc = {"idEditeur": editor, **({"_id": {"$gt": after}} if after is not None else {})}
        return [doc async for doc in self.collection.find(query).sort("_id", 1).limit(limit)]

    async def owner_and_state(self, ark: str) -> Doc | None:
        return await self.collection.find_one({"_id": ark}, {"idEditeur": 1, "statut": 1})

    def every(self) -> AsyncIterator[Doc]:
        return aiter(self.collection.find({}))


class SubscriptionRepository:
    """The `subscriptions` (one per GAR abonnement, `_id` its idAbonnement) and their `assignments`."""

    def __init__(self, docstore: Docstore) -> None:
        self.collection = docstore.db[SUBSCRIPTIONS]
        self.assignments = docstore.db[ASSIGNMENTS]

    async def get(self, subscription_id: str) -> Doc | None:
        return await self.collection.find_one({"_id": subscription_id})

    async def of_editor(
        self, editor: str, filters: dict[str, str], *, after: str | None = None, offset: int = 0, limit: int
    ) -> list[Doc]:
        """A page of the vendor's subscriptions: after an id (the API's cursor), or from an offset (the GAR's
        `debut`)."""
        query: Doc = {"idEditeur": editor, **filters, **({"_id": {"$gt": after}} if after is not None else {})}
        cursor = self.collection.find(query).sort("_id", 1).skip(offset).limit(limit)
        return [doc async for doc in cursor]

    async def per_person_of_school(self, uai: str) -> list[Doc]:
        return [doc async for doc in self.collection.find({"uaiEtab": uai, "typeAffectation": "INDIV"}).sort("_id", 1)]

    def covering(self, uai: str) -> AsyncIterator[Doc]:
        return aiter(self.collection.find({"uaiEtab": uai}))

    def past_their_end(self, now: datetime) -> AsyncIterator[Doc]:
        return aiter(self.collection.find({"expiree": False, "finValidite": {"$lte": now}}))

    def every(self) -> AsyncIterator[Doc]:
        return aiter(self.collection.find({}))

    async def assigned(self, subscription_id: str, uai: str) -> list[Doc]:
        cursor = self.assignments.find({"abonnement": subscription_id, "uai": uai}).sort("personne", 1)
        return [doc async for doc in cursor]

    async def assignments_by_key(self, keys: Sequence[str], projection: dict[str, Any]) -> dict[str, Doc]:
        return await by_ids(self.assignments, keys, projection)

    async def subscriptions_holding(self, person_id: str, uais: list[str]) -> set[str]:
        """The subscriptions of which `person_id` holds a licence in one of `uais` (a query over the assignments)."""
        cursor = self.assignments.find({"personne": person_id, "uai": {"$in": uais}}, {"abonnement": 1})
        return {doc["abonnement"] async for doc in cursor}


class FavouriteRepository:
    """The `favourites` of each person (`_id` the person, `arks` their favourite resources)."""

    def __init__(self, docstore: Docstore) -> None:
        self.collection = docstore.db[FAVOURITES]

    async def of(self, person_id: str) -> Doc | None:
        return await self.collection.find_one({"_id": person_id})
