"""The directory as people see it: who am I, a person, a school with its classes, a class's members, name search
within one's schools, and the recipient picker (visibles).

The caller is the directory person their token names (claim `ent_id`). What is shown of someone depends on who
asks: themselves, their parents, and the staff of a school they share see everything identity holds; anyone else
of a shared school sees names, profiles and classes; nobody else sees them at all (not found, so as not to tell
that they exist). Operators see everyone.
"""

from __future__ import annotations

from typing import Any

from maille_identity.directory.admins import heads
from maille_identity.directory.identifiers import PARENT, PUPIL
from maille_identity.directory.repository import DirectoryRepository, StructureNames
from maille_identity.rules.responder import VisiblesService
from maille_identity.rules.visibles import UnknownPerson
from maille_kit.auth import Principal
from maille_kit.errors import Forbidden, NotFound

Doc = dict[str, Any]
PUBLIC = ("last_name", "first_name", "kind")


class People:
    """What a caller may see of the directory of one tenant."""

    def __init__(
        self, repo: DirectoryRepository, names: StructureNames, visibles: VisiblesService, *, tenant: str
    ) -> None:
        self.repo = repo
        self.names = names
        self.visibles = visibles
        self.tenant = tenant

    async def me(self, principal: Principal) -> Doc:
        """The caller: everything of theirs, their schools by name, their children (public part)."""
        person = await self._caller(principal)
        names = await self.names.of(person["tenant"])
        schools = {uai: names.get(uai, uai) for uai in _schools(person)}
        children = (
            [_view(child, full=False) for child in await self.repo.persons_by_id(person["children"])]
            if person.get("children")
            else []
        )
        return {
            **_view(person, full=True),
            "schools": [{"uai": uai, "name": name} for uai, name in sorted(schools.items())],
            "children": children,
            "operator": "operator" in principal.roles,
            "administers": await self._administers(person, sorted(schools)),
        }

    async def _administers(self, person: Doc, uais: list[str]) -> list[str]:
        """The schools the person administers: as their principal, or as one of the principal's delegates."""
        if person.get("kind") != "staff":
            return []
        return [
            uai
            for uai in uais
            if heads(person, uai) or await self.repo.is_delegate(person["tenant"], uai, person["_id"])
        ]

    async def person(self, principal: Principal, person_id: str) -> Doc:
        """A person, as much as the caller may see of them."""
        target = await self.repo.person(person_id)
        if target is None or target.get("tenant") != self.tenant:
            raise NotFound(f"no person {person_id}")
        if "operator" in principal.roles:
            return _view(target, full=True)
        caller = await self._caller(principal)
        shared = _schools(caller) & _schools(target)
        if (
            caller["_id"] == person_id
            or person_id in caller.get("children", [])
            or _staff_schools(caller) & _schools(target)
        ):
            return _view(target, full=True)
        if shared:
            return _view(target, full=False, schools=shared)
        raise NotFound(f"no person {person_id}")

    async def structure(self, principal: Principal, uai: str) -> Doc:
        """A school of the caller's, with its classes and groups."""
        if "operator" not in principal.roles and uai not in _schools(await self._caller(principal)):
            raise NotFound(f"no structure {uai} among yours")
        found = next((doc for doc in await self.repo.structures(self.tenant) if doc["_id"] == uai), None)
        if found is None:
            raise NotFound(f"no structure {uai}")
        groups = sorted(
            (g for g in await self.repo.groups(self.tenant) if g["structure"] == uai), key=lambda g: g["code"]
        )
        return {
            "uai": uai,
            "name": found["name"],
            "type": found.get("type", ""),
            "contract": found.get("contract", ""),
            "classes": [_group(g) for g in groups if g["kind"] == "class"],
            "groups": [_group(g) for g in groups if g["kind"] == "group"],
        }

    async def members(self, principal: Principal, group_id: str) -> list[Doc]:
        """The members of a class or group of one of the caller's schools."""
        uai = group_id.split("$", 1)[0]
        if "operator" not in principal.roles and uai not in _schools(await self._caller(principal)):
            raise NotFound(f"no group {group_id} among your schools'")
        return [_brief(m) for m in (await self.visibles.tenant(self.tenant)).members_of(group_id)]

    async def search(self, principal: Principal, text: str, limit: int) -> list[Doc]:
        """Persons of the caller's schools whose names hold the words (accents and case ignored)."""
        schools = _schools(await self._caller(principal))
        return [_brief(m) for m in (await self.visibles.tenant(self.tenant)).search(schools, text, limit)]

    async def writable(self, principal: Principal, text: str, limit: int) -> list[Doc]:
        """The recipient picker: persons the caller may write to, by name."""
        caller = await self._caller(principal)
        try:
            found = (await self.visibles.tenant(self.tenant)).visibles(caller["_id"], text, limit)
        except UnknownPerson:
            raise Forbidden("the person this token names is not in the directory") from None
        return [_brief(m) for m in found]

    async def _caller(self, principal: Principal) -> Doc:
        if principal.person_id is None:
            raise Forbidden("this token names no person of the directory (no ent_id claim)")
        person = await self.repo.person(principal.person_id)
        if person is None or person.get("tenant") != self.tenant:
            raise Forbidden("the person this token names is not in the directory")
        return person


def _schools(person: Doc) -> set[str]:
    return {p["structure"] for p in person.get("profiles", [])}


def _staff_schools(person: Doc) -> set[str]:
    return {p["structure"] for p in person.get("profiles", []) if p["code"] not in (PUPIL, PARENT)}


def _view(person: Doc, *, full: bool, schools: set[str] | None = None) -> Doc:
    """What is shown of `person`: everything but internals, or the public part within `schools`."""
    if full:
        return {
            "id": person["_id"],
            **{k: v for k, v in person.items() if k not in ("_id", "h", "keys", "tenant", "updated_at")},
        }

    def in_schools(group: str) -> bool:
        return schools is None or group.split("$", 1)[0] in schools

    return {
        "id": person["_id"],
        **{k: person.get(k, "") for k in PUBLIC},
        "profiles": [p for p in person.get("profiles", []) if schools is None or p["structure"] in schools],
        "classes": [g for g in person.get("classes", []) if in_schools(g)],
    }


def _group(group: Doc) -> Doc:
    return {"id": group["_id"], "code": group["code"], "label": group["label"]}


def _brief(member: Any) -> Doc:
    return {
        "id": member.id,
        "last_name": member.last_name,
        "first_name": member.first_name,
        "kind": member.kind,
        "profiles": sorted(set(member.profiles.values())),
    }
