"""The directory's routes as people use them (what each may see: maille_identity.directory.people)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from maille_identity.api import Everyone
from maille_kit.auth import Caller
from maille_kit.uai import UaiPath

router = APIRouter(prefix="/api/identity/v1", tags=["directory"])
PersonId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$")]
Doc = dict[str, Any]


@router.get("/me", summary="The signed-in person: identity, profiles, schools, classes, children")
async def me(principal: Caller, people: Everyone) -> Doc:
    return await people.me(principal)


@router.get("/persons/{person_id}", summary="A person, as much as the caller may see of them")
async def person(person_id: PersonId, principal: Caller, people: Everyone) -> Doc:
    return await people.person(principal, person_id)


@router.get("/structures/{uai}", summary="A school and its classes and groups (for its members)")
async def structure(uai: UaiPath, principal: Caller, people: Everyone) -> Doc:
    return await people.structure(principal, uai)


@router.get("/groups/{group_id}/members", summary="The members of a class or group of one's school")
async def members(
    group_id: Annotated[str, Path(pattern=r"^[0-9]{7}[A-Z]\$[^/]{1,64}$")], principal: Caller, people: Everyone
) -> list[Doc]:
    return await people.members(principal, group_id)


@router.get("/persons", summary="Name search within the caller's schools (accents and case ignored)")
async def search(
    principal: Caller,
    people: Everyone,
    q: Annotated[str, Query(min_length=2, max_length=100)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[Doc]:
    return await people.search(principal, q, limit)


@router.get("/visibles", summary="The recipient picker: persons the caller may write to, by name")
async def visible_persons(
    principal: Caller,
    people: Everyone,
    q: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[Doc]:
    return await people.writable(principal, q, limit)
