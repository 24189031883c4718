"""What support knows of the school directory, learnt from identity's events (it never reads identity's collections):
each person's name, profiles per school and functions — who opens a request for which school, who are a school's
referents — and the schools' names."""

from __future__ import annotations

from typing import Any

from maille.identity.v1 import directory_pb2 as pb
from maille_kit.directory import NAMES, changes, schools_of
from maille_kit.directory import SUBJECTS as SUBJECTS
from maille_kit.events import Event
from maille_support.repository import SupportRepository

DIRECTION = "National_DIR"
Doc = dict[str, Any]


KEPT = ("profiles", "functions", "first_name", "last_name", "group_ids")  # what person_doc reads of a person


def person_doc(person: pb.Person) -> Doc:
    schools = schools_of(person)
    functions: dict[str, list[str]] = {}
    by_structure = {p.structure_id: p.uai for p in person.profiles if p.uai}
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

    async def handle_many(self, events: list[Event]) -> None:
        found = changes(events)
        for structure in found.structures:
            if structure.uai:
                await self.repository.write_school(
                    {"_id": structure.uai, "name": structure.name, "type": structure.type, "structure": structure.id}
                )
        if found.persons:
            await self.repository.write_persons(
                [person_doc(p) for p in found.persons.values() if p is not None],
                [i for i, p in found.persons.items() if p is None],
                renamed=found.changed_only(NAMES),
            )
