"""Operator routes (role `operator`): tenants, AAF imports as jobs, RGPD export and erasure of one person, the GAR
export's runs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from maille_identity.api import Directory, Jobs, Settings, Work
from maille_identity.directory.aaf import FILE_NAME
from maille_identity.directory.jobs import Busy
from maille_identity.directory.rgpd import NoSuchPerson, erase_person, export_person
from maille_identity.events import EventBatch
from maille_identity.gar.nightly import export_once
from maille_kit.auth import Operator
from maille_kit.idempotency import Idempotent
from maille_kit.problems import Problem

router = APIRouter(prefix="/api/identity/v1/operator", tags=["operator"])

PersonId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$", description="the ENT person id")]
Tenant = Annotated[
    str | None, Query(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64, description="default: the service's tenant")
]


@router.get("/persons/{person_id}/export", summary="RGPD: everything identity holds on one person")
async def export(
    person_id: PersonId, operator: Operator, repo: Directory, settings: Settings, tenant: Tenant = None
) -> dict[str, Any]:
    tenant = tenant or settings.tenant
    try:
        return await export_person(repo, tenant=tenant, person_id=person_id)
    except NoSuchPerson:
        raise Problem(404, f"no person {person_id} in tenant {tenant}") from None


@router.delete("/persons/{person_id}", status_code=204, summary="RGPD: erase one person now, in every service")
async def erase(
    person_id: PersonId, operator: Operator, repo: Directory, works: Work, settings: Settings, tenant: Tenant = None
) -> Response:
    tenant = tenant or settings.tenant
    try:
        await erase_person(
            repo,
            EventBatch(works, tenant=tenant),
            tenant=tenant,
            person_id=person_id,
        )
    except NoSuchPerson:
        raise Problem(404, f"no person {person_id} in tenant {tenant}") from None
    return Response(status_code=204)


JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="the import job's id")]


def _job_view(job: dict[str, Any]) -> dict[str, Any]:
    base = f"/api/identity/v1/operator/imports/{job['_id']}"
    return {
        "id": job["_id"],
        **{k: v for k, v in job.items() if k != "_id"},
        "links": {"self": base, "report": f"{base}/report"},
    }


@router.post("/imports", status_code=202, summary="Upload an AAF delivery (one XML file or a .tar.gz) and import it")
async def upload(
    request: Request,
    operator: Operator,
    _: Idempotent,
    jobs: Jobs,
    settings: Settings,
    filename: Annotated[str, Query(max_length=200, description="the delivery's name: an AAF file name or *.tar.gz")],
    tenant: Tenant = None,
) -> dict[str, Any]:
    tenant = tenant or settings.tenant
    if not (FILE_NAME.match(filename) or filename.endswith((".tar.gz", ".tgz"))) or "/" in filename:
        raise Problem(
            422,
            f"filename {filename!r} is neither an AAF file name (ENT_<id>_<Complet|Delta>_<Kind>_<NNNN>.xml) nor a "
            ".tar.gz",
        )
    job_id, target = jobs.new_upload(filename)
    limit = settings.import_max_mb * 1024 * 1024
    size = 0
    try:
        with target.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Problem(413, f"the delivery is larger than {settings.import_max_mb} MB")
                out.write(chunk)
        if size == 0:
            raise Problem(400, "the request body is empty: send the delivery's bytes")
        job = await jobs.start(job_id, tenant, target, requested_by=operator.person_id or "")
    except Busy as busy:
        target.unlink(missing_ok=True)
        raise Problem(409, f"an import of tenant {tenant} is already running: job {busy.args[0]}") from None
    except Problem:
        target.unlink(missing_ok=True)
        raise
    return _job_view(job)


@router.get("/imports/{job_id}", summary="Where an import is: state, progress, and its summary once done")
async def import_job(job_id: JobId, operator: Operator, jobs: Jobs) -> dict[str, Any]:
    job = await jobs.get(job_id)
    if job is None:
        raise Problem(404, f"no import job {job_id}")
    return _job_view(job)


@router.get(
    "/imports/{job_id}/report",
    response_class=PlainTextResponse,
    summary="The import's report: one line per refused record or warning",
)
async def import_report(job_id: JobId, operator: Operator, jobs: Jobs) -> PlainTextResponse:
    path = jobs.report_path(job_id)
    if not path.exists():
        raise Problem(404, f"no report for import job {job_id} (yet)")
    return PlainTextResponse(path.read_text(encoding="utf-8"))


class TenantBody(BaseModel):
    """A tenant: the scope of an académie or of a partner collectivité."""

    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(pattern=r"^(academie|collectivite)$")
    gar_id_ent: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="the idENT the GAR knows it by"
    )


TenantId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]


@router.put("/tenants/{tenant_id}", summary="Declare or change a tenant (its name, kind and GAR idENT)")
async def put_tenant(tenant_id: TenantId, body: TenantBody, operator: Operator, repo: Directory) -> dict[str, Any]:
    doc = {"_id": tenant_id, **body.model_dump()}
    await repo.put_tenant(doc)
    return {"id": tenant_id, **body.model_dump()}


@router.get("/tenants", summary="The tenants")
async def list_tenants(operator: Operator, repo: Directory) -> list[dict[str, Any]]:
    docs = await repo.tenants()
    return [
        {"id": d["_id"], **{k: v for k, v in d.items() if k != "_id"}} for d in sorted(docs, key=lambda d: d["_id"])
    ]


class GarRun(BaseModel):
    """One run of the GAR export: the night's, or one an operator started."""

    id: str
    night: str
    trigger: str = Field(description="nightly, or operator (started from the API or the portal)")
    by: str = ""
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = Field(description="running, done or failed")
    files: int | None = None
    records: dict[str, int] = Field(default_factory=dict)
    left_out: int | None = None
    archive: str = ""
    md5: str = ""
    pushed: bool | None = None
    error: str = ""


def _run_view(doc: dict[str, Any]) -> GarRun:
    return GarRun.model_validate({**doc, "id": doc["_id"].split(":", 1)[1]})


_RUNS: set[asyncio.Task[Any]] = set()  # the exports operators started (kept until they end)


@router.get("/gar/exports", summary="The GAR export's last runs (the nights' and the operators'), newest first")
async def gar_runs(operator: Operator, repo: Directory, settings: Settings) -> list[GarRun]:
    return [_run_view(doc) for doc in await repo.gar_runs(settings.tenant)]


@router.post("/gar/exports", status_code=202, summary="Run the GAR export now (after a failed night, say)")
async def gar_export_now(request: Request, operator: Operator, repo: Directory, settings: Settings) -> GarRun:
    now = datetime.now(UTC)
    running = [r for r in await repo.gar_runs(settings.tenant, limit=5) if r["outcome"] == "running"]
    if any(now - r["started_at"] < timedelta(hours=2) for r in running):
        raise Problem(409, "a GAR export is running: wait for its end (GET /gar/exports)")
    run = f"operator-{now:%Y%m%dT%H%M%S}"
    task = asyncio.create_task(
        export_once(
            request.app.state.runtime.bus,
            repo,
            settings,
            night=now.date().isoformat(),
            run=run,
            trigger="operator",
            by=operator.person_id or operator.client_id or operator.subject,
        ),
        name=f"gar-export-{run}",
    )
    _RUNS.add(task)
    task.add_done_callback(_RUNS.discard)
    return GarRun(id=run, night=now.date().isoformat(), trigger="operator", started_at=now, outcome="running")
