"""The vendor API (role `vendor`, OAuth2 client credentials): a vendor publishes, changes, withdraws and
lists its own resources, one at a time or a whole catalogue at once (JSON or CSV, a report per line)."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import ValidationError

from maille_catalog.api import Settings, Vendors
from maille_catalog.schemas import ARK_PATTERN, BulkReport, Resource, ResourceIn, ResourcePage
from maille_catalog.service import AlreadyPublished, ChangedMeanwhile, NoSuchResource, NotYours, as_resource
from maille_kit.auth import Principal, Vendor
from maille_kit.idempotency import Idempotent
from maille_kit.pages import After, next_cursor
from maille_kit.problems import Problem
from maille_kit.versions import IfMatch, tag

router = APIRouter(prefix="/api/catalog/v1/vendor", tags=["vendor"])

ArkPath = Annotated[str, Path(max_length=220, description="the resource's ARK, e.g. ark:/12345/manuel-maths-6e")]
CONCEPT_COLUMNS = ("typePedagogique", "typologieDocument", "niveauEducatif", "domaineEnseignement")


def _ark(ark: str) -> str:
    # Checked here rather than in the path's schema: an ARK holds slashes, which a fuzzer cannot put in a path.
    if not re.fullmatch(ARK_PATTERN, ark):
        raise Problem(422, f"{ark!r} is not an ARK (ark:/<5 digits>/<name>)", field="ark")
    return ark


def _editor(vendor: Principal) -> str:
    return vendor.client_id or vendor.subject


def _refusal(exc: Exception, ark: str) -> Problem:
    if isinstance(exc, NoSuchResource):
        return Problem(404, f"no resource {ark}")
    if isinstance(exc, NotYours):
        return Problem(403, f"{ark} belongs to another vendor")
    if isinstance(exc, AlreadyPublished):
        return Problem(409, f"{ark} is already published: PUT it to change it")
    return Problem(409, f"{ark} changed meanwhile: read it and send your change again")


@router.post("/resources", status_code=201, response_model=Resource, summary="Publish a new resource")
async def publish(resource: ResourceIn, vendor: Vendor, _: Idempotent, resources: Vendors) -> Resource:
    try:
        return as_resource(await resources.publish(editor=_editor(vendor), resource=resource))
    except (NotYours, AlreadyPublished, ChangedMeanwhile) as exc:
        raise _refusal(exc, resource.idRessource) from None


@router.get("/resources", response_model=ResourcePage, summary="The vendor's own resources, a page at a time")
async def list_own(
    vendor: Vendor,
    resources: Vendors,
    after: After,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ResourcePage:
    docs = await resources.of_editor(editor=_editor(vendor), after=after, limit=limit + 1)
    return ResourcePage(
        ressources=[as_resource(d) for d in docs[:limit]], suivant=next_cursor([d["_id"] for d in docs], limit)
    )


@router.post(
    "/resources/bulk", response_model=BulkReport, summary="Load a whole catalogue: JSON array or CSV, a report per line"
)
async def load(request: Request, vendor: Vendor, resources: Vendors, settings: Settings) -> BulkReport:
    limit = settings.bulk_max_bytes
    body = await read_limited(request, limit, "a bulk load", advice=": split the catalogue")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        lines = _json_lines(bytes(body))
    elif kind == "text/csv":
        lines = _csv_lines(bytes(body))
    else:
        raise Problem(415, "send the catalogue as application/json (an array of resources) or text/csv")
    return await resources.load(editor=_editor(vendor), lines=lines)


@router.get("/resources/{ark:path}", response_model=Resource, summary="One of the vendor's resources")
async def read(ark: ArkPath, vendor: Vendor, resources: Vendors, response: Response) -> Resource:
    ark = _ark(ark)
    doc = await resources.repo.get(ark)
    if doc is None:
        raise Problem(404, f"no resource {ark}")
    if doc["idEditeur"] != _editor(vendor):
        raise Problem(403, f"{ark} belongs to another vendor")
    tag(response, doc["version"])
    return as_resource(doc)


@router.put("/resources/{ark:path}", response_model=Resource, summary="Change one of the vendor's resources")
async def update(
    ark: ArkPath, resource: ResourceIn, vendor: Vendor, resources: Vendors, read_version: IfMatch, response: Response
) -> Resource:
    ark = _ark(ark)
    if resource.idRessource != ark:
        raise Problem(422, f"idRessource {resource.idRessource!r} is not the resource of the path ({ark})")
    try:
        doc, _ = await resources.update(
            editor=_editor(vendor), ark=ark, resource=resource, expected_version=read_version
        )
    except (NoSuchResource, NotYours, ChangedMeanwhile) as exc:
        raise _refusal(exc, ark) from None
    tag(response, doc["version"])
    return as_resource(doc)


@router.delete("/resources/{ark:path}", status_code=204, summary="Withdraw one of the vendor's resources")
async def withdraw(ark: ArkPath, vendor: Vendor, resources: Vendors, read_version: IfMatch) -> Response:
    ark = _ark(ark)
    try:
        await resources.withdraw(editor=_editor(vendor), ark=ark, expected_version=read_version)
    except (NoSuchResource, NotYours, ChangedMeanwhile) as exc:
        raise _refusal(exc, ark) from None
    return Response(status_code=204)


async def read_limited(request: Request, limit: int, what: str, advice: str = "") -> bytes:
    """The request's body, read as it comes; 413 as soon as it is over `limit` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, f"{what} is at most {limit} bytes{advice}")
    return bytes(body)


def _checked(number: int, data: Any) -> tuple[int, ResourceIn | str]:
    try:
        return number, ResourceIn.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in exc.errors()[:5])
        return number, reasons


def _json_lines(body: bytes) -> list[tuple[int, ResourceIn | str]]:
    try:
        items = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"the body is not JSON: {exc}") from None
    if not isinstance(items, list):
        raise Problem(422, "the body must be a JSON array of resources")
    return [_checked(number, item) for number, item in enumerate(items, start=1)]


def _csv_lines(body: bytes) -> list[tuple[int, ResourceIn | str]]:
    """CSV, `;`-separated, a header line naming the columns: the GAR's field names, `typePresentation` as
    `CODE nom`, and each ScoLOMfr list as `uri nom` entries separated by `|`."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(400, "the CSV is not UTF-8") from None
    reader = csv.DictReader(io.StringIO(text), delimiter=";")
    if not reader.fieldnames or "idRessource" not in reader.fieldnames:
        raise Problem(422, "the CSV's first line must name its columns (idRessource;nomRessource;…)")
    lines: list[tuple[int, ResourceIn | str]] = []
    for row in reader:
        number = reader.line_num
        if None in row:
            lines.append((number, "more fields than the header names"))
            continue
        data: dict[str, Any] = {
            k: v for k, v in row.items() if k not in CONCEPT_COLUMNS and k != "typePresentation" and v != ""
        }
        code, _, name = (row.get("typePresentation") or "").strip().partition(" ")
        data["typePresentation"] = {"code": code, "nom": name.strip()}
        for column in CONCEPT_COLUMNS:
            entries = [e.strip() for e in (row.get(column) or "").split("|") if e.strip()]
            data[column] = [{"uri": uri, "nom": label.strip()} for uri, _, label in (e.partition(" ") for e in entries)]
        lines.append(_checked(number, data))
    return lines
