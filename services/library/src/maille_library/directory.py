"""What the library knows of the school directory, learnt from identity's events (it never reads identity's
collections): each person's schools (UAI) with their national profiles there, and their groups — the schools
whose CDI a person searches, and later the PMB readers to keep."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pymongo import DeleteOne, ReplaceOne

from maille.identity.v1 import directory_pb2 as pb
from maille_kit.directory import NAMES, changes, schools_of
from maille_kit.docstore import Docstore, by_ids
from maille_kit.events import Event

READERS = "readers"
SUBJECTS = ("identity.person.>",)
Doc = dict[str, Any]


KEPT = ("profiles", "last_name", "first_name", "group_ids", "relatives")  # what reader_doc reads of a person


def reader_doc(person: pb.Person, tenant: str) -> Doc:
    """A person as the library keeps them: their profiles per school, their groups, and a pupil's parents."""
    schools = schools_of(person)
    structures = {p.uai: p.structure_id for p in person.profiles if p.uai in schools}
    return {
        "_id": person.id,
        "tenant": tenant,
        "nom": person.last_name,
        "prenom": person.first_name,
        "ecoles": schools,
        "structures": structures,
        "groupes": list(person.group_ids),
        "parents": [r.person_id for r in person.relatives],  # who may read a pupil's loans
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

    async def handle_many(self, events: list[Event]) -> None:
        """A batch of identity's person events: the readers written together (an import sends thousands), then the
        sync told of each change, in order."""
        found = changes(events)
        latest = {
            person_id: reader_doc(person, found.tenants[person_id]) if person is not None else None
            for person_id, person in found.persons.items()
        }
        # Only the readers whose copy changes are written and synced: a delta names persons for an address, a
        # mobile… the library keeps none of them. An update that names only the names changed the copy: not read.
        renamed = found.changed_only(NAMES)
        before = await by_ids(self.readers, [i for i in latest if i not in renamed])
        writes: list[Any] = []
        told: dict[str, list[str]] = {}
        for person_id, reader in latest.items():
            if reader is None:
                writes.append(DeleteOne({"_id": person_id}))
                told[person_id] = []
            elif person_id in renamed or before.get(person_id) != reader:
                writes.append(ReplaceOne({"_id": person_id}, reader, upsert=True))
                told[person_id] = sorted(reader.get("ecoles", {}))
        if writes:
            async with self.docstore.writing():
                await self.readers.bulk_write(writes, ordered=False)  # one change a person
        if self.changed is not None and told:
            await self.changed(told)
