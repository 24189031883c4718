"""What the observatory knows of the directory, learnt from identity's events (it never reads identity's collections):
the schools (name, type), who directs which school (a principal sees their school), and the populations an active
rate is measured against — persons per school and profile, parents per class. No name, no usage: a person's entry
here holds only their (school, profile) pairs, their classes, a pupil's adults and the schools they direct."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from maille.identity.v1 import directory_pb2 as pb
from maille_kit.directory import SUBJECTS as SUBJECTS
from maille_kit.directory import changes
from maille_kit.events import Event
from maille_observatory.repository import PERSONS, SCHOOLS, ObservatoryRepository

DIRECTION = "National_DIR"
PUPIL, PARENT = "National_ELV", "National_TUT"
Doc = dict[str, Any]


KEPT = ("profiles", "group_ids", "relatives")  # what person_doc reads of a person


def person_doc(person: pb.Person) -> Doc:
    cells = sorted({f"{p.uai}|{p.code}" for p in person.profiles if p.uai})
    is_pupil = any(p.code == PUPIL for p in person.profiles)
    return {
        "_id": person.id,
        "cells": cells,
        "classes": sorted(set(person.group_ids)) if is_pupil else [],
        "adults": sorted({r.person_id for r in person.relatives}) if is_pupil else [],
        "directs": sorted({p.uai for p in person.profiles if p.code == DIRECTION and p.uai}),
    }


class Directory:
    """The schools, the principals and the populations, in memory (read at start, then following identity). A
    person's entry is read from the store when it changes, never held: 600,000 of them would weigh a gigabyte."""

    def __init__(self, repository: ObservatoryRepository) -> None:
        self.repository = repository
        self.schools: dict[str, Doc] = {}
        self.count = 0  # persons known
        self.principals: dict[str, list[str]] = {}  # person id -> the schools they direct
        self.population: Counter[str] = Counter()  # "<UAI>|<profile>" -> persons
        # group id -> the adults of its pupils (each with how many of their children are in it)
        self.class_parents: dict[str, Counter[str]] = defaultdict(Counter)
        self.class_school: dict[str, str] = {}

    async def load(self) -> int:
        self.schools = {d["_id"]: d async for d in self.repository.every(SCHOOLS)}
        self.count, self.principals = 0, {}
        self.population, self.class_parents = Counter(), defaultdict(Counter)
        async for doc in self.repository.every(PERSONS):
            self._add(doc)
        return self.count

    def _add(self, doc: Doc) -> None:
        self.count += 1
        if doc.get("directs"):
            self.principals[doc["_id"]] = list(doc["directs"])
        self.population.update(doc.get("cells", []))
        school = doc["cells"][0].split("|")[0] if doc.get("cells") else ""
        for group in doc.get("classes", []):
            self.class_parents[group].update(doc.get("adults", []))
            if school:
                self.class_school[group] = school

    def _remove(self, doc: Doc) -> None:
        self.count -= 1
        self.principals.pop(doc["_id"], None)
        self.population.subtract(doc.get("cells", []))
        for group in doc.get("classes", []):  # an adult stays counted while another of their children is in it
            adults = self.class_parents[group]
            adults.subtract(doc.get("adults", []))
            for adult in [a for a, n in adults.items() if n <= 0]:
                del adults[adult]

    def directs(self, person_id: str | None) -> list[str]:
        return list(self.principals.get(person_id or "", []))

    def population_of(self, schools: list[str] | None) -> dict[str, int]:
        """Persons per profile in these schools (all: None)."""
        found: Counter[str] = Counter()
        for cell, n in self.population.items():
            uai, _, profile = cell.partition("|")
            if n > 0 and (schools is None or uai in schools):
                found[profile] += n
        return dict(found)

    def population_by_school_and_profile(self) -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = {}
        for cell, n in self.population.items():
            if n > 0:
                uai, _, profile = cell.partition("|")
                found.setdefault(uai, {})[profile] = n
        return found

    def population_by_school(self) -> dict[str, int]:
        found: Counter[str] = Counter()
        for cell, n in self.population.items():
            if n > 0:
                found[cell.partition("|")[0]] += n
        return dict(found)

    def parents_of_class(self, group: str) -> int:
        return len(self.class_parents.get(group, ()))

    def school_type(self, uai: str) -> str:
        return str((self.schools.get(uai) or {}).get("type") or "AUTRE")

    async def handle_many(self, events: list[Event]) -> None:
        found = changes(events)
        for structure in found.structures:
            if structure.uai:
                doc = {"_id": structure.uai, "name": structure.name, "type": structure.type.upper() or "AUTRE"}
                await self.repository.write_school(doc)
                self.schools[structure.uai] = doc
        if not found.persons:
            return
        named = {i: (person_doc(p) if p is not None else None) for i, p in found.persons.items()}
        before = await self.repository.persons(list(named))
        # Only the entries that change (an import's delta names persons for their names, addresses… none kept here).
        changed = {i: d for i, d in named.items() if before.get(i) != d}
        if not changed:
            return
        await self.repository.write_persons(
            [d for d in changed.values() if d is not None], [p for p, d in changed.items() if d is None]
        )
        for person_id, entry in changed.items():
            if person_id in before:
                self._remove(before[person_id])
            if entry is not None:
                self._add(entry)
