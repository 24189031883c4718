"""The knowledge base over HTTP: search as one types, read, say whether it answered; write (the académie's support,
a school's referents); articles' images."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from maille_kit.auth import Caller
from maille_kit.errors import Forbidden, NotFound, Unsupported
from maille_kit.files import file_answer
from maille_support.api import Articles, Store, me
from maille_support.categories import CATEGORIES
from maille_support.knowledge import render
from maille_support.schemas import ARTICLE_ID, FILE_ID, ArticleHit, ArticleIn, ArticleOut, VoteIn

router = APIRouter(prefix="/api/support/v1", tags=["knowledge"])
ArticleId = Annotated[str, Path(pattern=ARTICLE_ID)]
Doc = dict[str, Any]


def article(doc: Doc) -> ArticleOut:
    return ArticleOut(
        id=doc["_id"],
        title=doc["title"],
        category=doc["category"],
        category_label=CATEGORIES[doc["category"]].label if doc["category"] in CATEGORIES else doc["category"],
        profiles=doc.get("profiles", []),
        scope=doc["scope"],
        author_name=doc.get("author_name", ""),
        updated_at=doc["updated_at"],
        helped=doc.get("helped", 0),
        unhelped=doc.get("unhelped", 0),
        tutorial=bool(doc.get("tutorial")),
        body=doc["body"],
        html=render(doc["body"]),
    )


def excerpt(body: str, size: int = 180) -> str:
    text = " ".join(re.sub(r"[#*_>`\[\]!]|\(/[^)]*\)", " ", body).split())
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"


def hit(doc: Doc) -> ArticleHit:
    return ArticleHit(
        id=doc["_id"],
        title=doc["title"],
        category=doc["category"],
        category_label=CATEGORIES[doc["category"]].label if doc["category"] in CATEGORIES else doc["category"],
        excerpt=excerpt(doc["body"]),
        tutorial=bool(doc.get("tutorial")),
        helped=doc.get("helped", 0),
    )


@router.get("/articles/search", summary="The articles that answer what you type (the last word as a prefix)")
async def search(
    caller: Caller,
    articles: Articles,
    store: Store,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    category: Annotated[str | None, Query(max_length=40)] = None,
    size: Annotated[int, Query(ge=1, le=20)] = 8,
) -> list[ArticleHit]:
    person = await store.person(me(caller))
    return [hit(f.doc) for f in articles.search(person, q, category=category, size=size)]


@router.get("/articles", summary="The articles you may read: tutorials first, then the most helpful")
async def listed(
    caller: Caller,
    articles: Articles,
    store: Store,
    category: Annotated[str | None, Query(max_length=40)] = None,
) -> list[ArticleHit]:
    person = await store.person(me(caller))
    return [hit(d) for d in articles.listed(person, category=category)[:200]]


@router.get("/articles/{article_id}", summary="An article, as Markdown and as HTML")
async def read(article_id: ArticleId, caller: Caller, articles: Articles, store: Store) -> ArticleOut:
    return article(await articles.read(await store.person(me(caller)), article_id))


@router.post(
    "/articles/{article_id}/vote", summary="Whether the article answered your question (once: said again, it replaces)"
)
async def vote(article_id: ArticleId, body: VoteIn, caller: Caller, articles: Articles, store: Store) -> ArticleOut:
    person = await store.person(me(caller))
    if person is None:
        raise Forbidden("the directory does not know you yet")
    return article(await articles.voted(person, article_id, body.helped))


@router.post("/articles", status_code=201, summary="Write an article (the académie's support; a school's referents)")
async def write(body: ArticleIn, caller: Caller, articles: Articles, store: Store) -> ArticleOut:
    return article(await articles.write(await store.person(me(caller)), None, body.model_dump()))


@router.put("/articles/{article_id}", summary="Change an article of yours (of your school, or the académie's)")
async def change(
    article_id: ArticleId, body: ArticleIn, caller: Caller, articles: Articles, store: Store
) -> ArticleOut:
    return article(await articles.write(await store.person(me(caller)), article_id, body.model_dump()))


@router.delete("/articles/{article_id}", status_code=204, summary="Remove an article")
async def delete(article_id: ArticleId, caller: Caller, articles: Articles, store: Store) -> Response:
    await articles.delete(await store.person(me(caller)), article_id)
    return Response(status_code=204)


@router.post("/images", status_code=201, summary="An image for an article: the body is the image; Markdown links it")
async def image(request: Request, caller: Caller, articles: Articles, store: Store) -> dict[str, str]:
    person = await store.person(me(caller))
    if not await articles.scopes(person):
        raise Forbidden("only the académie's support and the schools' referents write articles")
    kept = await articles.images.keep(request.stream(), name="image", limit=5 * 1024 * 1024, scanner=None, article=True)
    if not kept["type"].startswith("image/"):
        await articles.images.forget(kept)
        raise Unsupported("an article's image is a PNG, JPEG, GIF or WebP image")
    return {"id": str(kept["id"]), "markdown": f"![Description de l'image](/api/support/v1/images/{kept['id']})"}


@router.get("/images/{file_id}", summary="An article's image")
async def read_image(
    file_id: Annotated[str, Path(pattern=FILE_ID)], caller: Caller, articles: Articles
) -> StreamingResponse:
    meta = await articles.images.meta(file_id)
    if meta is None or not meta.get("article"):
        raise NotFound(f"no image {file_id}")
    return file_answer(meta, articles.images.read(meta), inline=True, cache="private, max-age=86400")
