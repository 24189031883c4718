"""A school's communication rules — read, change, reset to the defaults — by its administrators: its principal and
their delegates for their own school, the platform's operators for any."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from maille_identity.api import Directory, Rules, Settings
from maille_identity.directory.admins import NotAdministrator, SchoolAdmins
from maille_identity.directory.repository import DirectoryRepository
from maille_identity.rules.repository import DEFAULT_BODY, RulesBody
from maille_kit.auth import Caller, Principal
from maille_kit.problems import Problem
from maille_kit.uai import UaiPath as Uai
from maille_kit.versions import IfMatch, tag

router = APIRouter(prefix="/api/identity/v1/structures", tags=["communication rules"])

Tenant = Annotated[
    str | None, Query(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64, description="default: the service's tenant")
]


async def _structure(directory: DirectoryRepository, uai: str, tenant: str, admin: Principal) -> None:
    """Nothing, once the caller is known to administer the school (403 otherwise) and the school exists (404)."""
    try:
        await SchoolAdmins(directory, tenant=tenant).check(admin, uai)
    except NotAdministrator as exc:
        raise Problem(403, str(exc)) from None
    if await directory.structure(tenant, uai) is None:
        raise Problem(404, f"no structure {uai} in tenant {tenant}")


@router.get("/{uai}/communication-rules", summary="The structure's rules, and whether they are the defaults")
async def read(
    uai: Uai,
    admin: Caller,
    directory: Directory,
    rules: Rules,
    settings: Settings,
    response: Response,
    tenant: Tenant = None,
) -> dict[str, Any]:
    tenant = tenant or settings.tenant
    await _structure(directory, uai, tenant, admin)
    body, version = await rules.read(tenant, uai)
    tag(response, version)
    return {"uai": uai, "defaults": body is None, "rules": (body or DEFAULT_BODY).model_dump(by_alias=True)}


@router.put("/{uai}/communication-rules", summary="Change the structure's rules (every replica applies them at once)")
async def change(
    uai: Uai,
    body: RulesBody,
    admin: Caller,
    directory: Directory,
    rules: Rules,
    settings: Settings,
    read_version: IfMatch,
    response: Response,
    tenant: Tenant = None,
) -> dict[str, Any]:
    tenant = tenant or settings.tenant
    await _structure(directory, uai, tenant, admin)
    version = await rules.put(tenant, uai, body, by=admin.client_id or admin.subject, expected_version=read_version)
    tag(response, version)
    return {"uai": uai, "defaults": False, "rules": body.model_dump(by_alias=True)}


@router.delete("/{uai}/communication-rules", status_code=204, summary="Reset the structure's rules to the defaults")
async def reset(
    uai: Uai,
    admin: Caller,
    directory: Directory,
    rules: Rules,
    settings: Settings,
    read_version: IfMatch,
    tenant: Tenant = None,
) -> Response:
    tenant = tenant or settings.tenant
    await _structure(directory, uai, tenant, admin)
    await rules.reset(tenant, uai, expected_version=read_version)
    return Response(status_code=204)
