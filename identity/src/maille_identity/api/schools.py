"""A school's administration by its own: who administers it (its principal, and the persons the principal
delegates to), and what the last AAF imports said about it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from maille_identity.api import Directory, Jobs, Settings
from maille_identity.directory.admins import NotAdministrator, NotOfTheSchool, SchoolAdmins
from maille_identity.directory.repository import DirectoryRepository
from maille_identity.settings import IdentitySettings
from maille_kit.auth import Caller, Principal
from maille_kit.problems import Problem
from maille_kit.uai import UaiPath as Uai

router = APIRouter(prefix="/api/identity/v1/structures", tags=["school administration"])
PersonId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$", description="a person of the school (ENT id)")]


async def _admins(
    directory: DirectoryRepository, settings: IdentitySettings, uai: str, caller: Principal, *, delegating: bool = False
) -> SchoolAdmins:
    admins = SchoolAdmins(directory, tenant=settings.tenant)
    try:
        await admins.check(caller, uai, delegating=delegating)
    except NotAdministrator as exc:
        raise Problem(403, str(exc)) from None
    if await directory.structure(settings.tenant, uai) is None:
        raise Problem(404, f"no school {uai}")
    return admins


@router.get("/{uai}/administrators", summary="Who administers the school: its principals and their delegates")
async def administrators(uai: Uai, caller: Caller, directory: Directory, settings: Settings) -> dict[str, Any]:
    return await (await _admins(directory, settings, uai, caller)).listed(uai)


@router.put(
    "/{uai}/administrators/{person_id}",
    status_code=204,
    summary="The principal makes a person of the school one of its administrators",
)
async def delegate(uai: Uai, person_id: PersonId, caller: Caller, directory: Directory, settings: Settings) -> Response:
    admins = await _admins(directory, settings, uai, caller, delegating=True)
    try:
        await admins.delegate(uai, person_id, by=caller)
    except NotOfTheSchool as exc:
        raise Problem(422, str(exc), errors=[{"field": "person_id", "message": str(exc)}]) from None
    return Response(status_code=204)


@router.delete("/{uai}/administrators/{person_id}", status_code=204, summary="The principal withdraws a delegation")
async def withdraw(uai: Uai, person_id: PersonId, caller: Caller, directory: Directory, settings: Settings) -> Response:
    if not await (await _admins(directory, settings, uai, caller, delegating=True)).withdraw(uai, person_id):
        raise Problem(404, f"{person_id} is not a delegate of {uai}")
    return Response(status_code=204)


@router.get(
    "/{uai}/imports", summary="The last AAF imports: their state and counts, and what their reports say of this school"
)
async def imports(
    uai: Uai, caller: Caller, directory: Directory, settings: Settings, jobs: Jobs
) -> list[dict[str, Any]]:
    await _admins(directory, settings, uai, caller)
    school = await directory.structure(settings.tenant, uai) or {}
    about = tuple(word for word in (uai, school.get("key")) if word)
    return [
        {
            "id": job["_id"],
            "state": job.get("state"),
            "file": job.get("file"),
            "created_at": job.get("created_at"),
            "finished_at": job.get("finished_at"),
            "summary": job.get("summary"),
            "report": jobs.report_lines(job["_id"], about),
        }
        for job in await jobs.recent(settings.tenant)
    ]
