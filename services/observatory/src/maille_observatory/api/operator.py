"""For the platform's operators: the technical figures (no figure of use), and the territories — collectivités and
districts with their schools, and who views each (the académie's viewers too)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from maille_kit.auth import Operator
from maille_kit.errors import Invalid, NotFound
from maille_kit.uai import UAI_PATTERN
from maille_kit.usage import month_of
from maille_observatory.api import Counting, Merges, People, Viewing
from maille_observatory.events import STREAM
from maille_observatory.ingest import DURABLE
from maille_observatory.rollups import school_year_of
from maille_observatory.schemas import TERRITORY_ID, Technical, TerritoryIn, TerritoryOut

router = APIRouter(prefix="/api/observatory/v1/operator", tags=["operators"])
TerritoryId = Annotated[str, Path(pattern=TERRITORY_ID)]


@router.get("/figures", summary="The ingest's figures: uses counted and left out, how far the rollups are written")
async def figures(caller: Operator, counting: Counting, people: People) -> Technical:
    stream_messages = stream_bytes = pending = None
    try:
        info = await counting.bus.js.stream_info(STREAM.name)
        stream_messages, stream_bytes = info.state.messages, info.state.bytes
        pending = (await counting.bus.js.consumer_info(STREAM.name, DURABLE)).num_pending
    except Exception:  # NATS away: the figures of the ingest still say where it is
        pass
    return Technical(
        **counting.figures(),
        stream_messages=stream_messages,
        stream_bytes=stream_bytes,
        pending=pending,
        schools=len(people.schools),
        persons=people.count,
    )


def _out(doc: dict[str, Any]) -> TerritoryOut:
    return TerritoryOut(
        id=doc["_id"],
        kind=doc["kind"],
        name=doc["name"],
        schools=doc.get("schools", []),
        viewers=doc.get("viewers", []),
    )


@router.get("/territories", summary="The territories declared")
async def territories(caller: Operator, viewing: Viewing) -> list[TerritoryOut]:
    return [_out(d) for d in sorted(viewing.territories.values(), key=lambda d: d["_id"])]


@router.put("/territories/{territory_id}", summary="Declare a collectivité, a district or the académie's viewers")
async def put_territory(
    territory_id: TerritoryId, body: TerritoryIn, caller: Operator, viewing: Viewing, merges: Merges
) -> TerritoryOut:
    wrong = [s for s in body.schools if not re.match(UAI_PATTERN, s)]
    if wrong:
        raise Invalid(f"not UAIs: {', '.join(wrong[:5])}")
    if body.kind != "academie" and not body.schools:
        raise Invalid(f"a {body.kind} has schools: none given")
    doc = await viewing.put(territory_id, body.model_dump())
    merges.due(school_year_of(month_of(date.today())))  # merged again by the next round (refresh_seconds)
    return _out(doc)


@router.delete("/territories/{territory_id}", status_code=204, summary="Remove a territory")
async def delete_territory(territory_id: TerritoryId, caller: Operator, viewing: Viewing) -> Response:
    if not await viewing.delete(territory_id):
        raise NotFound(f"no territory {territory_id}")
    return Response(status_code=204)
