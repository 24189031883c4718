"""The library's HTTP routes: searching the CDIs of one's schools, one's loans, and the operators' PMB connections."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import RedirectResponse

from maille_kit.app import Told
from maille_kit.auth import Caller, Operator, Principal
from maille_kit.idempotency import Idempotent
from maille_kit.problems import Problem
from maille_kit.uai import UaiPath as Uai
from maille_kit.usage import Kind
from maille_library.api import Catalogues, Loans, Notices, People, Readers, Schools, Settings
from maille_library.connections import ConnectionIn, ConnectionOut, shown
from maille_library.schemas import Missing, ReservationIn, Result, SearchPage
from maille_library.sync import readers_csv as readers_csv_of

router = APIRouter(prefix="/api/library/v1", tags=["library"])
PARIS = ZoneInfo("Europe/Paris")
SEARCH_TYPES = {"all": 0, "title": 1, "author": 2, "publisher": 3, "collection": 4, "subject": 5}


def _me(caller: Principal) -> str:
    if caller.person_id is None:
        raise Problem(403, "only a person of the directory has a CDI account")
    return caller.person_id


@router.get(
    "/account",
    summary="Your loans (late, current, past) and reservations in each of your schools' CDIs — or, for a parent, "
    "one of your children's (`enfant`)",
)
async def account(
    caller: Caller,
    accounts: Loans,
    enfant: Annotated[str | None, Query(pattern=r"^[0-9a-f]{24}$", description="a child's ENT id")] = None,
) -> dict[str, Any]:
    if enfant is not None:
        return await accounts.child_account(_me(caller), enfant)
    return await accounts.account(_me(caller))


@router.post("/schools/{uai}/reservations", status_code=201, summary="Reserve a record in one of your schools' CDIs")
async def reserve(
    uai: Uai, body: ReservationIn, caller: Caller, _: Idempotent, accounts: Loans, uses: Told
) -> dict[str, Any]:
    reserved = await accounts.reserve(_me(caller), uai, body.recordId)
    # Loans are made at the CDI's desk, in PMB; what the ENT counts is the reservations made through it.
    uses.of(Kind.KIND_CDI_LOAN, caller, service="cdi", detail="reservation")
    return reserved


@router.delete("/schools/{uai}/reservations/{resa_id}", status_code=204, summary="Cancel one of your reservations")
async def cancel(
    uai: Uai, resa_id: Annotated[int, Path(ge=1, le=2**31 - 1)], caller: Caller, accounts: Loans
) -> Response:
    await accounts.cancel(_me(caller), uai, resa_id)
    return Response(status_code=204)


@router.get(
    "/schools/{uai}/opac",
    status_code=303,
    response_class=RedirectResponse,
    responses={303: {"description": "to the school's OPAC, which signs you in through the ENT's Keycloak"}},
    summary="Open your school's CDI catalogue (PMB's OPAC), signed in",
)
async def opac(uai: Uai, caller: Caller, accounts: Loans) -> RedirectResponse:
    conn = await accounts.connection(_me(caller), uai)
    if not conn.opac_url:
        raise Problem(404, f"school {uai}'s CDI has no OPAC registered")
    return RedirectResponse(f"{conn.opac_url.rstrip('/')}/{conn.opac_sign_on}", status_code=303)


@router.get("/search", summary="Search the CDI catalogues of your schools (every school's PMB at once)")
async def search(
    caller: Caller,
    engine: Catalogues,
    uses: Told,
    q: Annotated[
        str, Query(min_length=1, max_length=200, description="the words sought (quotes and * as PMB reads them)")
    ],
    type: Annotated[str, Query(pattern="^(all|title|author|publisher|collection|subject)$")] = "all",
    page: Annotated[int, Query(ge=0, le=50)] = 0,
    size: Annotated[int, Query(ge=1, le=50)] = 20,
) -> SearchPage:
    person = caller.person_id
    if person is None:
        raise Problem(403, "only a person of the directory can search their schools' CDIs")
    term = " ".join(q.split())
    if not term:
        raise Problem(422, "the search needs at least one word", field="q")
    found = await engine.search(person, term, search_type=SEARCH_TYPES[type], page=page, size=size)
    if page == 0:  # a search, not its next pages
        uses.of(Kind.KIND_CDI_SEARCH, caller, service="cdi", detail=type)
    return SearchPage(
        q=term,
        total=found.total,
        page=page,
        size=size,
        results=[Result(**r) for r in found.results],
        missing=[Missing(**m) for m in found.missing],
    )


@router.get("/operator/schools", summary="The schools' PMB connections (operators)")
async def connections(_: Operator, known: Schools) -> list[ConnectionOut]:
    return [shown(doc) for doc in await known.all()]


@router.get("/operator/schools/{uai}/pmb", summary="A school's PMB connection (operators; secrets are not shown)")
async def connection(uai: Uai, _: Operator, known: Schools) -> ConnectionOut:
    doc = await known.doc(uai)
    if doc is None:
        raise Problem(404, f"no PMB connection is registered for school {uai}")
    return shown(doc)


@router.put("/operator/schools/{uai}/pmb", summary="Register or replace a school's PMB connection (operators)")
async def put_connection(
    response: Response,
    uai: Uai,
    body: ConnectionIn,
    operator: Operator,
    known: Schools,
    sync: Readers,
    settings: Settings,
) -> ConnectionOut:
    tenant: Any = operator.claims.get("tenant") or settings.tenant
    before = await known.doc(uai)
    if await known.put(uai, body, tenant=str(tenant)):
        response.status_code = 201
    if body.syncReaders and not (before or {}).get(
        "syncReaders"
    ):  # the school's readers now, not only who changes from now on
        await sync.school_joined(uai)
    doc = await known.doc(uai)
    assert doc is not None
    return shown(doc)


@router.get(
    "/operator/schools/{uai}/readers.csv",
    summary="The school's readers as the semicolon CSV of PMB's import screen (operators)",
)
async def readers_csv(uai: Uai, _: Operator, directory: People) -> Response:
    """The school's readers as the semicolon CSV of PMB's import screen."""
    return Response(
        await readers_csv_of(directory, uai),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="lecteurs-{uai}.csv"'},
    )


@router.post(
    "/operator/readers/reconcile", summary="Sync every PMB reader of the schools that ask for it, now (operators)"
)
async def reconcile_readers(_: Operator, sync: Readers) -> dict[str, int]:
    return await sync.reconcile()


@router.post(
    "/operator/loans/look",
    summary="Look at every reader's loans now (due in two days, late, reservations waiting): told once (operators)",
)
async def look_at_loans(_: Operator, notices: Notices) -> dict[str, int]:
    return await notices.look(datetime.now(PARIS).date())


@router.delete("/operator/schools/{uai}/pmb", status_code=204, summary="Forget a school's PMB connection (operators)")
async def delete_connection(uai: Uai, operator: Operator, known: Schools, settings: Settings) -> Response:
    tenant = str(operator.claims.get("tenant") or settings.tenant)
    if not await known.delete(uai, tenant=tenant):
        raise Problem(404, f"no PMB connection is registered for school {uai}")
    return Response(status_code=204)
