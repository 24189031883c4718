"""Who one may write to (the recipient picker), one's own lists, and the RGPD export of one's mailbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse

from maille_kit.auth import Operator
from maille_kit.idempotency import Idempotent
from maille_kit.text import folded
from maille_messaging.api import MailboxPart, Me, SendingPart
from maille_messaging.mailbox import Mailbox
from maille_messaging.rules import person_name
from maille_messaging.schemas import LIST_ID, PERSON_ID, ListIn, PersonList, Visible

router = APIRouter(prefix="/api/messaging/v1", tags=["recipients"])
ListPath = Annotated[str, Path(pattern=LIST_ID)]


@router.get("/recipients", summary="Persons, groups and lists of yours you may write to, whose names hold the words")
async def recipients(
    me: Me,
    mailbox: MailboxPart,
    sending: SendingPart,
    q: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[Visible]:
    answer = await sending.rules.visibles(tenant=me.tenant, sender=me.person, text=q, limit=limit)
    words = folded(q).split()
    lists = await mailbox.lists(me.person)
    found = [
        Visible(type="list", id=lid, name=item["name"], size=len(item["members"]))
        for lid, item in sorted(lists.items())
        if all(w in folded(item["name"]) for w in words)
    ]
    found += [Visible(type="group", id=g.id, name=g.name, size=g.size) for g in answer.groups]
    found += [Visible(type="person", id=p.id, name=person_name(p), profiles=list(p.profiles)) for p in answer.persons]
    return found[:limit]


@router.get("/lists", summary="Your lists of correspondents")
async def lists(me: Me, mailbox: MailboxPart) -> list[PersonList]:
    found = await mailbox.lists(me.person)
    return [PersonList(id=lid, **item) for lid, item in sorted(found.items())]


@router.post("/lists", status_code=201, summary="Make a list (its members are checked against the rules at each send)")
async def create_list(me: Me, _: Idempotent, body: ListIn, mailbox: MailboxPart) -> PersonList:
    list_id, item = await mailbox.put_list(me.person, tenant=me.tenant, name=body.name, members=body.members)
    return PersonList(id=list_id, **item)


@router.put("/lists/{list_id}", summary="Change a list of yours")
async def change_list(me: Me, list_id: ListPath, body: ListIn, mailbox: MailboxPart) -> PersonList:
    list_id, item = await mailbox.put_list(
        me.person, tenant=me.tenant, name=body.name, members=body.members, list_id=list_id
    )
    return PersonList(id=list_id, **item)


@router.delete("/lists/{list_id}", status_code=204, summary="Delete a list of yours")
async def delete_list(me: Me, list_id: ListPath, mailbox: MailboxPart) -> Response:
    await mailbox.delete_list(me.person, list_id, tenant=me.tenant)
    return Response(status_code=204)


def _export(mailbox: Mailbox, person: str) -> StreamingResponse:
    return StreamingResponse(
        mailbox.export(person),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="messagerie-{person}.json"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/export", summary="Your whole mailbox as JSON (RGPD: right of access and portability)")
async def export(me: Me, mailbox: MailboxPart) -> StreamingResponse:
    return _export(mailbox, me.person)


@router.get(
    "/operator/persons/{person}/export", summary="A person's whole mailbox as JSON, for an RGPD request (operators)"
)
async def operator_export(
    person: Annotated[str, Path(pattern=PERSON_ID)],
    _: Operator,
    mailbox: MailboxPart,
) -> StreamingResponse:
    return _export(mailbox, person)
