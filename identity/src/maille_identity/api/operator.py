"""Operator routes (role `operator`): RGPD export and erasure of one person."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from maille_kit.app import get_runtime
from maille_kit.auth import Principal, require
from maille_kit.problems import Problem
from maille_identity.directory.repository import DirectoryRepository
from maille_identity.directory.rgpd import NoSuchPerson, erase_person, export_person
from maille_identity.events import EventBatch

router = APIRouter(prefix="/api/identity/v1/operator", tags=["operator"])

PersonId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$", description="the ENT person id")]
Tenant = Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64, description="default: the service's tenant")]
Operator = Annotated[Principal, Depends(require("operator"))]


def _context(request: Request, tenant: str | None) -> tuple[Any, str]:
    runtime = get_runtime(request)
    assert runtime.docstore is not None and runtime.outbox is not None
    return runtime, tenant or runtime.settings.tenant


@router.get("/persons/{person_id}/export", summary="RGPD: everything identity holds on one person")
async def export(request: Request, person_id: PersonId, operator: Operator, tenant: Tenant = None) -> dict[str, Any]:
    runtime, tenant = _context(request, tenant)
    try:
        return await export_person(DirectoryRepository(runtime.docstore), tenant=tenant, person_id=person_id)
    except NoSuchPerson:
        raise Problem(404, f"no person {person_id} in tenant {tenant}") from None


@router.delete("/persons/{person_id}", status_code=204, summary="RGPD: erase one person now, in every service")
async def erase(request: Request, person_id: PersonId, operator: Operator, tenant: Tenant = None) -> Response:
    runtime, tenant = _context(request, tenant)
    try:
        await erase_person(DirectoryRepository(runtime.docstore), EventBatch(runtime.outbox, tenant=tenant), tenant=tenant, person_id=person_id)
    except NoSuchPerson:
        raise Problem(404, f"no person {person_id} in tenant {tenant}") from None
    return Response(status_code=204)
