"""The directory as people see it: who am I, a person, a school with its classes, a class's members,
name search within one's schools, and the recipient picker (visibles).

The caller is the directory person their token names (claim `ent_id`). What is shown of someone
depends on who asks: themselves, their parents, and the staff of a school they share see everything
identity holds; anyone else of a shared school sees names, profiles and classes; nobody else sees them
at all (404, so as not to tell that they exist). Operators see everyone.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from maille_identity.api import Directory, Schools, Settings, Visibles
from maille_identity.directory.identifiers import PARENT, PUPIL
from maille_identity.directory.repository import DirectoryRepository
from maille_identity.rules.visibles import UnknownPerson
from maille_identity.settings import IdentitySettings
from maille_kit.auth import Principal, require
from maille_kit.problems import Problem

router = APIRouter(prefix="/api/identity/v1", tags=["directory"])
Caller = Annotated[Principal, Depends(require())]
PersonId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$")]
Doc = dict[str, Any]
PUBLIC = ("last_name", "first_name", "kind")


async def _me(repo: DirectoryRepository, settings: IdentitySettings, principal: Principal) -> Doc:
    if principal.person_id is None:
        raise Problem(403, "this token names no person of the directory (no ent_id claim)")
    person = await repo.person(principal.person_id)
    if person is None or person.get("tenant") != settings.tenant:
        raise Problem(403, "the person this token names is not in the directory")
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


@router.get("/me", summary="The signed-in person: identity, profiles, schools, classes, children")
async def me(principal: Caller, repo: Directory, settings: Settings, schools_named: Schools) -> Doc:
    person = await _me(repo, settings, principal)
    names = await schools_named.of(person["tenant"])
    schools = {uai: names.get(uai, uai) for uai in _schools(person)}
    children = (
        [_view(child, full=False) for child in await repo.persons_by_id(person["children"])]
        if person.get("children")
        else []
    )
    return {
        **_view(person, full=True),
        "schools": [{"uai": uai, "name": name} for uai, name in sorted(schools.items())],
        "children": children,
    }


@router.get("/persons/{person_id}", summary="A person, as much as the caller may see of them")
async def person(person_id: PersonId, principal: Caller, repo: Directory, settings: Settings) -> Doc:
    target = await repo.person(person_id)
    if target is None or target.get("tenant") != settings.tenant:
        raise Problem(404, f"no person {person_id}")
    if "operator" in principal.roles:
        return _view(target, full=True)
    caller = await _me(repo, settings, principal)
    shared = _schools(caller) & _schools(target)
    if (
        caller["_id"] == person_id
        or person_id in caller.get("children", [])
        or _staff_schools(caller) & _schools(target)
    ):
        return _view(target, full=True)
    if shared:
        return _view(target, full=False, schools=shared)
    raise Problem(404, f"no person {person_id}")


@router.get("/structures/{uai}", summary="A school and its classes and groups (for its members)")
async def structure(
    uai: Annotated[str, Path(pattern=r"^[0-9]{7}[A-Z]$")], principal: Caller, repo: Directory, settings: Settings
) -> Doc:
    tenant = settings.tenant
    if "operator" not in principal.roles and uai not in _schools(await _me(repo, settings, principal)):
        raise Problem(404, f"no structure {uai} among yours")
    found = next((doc for doc in await repo.structures(tenant) if doc["_id"] == uai), None)
    if found is None:
        raise Problem(404, f"no structure {uai}")
    groups = sorted((g for g in await repo.groups(tenant) if g["structure"] == uai), key=lambda g: g["code"])
    return {
        "uai": uai,
        "name": found["name"],
        "type": found.get("type", ""),
        "contract": found.get("contract", ""),
        "classes": [{"id": g["_id"], "code": g["code"], "label": g["label"]} for g in groups if g["kind"] == "class"],
        "groups": [{"id": g["_id"], "code": g["code"], "label": g["label"]} for g in groups if g["kind"] == "group"],
    }


def _brief(member: Any) -> Doc:
    return {
        "id": member.id,
        "last_name": member.last_name,
        "first_name": member.first_name,
        "kind": member.kind,
        "profiles": sorted(set(member.profiles.values())),
    }


@router.get("/groups/{group_id}/members", summary="The members of a class or group of one's school")
async def members(
    group_id: Annotated[str, Path(pattern=r"^[0-9]{7}[A-Z]\$[^/]{1,64}$")],
    principal: Caller,
    repo: Directory,
    settings: Settings,
    visibles: Visibles,
) -> list[Doc]:
    uai = group_id.split("$", 1)[0]
    if "operator" not in principal.roles and uai not in _schools(await _me(repo, settings, principal)):
        raise Problem(404, f"no group {group_id} among your schools'")
    return [_brief(m) for m in (await visibles.tenant(settings.tenant)).members_of(group_id)]


@router.get("/persons", summary="Name search within the caller's schools (accents and case ignored)")
async def search(
    principal: Caller,
    repo: Directory,
    settings: Settings,
    visibles: Visibles,
    q: Annotated[str, Query(min_length=2, max_length=100)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[Doc]:
    schools = _schools(await _me(repo, settings, principal))
    return [_brief(m) for m in (await visibles.tenant(settings.tenant)).search(schools, q, limit)]


@router.get("/visibles", summary="The recipient picker: persons the caller may write to, by name")
async def visible_persons(
    principal: Caller,
    repo: Directory,
    settings: Settings,
    visibles: Visibles,
    q: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[Doc]:
    caller = await _me(repo, settings, principal)
    try:
        found = (await visibles.tenant(settings.tenant)).visibles(caller["_id"], q, limit)
    except UnknownPerson:
        raise Problem(403, "the person this token names is not in the directory") from None
    return [_brief(m) for m in found]
