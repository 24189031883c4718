"""News routes: the pages a person reads, an item, writing and publishing, files, comments, read counts; and what
operators declare (circonscriptions, the schools' "compte école" accounts)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from maille_kit.app import Told
from maille_kit.auth import Caller, Operator, Principal
from maille_kit.errors import Forbidden
from maille_kit.files import file_answer
from maille_kit.uai import UaiPath as Uai
from maille_kit.usage import Kind
from maille_timeline.api import Writing
from maille_timeline.schemas import (
    Board,
    Circonscription,
    CirconscriptionIn,
    Comment,
    CommentIn,
    Moderation,
    NewsChange,
    NewsFile,
    NewsIn,
    NewsItem,
    NewsPage,
    PublishIn,
    Reach,
    SchoolAccountsIn,
    Target,
)

router = APIRouter(prefix="/api/timeline/v1", tags=["news"])
NewsId = Annotated[str, Path(pattern=r"^n[0-9]{13}[0-9a-f]{10}$", description="the news item's id")]
CommentId = Annotated[str, Path(pattern=r"^c[0-9]{13}[0-9a-f]{10}$")]
FileId = Annotated[str, Path(pattern=r"^f[0-9a-f]{20}$")]
Code = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,40}$", description="the circonscription's code")]
BOARD = r"^(school|group|circonscription):[A-Za-z0-9$_.-]{1,80}$"


def _me(caller: Principal) -> str:
    if caller.person_id is None:
        raise Forbidden("only a person of the directory reads and publishes news")
    return caller.person_id


def item(doc: dict[str, Any]) -> NewsItem:
    return NewsItem.model_validate({**doc, "id": doc["_id"]})


@router.get("/news/boards", summary="The news pages you read: your schools, classes and groups, circonscriptions")
async def boards(caller: Caller, news: Writing) -> list[Board]:
    return [Board.model_validate(b) for b in await news.boards_of(_me(caller))]


@router.get("/news", summary="A news page, newest first (`board`: school:<UAI>, group:<id>, circonscription:<code>)")
async def board(
    caller: Caller,
    news: Writing,
    board: Annotated[str, Query(pattern=BOARD)],
    before: Annotated[str | None, Query(pattern=r"^n[0-9]{13}[0-9a-f]{10}$")] = None,
    size: Annotated[int, Query(ge=1, le=50)] = 10,
) -> NewsPage:
    items, after = await news.board(_me(caller), board, before=before, size=size)
    return NewsPage(items=[item(d) for d in items], next=after)


@router.get("/news/targets", summary="Where you may publish (the directory says)")
async def targets(caller: Caller, news: Writing) -> list[Target]:
    return [Target.model_validate(t) for t in await news.targets(_me(caller))]


@router.get("/news/mine", summary="Your drafts and scheduled news items")
async def mine(caller: Caller, news: Writing) -> list[NewsItem]:
    return [item(d) for d in await news.mine(_me(caller))]


@router.post("/news", status_code=201, summary="Write a news item (a draft until published)")
async def create(body: NewsIn, caller: Caller, news: Writing) -> NewsItem:
    return item(await news.create(_me(caller), body.model_dump()))


@router.get("/news/{news_id}", summary="A news item (read from now on), its comments; for its publisher, who read it")
async def read(news_id: NewsId, caller: Caller, news: Writing, uses: Told) -> NewsItem:
    found = item(await news.read(_me(caller), news_id))
    uses.of(Kind.KIND_NEWS_READ, caller, service="actualites")
    return found


@router.patch("/news/{news_id}", summary="Change a draft or a scheduled item")
async def change(news_id: NewsId, body: NewsChange, caller: Caller, news: Writing) -> NewsItem:
    return item(await news.update(_me(caller), news_id, body.model_dump(exclude_unset=True)))


@router.delete("/news/{news_id}", status_code=204, summary="Delete a draft, or withdraw a published item")
async def remove(news_id: NewsId, caller: Caller, news: Writing) -> Response:
    await news.remove(_me(caller), news_id)
    return Response(status_code=204)


@router.post("/news/{news_id}/publish", summary="Publish now, or at a time")
async def publish(news_id: NewsId, body: PublishIn, caller: Caller, news: Writing) -> NewsItem:
    return item(await news.publish(_me(caller), news_id, body.at))


@router.get("/news/{news_id}/stats", summary="For its publisher: by profile, who it reached and who read it")
async def stats(news_id: NewsId, caller: Caller, news: Writing) -> list[Reach]:
    return [Reach.model_validate(r) for r in await news.stats(_me(caller), news_id)]


@router.post(
    "/news/{news_id}/files",
    status_code=201,
    summary="Add an image or a document: the body is the file, `name` its name",
)
async def attach(
    request: Request,
    news_id: NewsId,
    caller: Caller,
    news: Writing,
    name: Annotated[str, Query(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")],
) -> NewsFile:
    return NewsFile.model_validate(await news.attach(_me(caller), news_id, name=name, body=request.stream()))


@router.get("/news/{news_id}/files/{file_id}", summary="A news item's image or document")
async def file(news_id: NewsId, file_id: FileId, caller: Caller, news: Writing) -> StreamingResponse:
    meta, chunks = await news.file(_me(caller), news_id, file_id)
    return file_answer(meta, chunks, inline=meta["type"].startswith("image/"), cache="private, max-age=3600")


@router.post("/news/{news_id}/comments", status_code=201, summary="Comment (shown once the publisher approves)")
async def comment(news_id: NewsId, body: CommentIn, caller: Caller, news: Writing) -> Comment:
    done = await news.comment(_me(caller), news_id, body.text)
    return Comment.model_validate({**done, "id": done["_id"]})


@router.put("/news/{news_id}/comments/{comment_id}", status_code=204, summary="Approve (or refuse: delete) a comment")
async def moderate(news_id: NewsId, comment_id: CommentId, body: Moderation, caller: Caller, news: Writing) -> Response:
    await news.moderate(_me(caller), news_id, comment_id, body.approved)
    return Response(status_code=204)


@router.get("/operator/circonscriptions", summary="Operators: the circonscriptions declared")
async def circonscriptions(_: Operator, news: Writing) -> list[Circonscription]:
    return [Circonscription.model_validate({**c, "code": c["_id"]}) for c in await news.repository.circonscriptions()]


@router.put("/operator/circonscriptions/{code}", summary="Operators: declare a circonscription (its schools, advisors)")
async def declare(code: Code, body: CirconscriptionIn, _: Operator, news: Writing) -> Circonscription:
    doc = await news.declare_circonscription(code, body.name, body.schools, body.advisors)
    return Circonscription.model_validate({**doc, "code": code})


@router.delete("/operator/circonscriptions/{code}", status_code=204, summary="Operators: remove a circonscription")
async def undeclare(code: Code, _: Operator, news: Writing) -> Response:
    await news.repository.delete_circonscription(code)
    return Response(status_code=204)


@router.put("/operator/schools/{uai}/accounts", status_code=204, summary="Operators: the school's compte école")
async def school_accounts(uai: Uai, body: SchoolAccountsIn, _: Operator, news: Writing) -> Response:
    await news.repository.put_school_accounts(uai, body.persons)
    return Response(status_code=204)
