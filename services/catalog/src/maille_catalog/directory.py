"""What the catalog knows of the school directory, learnt from identity's events (it never reads identity's
collections): schools by UAI, classes and groups, and each person's schools, publics and groups — enough to
check a subscription's UAIs, expand a class into persons, and tell what a person's médiacentre holds.

A person who leaves a school loses the licences assigned to them there; a person who leaves the directory
loses all of theirs; a school that leaves the directory flags the subscriptions that cover it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ReplaceOne, UpdateOne

from maille.identity.v1 import directory_pb2 as pb
from maille_contracts import PERSON_CREATED, PERSON_UPDATED
from maille_kit.docstore import Docstore, by_ids
from maille_kit.events import Event

SCHOOLS, GROUPS, PERSONS = "schools", "groups", "persons"
SUBJECTS = ("identity.structure.>", "identity.group.>", "identity.person.>")
PERSON_CREATED, PERSON_UPDATED = PERSON_CREATED, PERSON_UPDATED
Doc = dict[str, Any]

# The GAR's target publics of the national profiles; parents (National_TUT) are no public of a resource.
PUBLIC_OF = {
    "National_ELV": "ELEVE",
    "National_ENS": "ENSEIGNANT",
    "National_DOC": "DOCUMENTALISTE",
    "National_DIR": "AUTRE PERSONNEL",
    "National_EVS": "AUTRE PERSONNEL",
    "National_ETA": "AUTRE PERSONNEL",
}
DIRECTION = "National_DIR"


KEPT = ("profiles", "group_ids")  # what person_doc reads of a person


def person_doc(person: pb.Person, tenant: str) -> Doc:
    """A person as the catalog keeps them: per school (UAI) their publics, and their groups — no names, which it never
    shows (a delta changing first names then writes nothing here)."""
    publics: dict[str, list[str]] = {}
    managers: list[str] = []
    for profile in person.profiles:
        public = PUBLIC_OF.get(profile.code)
        if public is not None and public not in publics.setdefault(profile.uai, []):
            publics[profile.uai].append(public)
        if profile.code == DIRECTION and profile.uai not in managers:
            managers.append(profile.uai)
    schools = [uai for uai, kinds in publics.items() if kinds]
    return {
        "_id": person.id,
        "tenant": tenant,
        "etablissements": schools,
        "publics": [f"{uai}|{public}" for uai, kinds in publics.items() for public in kinds],
        "groupes": list(person.group_ids),
        "responsableAffectation": managers,
    }


def publics_in(person: Doc, uai: str) -> list[str]:
    """The person's publics in one school."""
    return [entry.partition("|")[2] for entry in person.get("publics", []) if entry.partition("|")[0] == uai]


class Directory:
    """The catalog's copy of the directory."""

    def __init__(self, docstore: Docstore) -> None:
        self.schools = docstore.db[SCHOOLS]
        self.groups = docstore.db[GROUPS]
        self.persons = docstore.db[PERSONS]

    async def person(self, person_id: str) -> Doc | None:
        return await self.persons.find_one({"_id": person_id})

    async def persons_by_id(self, ids: list[str]) -> dict[str, Doc]:
        return await by_ids(self.persons, ids)

    async def members(self, group_ids: list[str]) -> list[Doc]:
        """Every person of these classes or groups (each group keeps its members: no query over all persons)."""
        groups = await by_ids(self.groups, group_ids, {"membres": 1})
        ids = sorted({member for group in groups.values() for member in group.get("membres", [])})
        return list((await self.persons_by_id(ids)).values())

    async def group(self, group_id: str) -> Doc | None:
        return await self.groups.find_one({"_id": group_id})

    async def unknown_schools(self, uais: list[str]) -> list[str]:
        """Those of `uais` that are not schools of the directory (now)."""
        known = {doc["_id"] async for doc in self.schools.find({"_id": {"$in": uais}, "retire": False}, {"_id": 1})}
        return [uai for uai in uais if uai not in known]


