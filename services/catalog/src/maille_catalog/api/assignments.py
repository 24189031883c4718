"""Licence assignment for a school's assignment managers (its direction, or persons holding the
`gar_resp_aff` role in it; operators anywhere): the school's per-person subscriptions, who holds a licence,
assigning licences to persons, classes and groups, taking them back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from maille_catalog.api import People, Subs
from maille_catalog.api.subscriptions import SubscriptionId, as_subscription
from maille_catalog.schemas import Subscription
from maille_kit.auth import Caller, Principal
from maille_kit.idempotency import Idempotent
from maille_kit.problems import Problem
from maille_kit.uai import UaiPath as Uai

router = APIRouter(prefix="/api/catalog/v1/schools/{uai}", tags=["assignments"])

PersonId = Annotated[str, Field(min_length=1, max_length=64)]
MANAGER_ROLE = "gar_resp_aff"


class AssignmentsIn(BaseModel):
    """Who receives a licence: persons, and every member of classes or groups (`<structure id>$<code>`)."""

    personnes: list[PersonId] = Field(default_factory=list, max_length=5000)
    groupes: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list, max_length=100)


class ReleaseIn(BaseModel):
    personnes: list[PersonId] = Field(min_length=1, max_length=5000)


class AssignmentsOut(BaseModel):
    affectees: list[str] = Field(description="persons who received a licence now")
    dejaAffectees: list[str] = Field(description="persons who held one already")
    licencesAffectees: dict[str, int]


class Assignment(BaseModel):
    personne: str
    public: str
    par: str


class Released(BaseModel):
    liberees: list[str]


async def _manager(caller: Principal, uai: str, people: People) -> str:
    """Who is acting, once they are known to manage `uai`'s licences."""
    if "operator" in caller.roles:
        return caller.person_id or caller.client_id or caller.subject
    if caller.person_id is None:
        raise Problem(403, "assigning licences needs a signed-in person or the operator role")
    person = await people.person(caller.person_id)
    if person is not None and (
        uai in person.get("responsableAffectation", [])
        or (MANAGER_ROLE in caller.roles and uai in person.get("etablissements", []))
    ):
        return caller.person_id
    raise Problem(403, f"you do not assign licences in school {uai}")


@router.get(
    "/subscriptions",
    response_model=list[Subscription],
    summary="The school's per-person subscriptions and their licences",
)
async def school_subscriptions(uai: Uai, caller: Caller, subs: Subs, people: People) -> list[Subscription]:
    await _manager(caller, uai, people)
    return [as_subscription(doc) for doc in await subs.of_school(uai)]


@router.get(
    "/subscriptions/{subscription_id}/assignments",
    response_model=list[Assignment],
    summary="Who holds a licence in the school",
)
async def assigned(
    uai: Uai, subscription_id: SubscriptionId, caller: Caller, subs: Subs, people: People
) -> list[Assignment]:
    await _manager(caller, uai, people)
    return [
        Assignment(personne=d["personne"], public=d["public"], par=d["par"])
        for d in await subs.assigned(subscription_id, uai)
    ]


@router.post(
    "/subscriptions/{subscription_id}/assignments",
    response_model=AssignmentsOut,
    summary="Assign licences to persons, classes and groups: all of them, or none if too few are left",
)
async def assign(
    uai: Uai,
    subscription_id: SubscriptionId,
    body: AssignmentsIn,
    caller: Caller,
    _: Idempotent,
    subs: Subs,
    people: People,
) -> AssignmentsOut:
    by = await _manager(caller, uai, people)
    if not body.personnes and not body.groupes:
        raise Problem(422, "name persons (personnes) or classes and groups (groupes)", field="personnes")
    result = await subs.assign(
        subscription_id=subscription_id, uai=uai, person_ids=body.personnes, group_ids=body.groupes, by=by
    )
    return AssignmentsOut(**result)


@router.post(
    "/subscriptions/{subscription_id}/assignments/release", response_model=Released, summary="Take licences back"
)
async def release(
    uai: Uai, subscription_id: SubscriptionId, body: ReleaseIn, caller: Caller, subs: Subs, people: People
) -> Released:
    by = await _manager(caller, uai, people)
    return Released(
        liberees=await subs.release(subscription_id=subscription_id, uai=uai, person_ids=body.personnes, by=by)
    )
