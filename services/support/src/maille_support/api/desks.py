"""For the platform's operators: the desks (their schools, agents, service levels, Redmine), and the figures."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from maille_kit.auth import Operator
from maille_support.api import Declared, Queues
from maille_support.desks import overdue
from maille_support.schemas import DESK_ID, DeskIn, DeskOut, Figures, RedmineOut

router = APIRouter(prefix="/api/support/v1/operator", tags=["operators"])
DeskId = Annotated[str, Path(pattern=DESK_ID)]


def desk_out(doc: dict[str, Any]) -> DeskOut:
    redmine = doc.get("redmine")
    return DeskOut(
        id=doc["_id"],
        name=doc["name"],
        kind=doc["kind"],
        schools=doc.get("schools", []),
        agents=doc.get("agents", []),
        first_answer_hours=doc.get("first_answer_hours"),
        resolution_hours=doc.get("resolution_hours"),
        redmine=RedmineOut(**{k: v for k, v in redmine.items() if k != "api_key"}) if redmine else None,
    )


@router.get("/desks", summary="The desks declared")
async def desks(caller: Operator, declared: Declared) -> list[DeskOut]:
    return [desk_out(d) for d in (await declared.load()).values()]


@router.put("/desks/{desk_id}", summary="Declare a desk: its kind, schools, agents, service levels, its Redmine")
async def put_desk(desk_id: DeskId, body: DeskIn, caller: Operator, declared: Declared) -> DeskOut:
    given = body.model_dump(mode="json")
    return desk_out(await declared.put(desk_id, given))


@router.delete("/desks/{desk_id}", status_code=204, summary="Remove a desk (its requests stay where they are)")
async def delete_desk(desk_id: DeskId, caller: Operator, declared: Declared) -> Response:
    await declared.delete(desk_id)
    return Response(status_code=204)


@router.get("/figures", summary="Requests by category, school, desk and status; the time to a first answer")
async def figures(caller: Operator, queues: Queues, declared: Declared) -> Figures:
    now = datetime.now(UTC)
    counts: dict[str, dict[str, int]] = {"category": {}, "uai": {}, "desk": {}, "status": {}}
    waits: list[float] = []
    late = 0
    for doc in list(queues.items.values()):
        for key, found in counts.items():
            found[doc[key]] = found.get(doc[key], 0) + 1
        if doc.get("first_answer_at"):
            waits.append((doc["first_answer_at"] - doc["opened_at"]).total_seconds())
        late += overdue(doc, declared.level(doc["desk"]), now) is not None
    return Figures(
        total=len(queues.items),
        by_category=counts["category"],
        by_school=counts["uai"],
        by_desk=counts["desk"],
        by_status=counts["status"],
        overdue=late,
        first_answer_median_seconds=statistics.median(waits) if waits else None,
    )
