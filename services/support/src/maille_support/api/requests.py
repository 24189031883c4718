"""Help requests over HTTP: open one, read one's own, answer; a referent's or a desk's queue; files."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse

from maille_kit.auth import Caller
from maille_kit.errors import Forbidden, Invalid
from maille_kit.files import file_answer
from maille_kit.uai import UAI_PATTERN, UaiPath
from maille_support.api import Asked, Declared, Queues, Store, me
from maille_support.categories import ACTIVE, CATEGORIES, STATUSES
from maille_support.desks import SCHOOL, Desks, directs, overdue
from maille_support.queue import folded
from maille_support.requests import HANDLER_STATUSES, PERSON_STATUSES, Seen
from maille_support.schemas import (
    FILE_ID,
    REQUEST_ID,
    Assigned,
    AssignIn,
    Can,
    Choice,
    DeskRef,
    EscalateIn,
    FileOut,
    MessageOut,
    Overview,
    ReferentsIn,
    ReplyIn,
    RequestIn,
    RequestOut,
    RequestPage,
    RequestSummary,
    School,
    StaffMember,
    StatusIn,
)

router = APIRouter(prefix="/api/support/v1", tags=["support"])
RequestId = Annotated[str, Path(pattern=REQUEST_ID, description="the request's id")]
Doc = dict[str, Any]


def summary(doc: Doc, desks: Desks, now: datetime | None = None) -> RequestSummary:
    return RequestSummary(
        id=doc["_id"],
        subject=doc["subject"],
        category=doc["category"],
        category_label=CATEGORIES[doc["category"]].label,
        status=doc["status"],
        status_label=STATUSES[doc["status"]],
        uai=doc["uai"],
        school_name=doc.get("school_name") or doc["uai"],
        desk=doc["desk"],
        desk_name=desks.name(doc["desk"]),
        author_name=doc.get("author_name") or "",
        profile=doc.get("profile") or "",
        assignee=doc.get("assignee"),
        assignee_name=doc.get("assignee_name"),
        opened_at=doc["opened_at"],
        updated_at=doc["updated_at"],
        overdue=overdue(doc, desks.level(doc["desk"]), now or datetime.now(UTC)),
        tracker_issue=(doc.get("tracker") or {}).get("issue"),
    )


def shown(seen: Seen, desks: Desks, person: str) -> RequestOut:
    doc = seen.doc
    holds = seen.role == "referent" or desks.is_agent(person, doc["desk"])
    return RequestOut(
        **summary(doc, desks).model_dump(),
        description=doc["description"],
        context=doc.get("context") if seen.handles else None,
        files=[FileOut(**f) for f in doc.get("files", [])],
        messages=[
            MessageOut(
                id=m["_id"],
                at=m["at"],
                author_name=m.get("author_name", ""),
                role=m["role"] if m["role"] in ("author", "referent", "agent", "tracker") else "agent",
                by=m.get("by", ""),
                text=m["text"],
                internal=bool(m.get("internal")),
            )
            for m in seen.messages
        ],
        can=Can(
            reply=doc["status"] != "closed",
            note=seen.handles,
            assign=seen.handles,
            escalate=holds and doc["status"] in ("new", "open", "waiting"),
            statuses=[] if doc["status"] == "closed" else list(HANDLER_STATUSES if seen.handles else PERSON_STATUSES),
        ),
    )


@router.get("/me", summary="What the help pages need: your schools, the categories, the queues you handle")
async def overview(caller: Caller, store: Store, desks: Declared) -> Overview:
    person_id = me(caller)
    person = await store.person(person_id) or {"_id": person_id, "schools": {}}
    names = await store.schools_by_id(list(person.get("schools", {})))
    schools = [School(uai=u, name=(names.get(u) or {}).get("name") or u) for u in person.get("schools", {})]
    await desks.fresh()
    referent_of = [s for s in schools if await desks.is_referent(person, s.uai)]
    mine = [DeskRef(id=d["_id"], name=d["name"], kind=d["kind"]) for d in desks.agent_of(person_id)]
    writes = (["academie"] if any(d.kind == "academie" for d in mine) else []) + [s.uai for s in referent_of]
    return Overview(
        schools=schools,
        categories=[Choice(code=c.code, label=c.label) for c in CATEGORIES.values()],
        statuses=[Choice(code=k, label=v) for k, v in STATUSES.items()],
        referent_of=referent_of,
        directs=[s for s in schools if directs(person, s.uai)],
        desks=mine,
        writes=writes,
    )


@router.post("/requests", status_code=201, summary="Ask for help: your school's referents take it first")
async def open_request(body: RequestIn, caller: Caller, asked: Asked, desks: Declared) -> RequestOut:
    person = me(caller)
    doc = await asked.open(person, body.model_dump())
    return shown(Seen(doc, [], "author", False), desks, person)


@router.get("/requests", summary="Your requests, newest first")
async def mine(
    caller: Caller,
    asked: Asked,
    desks: Declared,
    before: Annotated[str | None, Query(pattern=REQUEST_ID)] = None,
    size: Annotated[int, Query(ge=1, le=50)] = 20,
) -> RequestPage:
    page = await asked.mine(me(caller), before=before, size=size)
    return RequestPage(items=[summary(d, desks) for d in page.items], next=page.next)


@router.get("/requests/{request_id}", summary="A request and its messages (internal notes: for those who handle it)")
async def read(request_id: RequestId, caller: Caller, asked: Asked, desks: Declared) -> RequestOut:
    person = me(caller)
    return shown(await asked.read(person, request_id), desks, person)


@router.post("/requests/{request_id}/messages", status_code=201, summary="Answer (or, handling it, a note)")
async def reply(request_id: RequestId, body: ReplyIn, caller: Caller, asked: Asked, desks: Declared) -> RequestOut:
    person = me(caller)
    await asked.reply(person, request_id, body.text, internal=body.internal, status=body.status)
    return shown(await asked.read(person, request_id), desks, person)


@router.put("/requests/{request_id}/status", summary="Change its status")
async def set_status(
    request_id: RequestId, body: StatusIn, caller: Caller, asked: Asked, desks: Declared
) -> RequestOut:
    person = me(caller)
    await asked.set_status(person, request_id, body.status)
    return shown(await asked.read(person, request_id), desks, person)


@router.post("/requests/{request_id}/escalate", summary="Send it up: to the académie's support, a collectivité's desk…")
async def escalate(
    request_id: RequestId, body: EscalateIn, caller: Caller, asked: Asked, desks: Declared
) -> RequestOut:
    person = me(caller)
    await asked.escalate(person, request_id, body.to, body.note)
    return shown(await asked.read(person, request_id), desks, person)


@router.post("/assign", summary="Give requests to a person who handles them (or to nobody): one or many at once")
async def assign(body: AssignIn, caller: Caller, asked: Asked) -> Assigned:
    wrong = [i for i in body.ids if re.fullmatch(REQUEST_ID, i) is None]
    if wrong:
        raise Invalid(f"{wrong[0]!r} is not a request id", field="ids")
    person = me(caller)
    refused = await asked.assign(person, body.ids, person if body.assignee == "me" else body.assignee)
    return Assigned(assigned=len(set(body.ids)) - len(refused), refused=refused)


@router.post(
    "/requests/{request_id}/files", status_code=201, summary="Add a screenshot or a file: the body is the file"
)
async def attach(
    request: Request,
    request_id: RequestId,
    caller: Caller,
    asked: Asked,
    name: Annotated[str, Query(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")],
) -> FileOut:
    return FileOut(**await asked.attach(me(caller), request_id, name=name, body=request.stream()))


@router.get("/requests/{request_id}/files/{file_id}", summary="A request's screenshot or file")
async def file(
    request_id: RequestId,
    file_id: Annotated[str, Path(pattern=FILE_ID)],
    caller: Caller,
    asked: Asked,
) -> StreamingResponse:
    meta, chunks = await asked.file(me(caller), request_id, file_id)
    return file_answer(meta, chunks, inline=meta["type"].startswith("image/"))


@router.get("/queue", summary="A referent's or a desk's queue: filtered, searched, newest first")
async def queue(
    caller: Caller,
    queues: Queues,
    desks: Declared,
    store: Store,
    desk: Annotated[str, Query(pattern=r"^(school|[a-z0-9][a-z0-9-]{1,40})$", description="school, or a desk id")] = (
        SCHOOL
    ),
    uai: Annotated[str | None, Query(pattern=UAI_PATTERN)] = None,
    status: Annotated[str | None, Query(pattern=r"^[a-z,]{1,60}$", description="comma-separated")] = None,
    category: Annotated[str | None, Query(max_length=40)] = None,
    assignee: Annotated[str | None, Query(max_length=64, description="me, none, or a person id")] = None,
    overdue_only: Annotated[bool, Query(alias="overdue")] = False,
    q: Annotated[
        str | None, Query(max_length=100, description="words of the subject, the person's name, the id")
    ] = None,
    here: Annotated[bool, Query(description="a desk's: only those it holds now (off: every one it received)")] = True,
    before: Annotated[str | None, Query(pattern=REQUEST_ID)] = None,
    size: Annotated[int, Query(ge=1, le=100)] = 25,
) -> RequestPage:
    person_id = me(caller)
    statuses = set(status.split(",")) if status else set()
    if statuses - set(STATUSES):
        raise Invalid(f"a status is one of {', '.join(STATUSES)}", field="status")
    if category and category not in CATEGORIES:
        raise Invalid(f"unknown category {category!r}: one of {', '.join(CATEGORIES)}", field="category")
    if desk == SCHOOL:
        person = await store.person(person_id)
        schools = [u for u in (person or {}).get("schools", {}) if await desks.is_referent(person, u)]
        if uai is not None:
            if uai not in schools:
                raise Forbidden(f"you are not a referent of the school {uai}")
            schools = [uai]
        if not schools:
            raise Forbidden("you are not a digital referent of any school")
        keys = [f"school:{u}" for u in schools]
    else:
        await desks.fresh()
        if not desks.is_agent(person_id, desk):
            raise Forbidden(f"you are not an agent of the desk {desk}")
        # One school of the desk's: its list is the shorter (the desk kept by the filter below).
        keys = [f"school:{uai}"] if uai else [f"desk:{desk}"]
    who = person_id if assignee == "me" else (None if assignee == "none" else assignee)
    words = folded(q).split() if q else []
    now = datetime.now(UTC)

    def base(doc: Doc) -> bool:
        return (
            (desk == SCHOOL or (doc["desk"] == desk if here else desk in doc["desks"]))
            and (uai is None or doc["uai"] == uai)
            and (category is None or doc["category"] == category)
            and (assignee is None or doc.get("assignee") == who)
            and (q == doc["_id"] or all(w in doc["_words"] for w in words))
            and (not overdue_only or overdue(doc, desks.level(doc["desk"]), now) is not None)
        )

    def keep(doc: Doc) -> bool:
        return (not statuses or doc["status"] in statuses) and base(doc)

    # Requests to treat have lists of their own (a few hundred where a desk has received tens of thousands); the counts
    # by status are of those.
    active = [f"active:{k}" for k in keys]
    walk = active if statuses and statuses <= set(ACTIVE) else keys
    page = queues.page(walk, keep, before=before, size=size, count=base, count_keys=active)
    return RequestPage(items=[summary(d, desks, now) for d in page.items], next=page.next, counts=page.counts)


@router.put("/schools/{uai}/referents", summary="The direction names its school's digital referents")
async def name_referents(uai: UaiPath, body: ReferentsIn, caller: Caller, desks: Declared, store: Store) -> list[str]:
    return await desks.name_referents(await store.person(me(caller)), uai, body.persons)


@router.get("/schools/{uai}/staff", summary="For its direction: the school's staff, and who of them are its referents")
async def staff(uai: UaiPath, caller: Caller, desks: Declared, store: Store) -> list[StaffMember]:
    return [StaffMember(**s) for s in await desks.staff(await store.person(me(caller)), uai)]


@router.get("/schools/{uai}/referents", summary="Who takes the school's requests first")
async def referents(uai: UaiPath, caller: Caller, desks: Declared, store: Store) -> list[DeskRef]:
    person = await store.person(me(caller))
    if uai not in (person or {}).get("schools", {}):
        raise Forbidden(f"the school {uai} is not one of yours")
    ids = await desks.referents(uai)
    names = await store.persons_by_id(ids)
    return [DeskRef(id=i, name=(names.get(i) or {}).get("name") or i, kind="referent") for i in ids]