class DirectoryFollower:
    """Handles identity's directory events: keeps the copy, and tells the catalog what follows from them."""

    def __init__(
        self,
        directory: Directory,
        *,
        left_schools: Callable[[str, list[str]], Awaitable[None]],
        school_removed: Callable[[str], Awaitable[None]],
        person_changed: Callable[[str], None],
    ) -> None:
        self.directory = directory
        self.left_schools = left_schools
        self.school_removed = school_removed
        self.person_changed = person_changed

    async def handle(self, event: Event) -> None:
        entity, _, fact = event.type.removeprefix("identity.").rpartition(".v")[0].partition(".")
        if entity == "structure":
            await self._structure(event, fact)
        elif entity == "group":
            await self._group(event, fact)
        elif entity == "person":
            await self._person(event, fact)

    async def handle_many(self, events: list[Event]) -> None:
        """A batch in order: each run of persons created or updated read and written together (an import sends
        thousands), anything else one by one."""
        run: list[Event] = []
        for event in events:
            if event.type in (PERSON_CREATED, PERSON_UPDATED):
                run.append(event)
                continue
            await self._persons(run)
            run = []
            await self.handle(event)
        await self._persons(run)

    async def _persons(self, events: list[Event]) -> None:
        """Persons created or updated, as `_person` does one: what follows from a school left and the groups' members
        first, the person's document last (a batch done again after a failure then finds what is left to do)."""
        docs: dict[str, Doc] = {}
        for event in events:
            doc = person_doc(
                (
                    event.unpack(pb.PersonCreated) if event.type == PERSON_CREATED else event.unpack(pb.PersonUpdated)
                ).person,
                event.tenant,
            )
            docs[doc["_id"]] = doc  # a person twice in the batch: their last picture
        if not docs:
            return
        persons, groups = self.directory.persons, self.directory.groups
        before = await by_ids(persons, list(docs))
        joined: dict[str, list[str]] = {}
        gone: dict[str, list[str]] = {}
        for person_id, doc in docs.items():
            old = before.get(person_id, {})
            left = [uai for uai in old.get("etablissements", []) if uai not in doc["etablissements"]]
            if left:
                await self.left_schools(person_id, left)
            for group_id in set(doc["groupes"]) - set(old.get("groupes", [])):
                joined.setdefault(group_id, []).append(person_id)
            for group_id in set(old.get("groupes", [])) - set(doc["groupes"]):
                gone.setdefault(group_id, []).append(person_id)
        changes = [
            UpdateOne({"_id": g}, {"$addToSet": {"membres": {"$each": ids}}}, upsert=True) for g, ids in joined.items()
        ]
        changes += [UpdateOne({"_id": g}, {"$pullAll": {"membres": ids}}) for g, ids in gone.items()]
        if changes:
            await groups.bulk_write(changes, ordered=False)
        # Only those whose copy changes are written (an import's delta touches names, addresses… the catalog keeps
        # none of them); a copy of an older version, with names, is written once without them.
        changed = {person_id: doc for person_id, doc in docs.items() if before.get(person_id) != doc}
        if changed:
            await persons.bulk_write(
                [ReplaceOne({"_id": person_id}, doc, upsert=True) for person_id, doc in changed.items()], ordered=False
            )
        for person_id in changed:
            self.person_changed(person_id)

    async def _structure(self, event: Event, fact: str) -> None:
        schools = self.directory.schools
        if fact == "deleted":
            message = event.unpack(pb.StructureDeleted)
            await schools.update_one({"_id": message.uai}, {"$set": {"retire": True}})
            await self.school_removed(message.uai)
            return
        structure = (
            event.unpack(pb.StructureCreated) if fact == "created" else event.unpack(pb.StructureUpdated)
        ).structure
        await schools.replace_one(
            {"_id": structure.uai},
            {
                "_id": structure.uai,
                "structure": structure.id,
                "nom": structure.name,
                "tenant": event.tenant,
                "retire": False,
            },
            upsert=True,
        )

    async def _group(self, event: Event, fact: str) -> None:
        groups = self.directory.groups
        if fact == "deleted":
            await groups.delete_one({"_id": event.unpack(pb.GroupDeleted).id})
            return
        group = (event.unpack(pb.GroupCreated) if fact == "created" else event.unpack(pb.GroupUpdated)).group
        school = await self.directory.schools.find_one({"structure": group.structure_id}, {"_id": 1})
        # Its fields set, its members (kept by the persons' events, which may come first) left as they are.
        await groups.update_one(
            {"_id": group.id},
            {
                "$set": {
                    "uai": school["_id"] if school else None,
                    "code": group.code,
                    "libelle": group.label,
                    "classe": group.kind == pb.GROUP_KIND_CLASS,
                }
            },
            upsert=True,
        )

    async def _person(self, event: Event, fact: str) -> None:
        persons = self.directory.persons
        if fact == "deleted":
            person_id = event.unpack(pb.PersonDeleted).id
            before = await persons.find_one({"_id": person_id}, {"etablissements": 1, "groupes": 1})
            if before is not None:
                await self.left_schools(person_id, before.get("etablissements", []))
                await self._membership(person_id, before.get("groupes", []), [])
                await persons.delete_one({"_id": person_id})
            self.person_changed(person_id)
            return
        await self._persons([event])

    async def _membership(self, person_id: str, before: list[str], after: list[str]) -> None:
        """The person's groups keep them as a member (each group updated by its key)."""
        groups = self.directory.groups
        for group_id in set(after) - set(before):
            await groups.update_one({"_id": group_id}, {"$addToSet": {"membres": person_id}}, upsert=True)
        for group_id in set(before) - set(after):
            await groups.update_one({"_id": group_id}, {"$pull": {"membres": person_id}})
