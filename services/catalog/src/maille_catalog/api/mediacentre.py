"""The médiacentre of the signed-in person: their resources, filtered and searched, their favourites, and
whether the GAR's list is all there."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from maille_catalog.api import Centre, Settings, Work
from maille_catalog.api.vendor import ArkPath, _ark
from maille_catalog.mediacentre import matches
from maille_kit.app import Told
from maille_kit.auth import Caller, Principal
from maille_kit.problems import Problem
from maille_kit.usage import Kind

router = APIRouter(prefix="/api/catalog/v1/mediacentre", tags=["mediacentre"])

Filter = Annotated[str | None, Query(min_length=1, max_length=300)]


class Entry(BaseModel):
    """A resource of the médiacentre, in the GAR's resource-list fields."""

    model_config = {"extra": "allow"}
    idRessource: str
    nomRessource: str | None = None
    nomEditeur: str | None = None
    lien: str = Field(description="what opens the resource: the GAR-style link, or the vendor's URL")
    sources: list[Literal["maille", "gar"]]
    etablissements: list[str]
    favori: bool


class MediacentreOut(BaseModel):
    ressources: list[Entry]
    total: int = Field(description="resources passing the filters")
    gar: Literal["ok", "incomplet", "non configure"] = Field(description="whether the GAR's lists are all in")
    garManquant: dict[str, str] = Field(description="schools (UAI) whose GAR list is missing, and why")


def _person(caller: Principal) -> str:
    if caller.person_id is None:
        raise Problem(403, "the médiacentre is a signed-in person's: this token speaks for no person of the directory")
    return caller.person_id


@router.get("", response_model=MediacentreOut, summary="The signed-in person's resources")
async def mine(
    caller: Caller,
    centre: Centre,
    niveau: Filter = None,
    domaine: Filter = None,
    type: Filter = None,
    q: Filter = None,
    favoris: bool = False,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    person = _person(caller)
    centre = centre
    shelf = await centre.shelf(person)
    favourites = shelf.favourites
    chosen = [
        r
        for r in shelf.resources
        if (not favoris or r["idRessource"] in favourites)
        and matches(r, niveau=niveau, domaine=domaine, type=type, q=q)
    ]
    page = [{**r, "favori": r["idRessource"] in favourites} for r in chosen[offset : offset + limit]]
    status = "non configure" if centre.gar is None else "incomplet" if shelf.gar_missing else "ok"
    return {"ressources": page, "total": len(chosen), "gar": status, "garManquant": shelf.gar_missing}


@router.get(
    "/ouvrir/{ark:path}",
    status_code=303,
    response_class=RedirectResponse,
    responses={303: {"description": "to the resource, at its vendor's (the GAR signs the person in there)"}},
    summary="Open a resource of one's médiacentre (counted by the observatory: the vendor and the resource)",
)
async def open_resource(ark: ArkPath, caller: Caller, centre: Centre, uses: Told) -> RedirectResponse:
    person, ark = _person(caller), _ark(ark)
    resource = next((r for r in (await centre.shelf(person)).resources if r["idRessource"] == ark), None)
    if resource is None:
        raise Problem(404, f"{ark} is not in your médiacentre")
    vendor = str(resource.get("nomEditeur") or resource.get("idEditeur") or "")
    uses.of(Kind.KIND_RESOURCE_OPENED, caller, service="mediacentre", vendor=vendor, resource=ark)
    return RedirectResponse(resource.get("lien") or resource["urlAccesRessource"], status_code=303)


@router.put("/favoris/{ark:path}", status_code=204, summary="Mark a resource of one's médiacentre as a favourite")
async def add_favourite(ark: ArkPath, caller: Caller, centre: Centre, works: Work, settings: Settings) -> Response:
    person, ark = _person(caller), _ark(ark)
    if not any(r["idRessource"] == ark for r in (await centre.shelf(person)).resources):
        raise Problem(404, f"{ark} is not in your médiacentre")
    await centre.set_favourite(person, ark, True, works=works, tenant=settings.tenant)
    return Response(status_code=204)


@router.delete("/favoris/{ark:path}", status_code=204, summary="Unmark a favourite")
async def remove_favourite(ark: ArkPath, caller: Caller, centre: Centre, works: Work, settings: Settings) -> Response:
    await centre.set_favourite(
        _person(caller),
        _ark(ark),
        False,
        works=works,
        tenant=settings.tenant,
    )
    return Response(status_code=204)
