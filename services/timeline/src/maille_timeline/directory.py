"""What the timeline knows of the school directory, learnt from identity's events (it never reads identity's
collections): each person's name, profiles per school, classes and groups, children or parents, e-mail addresses
and functions — who is told how, where a parent's digest goes, who may publish news where — the schools' names, and
who belongs to each school and each class or group (`members`, kept as the persons change: a news item's audience is
read by `_id`, never by a scan of every person)."""

from __future__ import annotations

from typing import Any

from maille.identity.v1 import directory_pb2 as pb
from maille_contracts import PERSON_CREATED, PERSON_DELETED, STRUCTURE_CREATED, STRUCTURE_DELETED, STRUCTURE_UPDATED
from maille_kit.directory import schools_of
from maille_kit.events import Event
from maille_timeline.repository import TimelineRepository

SUBJECTS = ("identity.person.>", "identity.structure.>")
Doc = dict[str, Any]


# what person_doc reads of a person
KEPT = ("profiles", "first_name", "last_name", "group_ids", "children", "relatives", "emails", "functions")


def person_doc(person: pb.Person, tenant: str) -> Doc:
    """A person as the timeline keeps them."""
    schools = schools_of(person)
    structures = {p.structure_id: p.uai for p in person.profiles if p.uai in schools}
    return {
        "_id": person.id,
        "tenant": tenant,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "schools": schools,
        "structures": structures,  # structure id -> UAI (a group id starts with its structure's id)
        "groups": list(person.group_ids),
        "children": list(person.children),
        "parents": [r.person_id for r in person.relatives],
        "emails": [e for e in person.emails if "@" in e][:3],
        "functions": list(person.functions),
    }


def profiles_of(doc: Doc | None) -> set[str]:
    return {code for codes in (doc or {}).get("schools", {}).values() for code in codes}


def memberships(doc: Doc | None) -> set[str]:
    """The `members` keys a person belongs under: `school:<UAI>` and `group:<group id>`."""
    if doc is None:
        return set()
    return {f"school:{uai}" for uai in doc.get("schools", {})} | {f"group:{g}" for g in doc.get("groups", [])}


class Directory:
    """The timeline's copy of the directory."""

    def __init__(self, repository: TimelineRepository) -> None:
        self.repository = repository

    async def handle(self, event: Event) -> None:
        await self.handle_many([event])

    async def handle_many(self, events: list[Event]) -> None:
        """A batch of identity's events (an import sends thousands): the persons written together, in order, then the
        memberships that changed."""
        latest: dict[str, Doc | None] = {}
        for event in events:
            if event.type.startswith("identity.structure."):
                await self._structure(event)
            elif event.type == PERSON_DELETED:
                deleted = event.unpack(pb.PersonDeleted)
                latest[deleted.id] = None
                if deleted.erased:
                    await self.repository.forget_person(deleted.id)
            elif event.type.startswith("identity.person."):
                person = (
                    event.unpack(pb.PersonCreated).person
                    if event.type == PERSON_CREATED
                    else event.unpack(pb.PersonUpdated).person
                )
                latest[person.id] = person_doc(person, event.tenant)
        if not latest:
            return
        before = await self.repository.persons_by_id(list(latest))
        await self.repository.write_persons(  # only the copies that change: a delta rewrites every record it names
            [doc for pid, doc in latest.items() if doc is not None and before.get(pid) != doc],
            [pid for pid, doc in latest.items() if doc is None and pid in before],
        )
        joined: dict[str, list[str]] = {}
        left: dict[str, list[str]] = {}
        for pid, doc in latest.items():
            old, new = memberships(before.get(pid)), memberships(doc)
            for key in new - old:
                joined.setdefault(key, []).append(pid)
            for key in old - new:
                left.setdefault(key, []).append(pid)
        await self.repository.change_members(joined, left)

    async def _structure(self, event: Event) -> None:
        if event.type == STRUCTURE_DELETED:
            await self.repository.forget_structure(event.unpack(pb.StructureDeleted).id)
            return
        structure = (
            event.unpack(pb.StructureCreated).structure
            if event.type == STRUCTURE_CREATED
            else event.unpack(pb.StructureUpdated).structure
        )
        assert event.type in (STRUCTURE_CREATED, STRUCTURE_UPDATED)
        await self.repository.write_structure(
            {"_id": structure.id, "uai": structure.uai, "name": structure.name, "type": structure.type}
        )
