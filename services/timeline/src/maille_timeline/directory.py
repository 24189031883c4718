"""What the timeline knows of the school directory, learnt from identity's events (it never reads identity's
collections): each person's name, profiles per school, classes and groups, children or parents, e-mail addresses
and functions — who is told how, where a parent's digest goes, who may publish news where — the schools' names, and
who belongs to each school and each class or group (`members`, kept as the persons change: a news item's audience is
read by `_id`, never by a scan of every person)."""

from __future__ import annotations

from typing import Any

from maille.identity.v1 import directory_pb2 as pb
from maille_kit.directory import changes, schools_of
from maille_kit.events import Event
from maille_timeline.repository import TimelineRepository

SUBJECTS = ("identity.person.>", "identity.structure.>")
Doc = dict[str, Any]


# what person_doc reads of a person
KEPT = ("profiles", "first_name", "last_name", "group_ids", "children", "relatives", "emails", "functions")
# what a person's memberships (`members`) are not made of
OUTSIDE_MEMBERSHIPS = frozenset(KEPT) - {"profiles", "group_ids"}


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

    async def handle_many(self, events: list[Event]) -> None:
        """A batch of identity's events (an import sends thousands): the schools, then the persons written together,
        then the memberships that changed."""
        found = changes(events)
        for structure in found.structures:
            await self.repository.write_structure(
                {"_id": structure.id, "uai": structure.uai, "name": structure.name, "type": structure.type}
            )
        for structure_id in found.structures_gone:
            await self.repository.forget_structure(structure_id)
        for person_id in found.erased:
            await self.repository.forget_person(person_id)
        latest = {
            person_id: person_doc(person, found.tenants[person_id]) if person is not None else None
            for person_id, person in found.persons.items()
        }
        if not latest:
            return
        # A person whose update names only fields outside their memberships (names, e-mails, functions) changed their
        # copy and none of their memberships: written without a look at the copy before.
        moved = {pid for pid in latest if pid not in found.changed_only(OUTSIDE_MEMBERSHIPS)}
        before = await self.repository.persons_by_id(list(moved))
        await self.repository.write_persons(  # only the copies that change: a delta rewrites every record it names
            [doc for pid, doc in latest.items() if doc is not None and (pid not in moved or before.get(pid) != doc)],
            [pid for pid, doc in latest.items() if doc is None and pid in before],
        )
        joined: dict[str, list[str]] = {}
        left: dict[str, list[str]] = {}
        for pid in moved:
            old, new = memberships(before.get(pid)), memberships(latest[pid])
            for key in new - old:
                joined.setdefault(key, []).append(pid)
            for key in old - new:
                left.setdefault(key, []).append(pid)
        await self.repository.change_members(joined, left)
