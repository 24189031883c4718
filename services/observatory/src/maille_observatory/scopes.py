"""Who sees what. A scope is a set of schools the figures are merged over: a school, a collectivité's schools, a
district's, a type of school's (collège, lycée…), the académie's. Collectivités and districts are declared by an
operator (`territories`), with who views them; the académie's viewers are declared the same way. A principal views
their school (the directory says who directs it). Platform operators see the technical figures only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maille_kit.auth import Principal
from maille_observatory.directory import Directory
from maille_observatory.repository import TERRITORIES, ObservatoryRepository

ACADEMIE = "academie"
TYPE_NAMES = {
    "COLLEGE": "Collèges",
    "LYCEE": "Lycées",
    "LP": "Lycées professionnels",
    "EREA": "EREA",
    "ECOLE": "Écoles",
    "AUTRE": "Autres établissements",
}
Doc = dict[str, Any]


@dataclass(frozen=True)
class Scope:
    id: str  # "school:<UAI>", "collectivite:<id>", "district:<id>", "type:<AAF type>", "academie"
    label: str
    schools: tuple[str, ...] | None  # None: every school

    @property
    def kind(self) -> str:
        return self.id.split(":", 1)[0]

    def holds(self, uai: str) -> bool:
        return self.schools is None or uai in self.schools


class Scopes:
    """The operators' territories (in memory, read again when one changes) and the scopes each viewer may see."""

    def __init__(self, repository: ObservatoryRepository, directory: Directory) -> None:
        self.repository = repository
        self.directory = directory
        self.territories: dict[str, Doc] = {}

    async def load(self) -> int:
        self.territories = {d["_id"]: d async for d in self.repository.every(TERRITORIES)}
        return len(self.territories)

    async def put(self, territory_id: str, given: Doc) -> Doc:
        doc = {"_id": territory_id, **given}
        await self.repository.put_territory(doc)
        self.territories[territory_id] = doc
        return doc

    async def delete(self, territory_id: str) -> bool:
        self.territories.pop(territory_id, None)
        return await self.repository.delete_territory(territory_id)

    def school(self, uai: str) -> Scope:
        name = (self.directory.schools.get(uai) or {}).get("name") or uai
        return Scope(f"school:{uai}", str(name), (uai,))

    def merged(self) -> list[Scope]:
        """Every scope above a school the figures are merged for: the académie, each type, district, collectivité."""
        found = [Scope(ACADEMIE, "Académie", None)]
        types = sorted({self.directory.school_type(u) for u in self.directory.schools})
        found += [Scope(f"type:{t}", TYPE_NAMES.get(t, t.capitalize()), self._of_type(t)) for t in types]
        for territory in sorted(self.territories.values(), key=lambda d: d["_id"]):
            if territory["kind"] in ("collectivite", "district"):
                found.append(
                    Scope(f"{territory['kind']}:{territory['_id']}", territory["name"], tuple(territory["schools"]))
                )
        return found

    def _of_type(self, school_type: str) -> tuple[str, ...]:
        return tuple(sorted(u for u in self.directory.schools if self.directory.school_type(u) == school_type))

    def find(self, scope_id: str) -> Scope | None:
        if scope_id.startswith("school:"):
            uai = scope_id.split(":", 1)[1]
            return self.school(uai) if uai in self.directory.schools else None
        return next((s for s in self.merged() if s.id == scope_id), None)

    def viewable(self, principal: Principal) -> list[Scope]:
        """The scopes this person may see, widest first."""
        person = principal.person_id or ""
        found: list[Scope] = []
        viewer_of = [t for t in self.territories.values() if person and person in t.get("viewers", [])]
        if any(t["kind"] == ACADEMIE for t in viewer_of):
            found += self.merged()
            found += [self.school(u) for u in sorted(self.directory.schools)]
            return found
        schools: list[str] = []
        for territory in sorted(viewer_of, key=lambda d: d["_id"]):
            found.append(
                Scope(f"{territory['kind']}:{territory['_id']}", territory["name"], tuple(territory["schools"]))
            )
            schools += territory["schools"]
        schools += self.directory.directs(person)
        found += [self.school(u) for u in dict.fromkeys(schools) if u in self.directory.schools]
        return found

    def may_see(self, principal: Principal, scope_id: str) -> Scope | None:
        return next((s for s in self.viewable(principal) if s.id == scope_id), None)
