"""The figures of use, for those who may see them: their scopes, a scope's dashboard, a chart's data as CSV, the
research export as Parquet."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from maille_kit.auth import Caller
from maille_kit.errors import Invalid, NotFound
from maille_observatory.api import Boards, Exported, Viewing, seen
from maille_observatory.schemas import CHARTS, SCHOOL_YEAR, SCOPE_ID, Dashboard, ScopeOut
from maille_observatory.views import to_csv

router = APIRouter(prefix="/api/observatory/v1", tags=["dashboards"])
ScopeId = Annotated[str, Path(pattern=SCOPE_ID)]
Year = Annotated[str | None, Query(pattern=SCHOOL_YEAR, description="school year, e.g. 2026-2027; default the current")]


def checked(year: str | None) -> str | None:
    if year is not None and int(year[5:]) != int(year[:4]) + 1:
        raise Invalid(f"{year} is not a school year (two years that follow each other, e.g. 2026-2027)")
    return year


@router.get("/scopes", summary="The scopes whose figures I may see: my school, my collectivité's, the académie's")
async def scopes(caller: Caller, viewing: Viewing) -> list[ScopeOut]:
    return [ScopeOut(id=s.id, label=s.label, kind=s.kind) for s in viewing.viewable(caller)]


@router.get("/dashboards/{scope_id}", summary="A scope's charts over a school year, against the year before")
async def dashboard(
    scope_id: ScopeId, caller: Caller, viewing: Viewing, boards: Boards, year: Year = None
) -> Dashboard:
    scope = seen(viewing, caller, scope_id)
    return Dashboard(**await boards.build(scope, checked(year)))


@router.get(
    "/dashboards/{scope_id}/{chart}.csv",
    summary="One chart's data as CSV (semicolons; a figure left out reads < 5)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def chart_csv(
    scope_id: ScopeId, chart: CHARTS, caller: Caller, viewing: Viewing, boards: Boards, year: Year = None
) -> Response:
    scope = seen(viewing, caller, scope_id)
    built = await boards.build(scope, checked(year))
    found = built["charts"].get(chart)
    if found is None:
        raise NotFound(f"{scope.label} has no chart {chart}")
    name = f"observatoire-{scope_id.replace(':', '-')}-{built['school_year']}-{chart}.csv"
    return Response(
        "\ufeff" + to_csv(found),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
    )


@router.get(
    "/exports/{scope_id}/{school_year}/{table}.parquet",
    summary="The research export: a school year's anonymous rollups as Parquet (usages or actifs)",
    response_class=Response,
    responses={200: {"content": {"application/vnd.apache.parquet": {}}}},
)
async def research(
    scope_id: ScopeId,
    school_year: Annotated[str, Path(pattern=SCHOOL_YEAR)],
    table: Annotated[str, Path(pattern=r"^(usages|actifs)$")],
    caller: Caller,
    viewing: Viewing,
    exports: Exported,
) -> Response:
    scope = seen(viewing, caller, scope_id)
    checked(school_year)
    data = await exports.parquet(scope, school_year, table)
    name = f"observatoire-{scope_id.replace(':', '-')}-{school_year}-{table}.parquet"
    return Response(
        data,
        media_type="application/vnd.apache.parquet",
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
    )
