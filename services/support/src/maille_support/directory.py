"""What support knows of the school directory, learnt from identity's events (it never reads identity's collections):
each person's name, profiles per school and functions — who opens a request for which school, who are a school's
referents — and the schools' names."""

from __future__ import annotations

from typing import Any

from maille.identity.v1 import directory_pb2 as pb
from maille_contracts import PERSON_CREATED, PERSON_DELETED, STRUCTURE_CREATED, STRUCTURE_DELETED
from maille_kit.events import Event
from maille_support.repository import SupportRepository

SUBJECTS = ("identity.person.>", "identity.structure.>")
DIRECTION = "National_DIR"
Doc = dict[str, Any]


def person_doc(person: pb.Person) -> Doc:
    schools: dict[str, list[str]] = {}
    functions: dict[str, list[str]] = {}
    by_structure = {p.structure_id: p.uai for p in person.profiles if p.uai}
    for profile in person.profiles:
        if profile.uai and profile.code not in schools.setdefault(profile.uai, []):
            schools[profile.uai].append(profile.code)
    for function in person.functions:
        structure, _, code = function.partition("$")
        uai = by_structure.get(structure)
        if uai and code:
            functions.setdefault(uai, []).append(code.split("$", 1)[0])
    return {
        "_id": person.id,
        "name": f"{person.first_name} {person.last_name}".strip(),
        "schools": schools,
        "functions": functions,  # UAI -> AAF function codes there
        "groups": list(person.group_ids),
    }


class Directory:
    """Support's copy of the directory."""

    def __init__(self, repository: SupportRepository) -> None:
        self.repository = repository

    async def handle(self, event: Event) -> None:
        await self.handle_many([event])

    async def handle_many(self, events: list[Event]) -> None:
        persons: dict[str, Doc | None] = {}
        for event in events:
            if event.type == STRUCTURE_DELETED:
                continue
            if event.type.startswith("identity.structure."):
                message = (
                    event.unpack(pb.StructureCreated)
                    if event.type == STRUCTURE_CREATED
                    else event.unpack(pb.StructureUpdated)
                ).structure
                if message.uai:
                    await self.repository.write_school(
                        {"_id": message.uai, "name": message.name, "type": message.type, "structure": message.id}
                    )
            elif event.type == PERSON_DELETED:
                persons[event.unpack(pb.PersonDeleted).id] = None
            elif event.type.startswith("identity.person."):
                person = (
                    event.unpack(pb.PersonCreated) if event.type == PERSON_CREATED else event.unpack(pb.PersonUpdated)
                ).person
                persons[person.id] = person_doc(person)
        if persons:
            await self.repository.write_persons(
                [d for d in persons.values() if d is not None], [p for p, d in persons.items() if d is None]
            )
