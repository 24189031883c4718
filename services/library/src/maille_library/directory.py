"""What the library knows of the school directory, learnt from identity's events (it never reads identity's
collections): each person's schools (UAI) with their national profiles there, and their groups — the schools
whose CDI a person searches, and later the PMB readers to keep."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pymongo import DeleteOne, ReplaceOne

from maille.identity.v1 import directory_pb2 as pb
from maille_kit.docstore import Docstore
from maille_kit.events import Event

READERS = "readers"
SUBJECTS = ("identity.person.>",)
Doc = dict[str, Any]


def reader_doc(person: pb.Person, tenant: str) -> Doc:
    """A person as the library keeps them: their profiles per school, and their groups."""
    schools: dict[str, list[str]] = {}
    structures: dict[str, str] = {}
    for profile in person.profiles:
        if profile.uai and profile.code not in schools.setdefault(profile.uai, []):
            schools[profile.uai].append(profile.code)
            structures[profile.uai] = profile.structure_id
    return {
        "_id": person.id,
        "tenant": tenant,
        "nom": person.last_name,
        "prenom": person.first_name,
        "ecoles": schools,
        "structures": structures,
        "groupes": list(person.group_ids),
    }


def groups_in(reader: Doc, uai: str) -> list[str]:
    """The codes of the person's classes and groups in one school (group ids are `<structure id>$<code>`)."""
    prefix = f"{reader.get('structures', {}).get(uai, '')}$"
    return [g[len(prefix) :] for g in reader.get("groupes", []) if prefix != "$" and g.startswith(prefix)]


class Directory:
    """The library's copy of the directory."""

    def __init__(self, docstore: Docstore) -> None:
        self.docstore = docstore
        self.readers = docstore.db[READERS]
        # told of the persons changed or gone, with their schools now
        self.changed: Callable[[dict[str, list[str]]], Awaitable[None]] | None = None

    async def reader(self, person_id: str) -> Doc | None:
        return await self.readers.find_one({"_id": person_id})

    def readers_of_school(self, uai: str) -> AsyncIterator[Doc]:
        """The school's readers, by id."""
        return aiter(self.readers.find({f"ecoles.{uai}": {"$exists": True}}).sort("_id", 1))

    async def schools_of(self, person_id: str) -> list[str]:
        """The UAIs of the schools a person belongs to (none when the directory does not know them)."""
        doc = await self.reader(person_id)
        return sorted((doc or {}).get("ecoles", {}))

    async def handle(self, event: Event) -> None:
        """One of identity's person events: the copy follows it."""
        await self.handle_many([event])

    async def handle_many(self, events: list[Event]) -> None:
        """A batch of identity's person events: the readers written together (an import sends thousands), then the
        sync told of each change, in order."""
        changes: list[Any] = []
        told: dict[str, list[str]] = {}
        for event in events:
            fact = event.type.removeprefix("identity.person.").rpartition(".v")[0]
            if fact == "deleted":
                person_id = event.unpack(pb.PersonDeleted).id
                changes.append(DeleteOne({"_id": person_id}))
                told[person_id] = []
            elif fact in ("created", "updated"):
                doc = reader_doc(
                    (event.unpack(pb.PersonCreated) if fact == "created" else event.unpack(pb.PersonUpdated)).person,
                    event.tenant,
                )
                changes.append(ReplaceOne({"_id": doc["_id"]}, doc, upsert=True))
                told[doc["_id"]] = sorted(doc.get("ecoles", {}))
        if changes:
            async with self.docstore.writing():
                await self.readers.bulk_write(
                    changes, ordered=True
                )  # in order: a person created then deleted stays gone
        if self.changed is not None and told:
            await self.changed(told)
