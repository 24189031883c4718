"""What the timeline knows of the school directory, learnt from identity's person events (it never reads identity's
collections): each person's name, profiles per school, children or parents, and e-mail addresses — who is told how,
and where a parent's digest goes."""

from __future__ import annotations

from typing import Any

from maille.identity.v1 import directory_pb2 as pb
from maille_contracts import PERSON_CREATED, PERSON_DELETED, PERSON_UPDATED
from maille_kit.events import Event
from maille_timeline.repository import TimelineRepository

SUBJECTS = ("identity.person.>",)
Doc = dict[str, Any]


def person_doc(person: pb.Person, tenant: str) -> Doc:
    """A person as the timeline keeps them."""
    schools: dict[str, list[str]] = {}
    for profile in person.profiles:
        if profile.uai and profile.code not in schools.setdefault(profile.uai, []):
            schools[profile.uai].append(profile.code)
    return {
        "_id": person.id,
        "tenant": tenant,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "schools": schools,
        "groups": list(person.group_ids),
        "children": list(person.children),
        "parents": [r.person_id for r in person.relatives],
        "emails": [e for e in person.emails if "@" in e][:3],
        "functions": list(person.functions),
    }


def profiles_of(doc: Doc | None) -> set[str]:
    return {code for codes in (doc or {}).get("schools", {}).values() for code in codes}


class Directory:
    """The timeline's copy of the directory."""

    def __init__(self, repository: TimelineRepository) -> None:
        self.repository = repository

    async def handle(self, event: Event) -> None:
        await self.handle_many([event])

    async def handle_many(self, events: list[Event]) -> None:
        """A batch of identity's person events (an import sends thousands): written together, in order."""
        latest: dict[str, Doc | None] = {}
        for event in events:
            if event.type == PERSON_DELETED:
                deleted = event.unpack(pb.PersonDeleted)
                latest[deleted.id] = None
                if deleted.erased:
                    await self.repository.forget_person(deleted.id)
            elif event.type in (PERSON_CREATED, PERSON_UPDATED):
                person = (
                    event.unpack(pb.PersonCreated).person
                    if event.type == PERSON_CREATED
                    else event.unpack(pb.PersonUpdated).person
                )
                latest[person.id] = person_doc(person, event.tenant)
        await self.repository.write_persons(
            [doc for doc in latest.values() if doc is not None], [p for p, doc in latest.items() if doc is None]
        )
