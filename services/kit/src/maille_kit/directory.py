"""Identity's directory events, read the same way by every service that keeps a copy of what it needs (support, the
observatory…): a batch of `identity.structure.*` and `identity.person.*` events as the structures created or changed,
the structures gone, and each person's last state in the batch (None: deleted).

A person's update names the fields that changed: `keeping(fields)` tells a consumer which updates to pass by (a
night's delta that changes first names costs nothing to a service that keeps no names)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from maille.identity.v1 import directory_pb2 as pb
from maille_contracts import PERSON_CREATED, PERSON_DELETED, PERSON_UPDATED, STRUCTURE_CREATED, STRUCTURE_DELETED
from maille_kit.events import Event

SUBJECTS = ("identity.person.>", "identity.structure.>")
PERSON_FIELDS = frozenset(pb.Person.DESCRIPTOR.fields_by_name) - {"id"}
NAMES = frozenset({"last_name", "first_name"})  # a change of these alone changes nothing but the names


def keeping(fields: Iterable[str]) -> Callable[[Event], bool]:
    """Whether an event concerns a service that keeps these Person fields: every event but a person's update that
    names what changed and none of them (an update that names nothing may have changed anything)."""
    kept = frozenset(fields)
    if unknown := kept - PERSON_FIELDS:
        raise ValueError(f"not fields of a Person: {sorted(unknown)}")

    def concerns(event: Event) -> bool:
        if event.type != PERSON_UPDATED:
            return True
        changed = event.unpack(pb.PersonUpdated).changed
        return not changed or not kept.isdisjoint(changed)

    return concerns


@dataclass
class DirectoryChanges:
    structures: list[pb.Structure] = field(default_factory=list)
    structures_gone: list[str] = field(default_factory=list)
    persons: dict[str, pb.Person | None] = field(default_factory=dict)
    tenants: dict[str, str] = field(default_factory=dict)  # person id -> the tenant of their last event
    erased: set[str] = field(default_factory=set)  # deleted on request (RGPD): everything held of them goes
    # person id -> the fields their updates in the batch name as changed; absent when created, deleted or an update
    # names nothing (anything may have changed)
    named: dict[str, set[str]] = field(default_factory=dict)

    def changed_only(self, fields: Iterable[str]) -> set[str]:
        """The persons of the batch known to have changed only some of `fields` (a copy that keeps them needs no look
        at what it held before to know it changed, and how)."""
        allowed = frozenset(fields)
        return {person_id for person_id, named in self.named.items() if named <= allowed}


def schools_of(person: pb.Person) -> dict[str, list[str]]:
    """A person's profile codes per school (UAI), each once, in the event's order."""
    schools: dict[str, list[str]] = {}
    for profile in person.profiles:
        if profile.uai and profile.code not in schools.setdefault(profile.uai, []):
            schools[profile.uai].append(profile.code)
    return schools


def changes(events: Iterable[Event]) -> DirectoryChanges:
    found = DirectoryChanges()
    for event in events:
        if event.type == STRUCTURE_DELETED:
            found.structures_gone.append(event.unpack(pb.StructureDeleted).id)
        elif event.type.startswith("identity.structure."):
            found.structures.append(
                event.unpack(pb.StructureCreated).structure
                if event.type == STRUCTURE_CREATED
                else event.unpack(pb.StructureUpdated).structure
            )
        elif event.type == PERSON_DELETED:
            deleted = event.unpack(pb.PersonDeleted)
            found.persons[deleted.id] = None
            found.tenants[deleted.id] = event.tenant
            found.named.pop(deleted.id, None)
            if deleted.erased:
                found.erased.add(deleted.id)
        elif event.type == PERSON_CREATED:
            person = event.unpack(pb.PersonCreated).person
            found.persons[person.id] = person
            found.tenants[person.id] = event.tenant
            found.named.pop(person.id, None)
        elif event.type == PERSON_UPDATED:
            update = event.unpack(pb.PersonUpdated)
            person_id = update.person.id
            if update.changed and (person_id not in found.persons or person_id in found.named):
                found.named.setdefault(person_id, set()).update(update.changed)
            else:
                found.named.pop(person_id, None)
            found.persons[person_id] = update.person
            found.tenants[person_id] = event.tenant
    return found
