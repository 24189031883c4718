"""Answers before questions: short articles in French (Markdown, with images), by category and profile, written by the
académie's support for every school and by a school's referents for theirs, searched as the person types their
request's subject. Whether an article answered the question is counted (once per person).

The search runs in memory: each replica reads every article at start (a few thousand) and keeps an index of their
words, accents and case folded; the last word typed matches as a prefix ("mot de pas" finds "mot de passe"). A change
made here is applied at once and signalled to the other replicas (`signal.support.articles`).

A few tutorials of the ENT's own screens are seeded from `articles/*.md` (inserted when missing: an edited seed stays
as its editor left it)."""

from __future__ import annotations

import bisect
import heapq
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from markdown_it import MarkdownIt

from maille_kit.bus import Bus
from maille_kit.errors import Forbidden, Invalid, NotFound
from maille_kit.files import DocstoreFiles
from maille_support.categories import CATEGORIES
from maille_support.desks import Desks
from maille_support.queue import folded
from maille_support.repository import SupportRepository

log = logging.getLogger("maille.support")
SIGNAL = "signal.support.articles"
ACADEMIE = "academie"
Doc = dict[str, Any]
STOP = frozenset(
    "a au aux avec ce ces dans de des du elle en est et il je la le les leur ma mais me mes mon ne nous on ou par pas "
    "pour qu que qui sa se ses son sur ta te tes ton tu un une vos votre vous y l d j n s c m t qu".split()
)
WORD = re.compile(r"[a-z0-9]+")
MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def words(text: str) -> list[str]:
    return [w for w in WORD.findall(folded(text)) if w not in STOP]


def render(body: str) -> str:
    """Markdown as HTML, raw HTML escaped (an article never carries a script), links to javascript: refused."""
    return str(MARKDOWN.render(body))


@dataclass
class Found:
    doc: Doc
    score: float


class Knowledge:
    def __init__(
        self, repository: SupportRepository, desks: Desks, images: DocstoreFiles, bus: Bus | None = None
    ) -> None:
        self.repository = repository
        self.desks = desks
        self.images = images
        self.bus = bus
        self.articles: dict[str, Doc] = {}
        self.postings: dict[str, dict[str, float]] = {}
        self.vocabulary: list[str] = []

    # the index

    async def load(self) -> int:
        self.articles = {doc["_id"]: doc for doc in await self.repository.articles()}
        self._reindex()
        return len(self.articles)

    def _reindex(self) -> None:
        postings: dict[str, dict[str, float]] = {}
        for doc in self.articles.values():
            for word, weight in _weights(doc).items():
                postings.setdefault(word, {})[doc["_id"]] = weight
        self.postings, self.vocabulary = postings, sorted(postings)

    def _apply(self, doc: Doc | None, article_id: str) -> None:
        old = self.articles.pop(article_id, None)
        if old is not None:
            for word in _weights(old):
                self.postings.get(word, {}).pop(article_id, None)
        if doc is not None:
            self.articles[article_id] = doc
            for word, weight in _weights(doc).items():
                self.postings.setdefault(word, {})[article_id] = weight
        self.vocabulary = sorted(w for w, ids in self.postings.items() if ids)

    async def heard(self, article_id: str) -> None:
        self._apply(await self.repository.article(article_id), article_id)

    async def _changed(self, doc: Doc | None, article_id: str) -> None:
        self._apply(doc, article_id)
        if self.bus is not None and self.bus.nc is not None and self.bus.connected:
            try:
                await self.bus.nc.publish(SIGNAL, article_id.encode())
            except Exception as exc:
                log.warning("article signal not sent: %s", exc)

    async def seed(self) -> int:
        docs = list(seeds())
        await self.repository.seed_articles(docs)
        return len(docs)

    # reading

    def _readable(self, doc: Doc, person: Doc | None) -> bool:
        schools = (person or {}).get("schools", {})
        if doc["scope"] != ACADEMIE and doc["scope"] not in schools:
            return False
        profiles = {code for codes in schools.values() for code in codes}
        return not doc.get("profiles") or bool(profiles & set(doc["profiles"]))

    def search(self, person: Doc | None, text: str, *, category: str | None = None, size: int = 8) -> list[Found]:
        """The articles the person may read that best match what they typed (every word, the last one as a prefix;
        any of them when no article has them all)."""
        typed = words(text)
        if not typed:
            return []
        hits: list[dict[str, float]] = []
        for n, word in enumerate(typed):
            scores = self.postings.get(word, {})
            if n == len(typed) - 1 and len(word) >= 2:
                at = bisect.bisect_left(self.vocabulary, word)
                longer = []
                while at < len(self.vocabulary) and self.vocabulary[at].startswith(word):
                    if self.vocabulary[at] != word:
                        longer.append(self.postings[self.vocabulary[at]])
                    at += 1
                if longer:
                    scores = dict(scores)
                    for postings in longer:
                        for article_id, weight in postings.items():
                            if weight * 0.8 > scores.get(article_id, 0.0):
                                scores[article_id] = weight * 0.8
            hits.append(scores)
        hits.sort(key=len)
        everywhere = [a for a in hits[0] if all(a in h for h in hits[1:])]
        candidates = everywhere or list({a for h in hits for a in h})
        schools = (person or {}).get("schools", {})
        profiles = {code for codes in schools.values() for code in codes}
        scored = []
        for article_id in candidates:
            doc = self.articles.get(article_id)
            if doc is None or (category and doc.get("category") != category):
                continue
            if (doc["scope"] != ACADEMIE and doc["scope"] not in schools) or (
                doc.get("profiles") and not profiles & set(doc["profiles"])
            ):
                continue
            score = sum(h.get(article_id, 0.0) for h in hits) + 0.1 * doc.get("helped", 0) ** 0.5
            scored.append((score, article_id))
        best = heapq.nsmallest(size, scored, key=lambda s: (-s[0], s[1]))
        return [Found(self.articles[a], score) for score, a in best]

    def listed(self, person: Doc | None, *, category: str | None = None) -> list[Doc]:
        docs = [
            d
            for d in self.articles.values()
            if self._readable(d, person) and (not category or d.get("category") == category)
        ]
        return sorted(docs, key=lambda d: (not d.get("tutorial"), -d.get("helped", 0), d["title"]))

    async def read(self, person: Doc | None, article_id: str) -> Doc:
        doc = self.articles.get(article_id) or await self.repository.article(article_id)
        if doc is None or not self._readable(doc, person):
            raise NotFound(f"no article {article_id}")
        return doc

    async def voted(self, person: Doc, article_id: str, helped: bool) -> Doc:
        await self.read(person, article_id)
        if await self.repository.vote(article_id, person["_id"], helped):
            await self._changed(await self.repository.article(article_id), article_id)
        return self.articles[article_id]

    # writing

    async def scopes(self, person: Doc | None) -> list[str]:
        """Where the person writes: every school (`academie`) as an agent of the académie's support; their schools
        as their referent."""
        if person is None:
            return []
        await self.desks.fresh()
        found = [ACADEMIE] if any(d["kind"] == "academie" for d in self.desks.agent_of(person["_id"])) else []
        for uai in person.get("schools", {}):
            if await self.desks.is_referent(person, uai):
                found.append(uai)
        return found

    async def write(self, person: Doc | None, article_id: str | None, given: Doc) -> Doc:
        if given["category"] not in CATEGORIES:
            raise Invalid(f"unknown category {given['category']!r}: one of {', '.join(CATEGORIES)}", field="category")
        scopes = await self.scopes(person)
        if given["scope"] not in scopes:
            raise Forbidden(
                "the académie's support writes for every school, a school's referents for their school"
                if scopes
                else "only the académie's support and the schools' referents write articles"
            )
        assert person is not None
        before = None
        if article_id is not None:
            before = self.articles.get(article_id) or await self.repository.article(article_id)
            if before is None:
                raise NotFound(f"no article {article_id}")
            if before["scope"] not in scopes:
                raise Forbidden("this article is written by another school or by the académie")
        doc = {
            **(before or {}),
            "_id": article_id or f"a{int(datetime.now(UTC).timestamp() * 1000):013d}{os.urandom(4).hex()}",
            "title": given["title"].strip(),
            "body": given["body"],
            "category": given["category"],
            "profiles": list(given.get("profiles") or []),
            "scope": given["scope"],
            "author": person["_id"],
            "author_name": person.get("name", ""),
            "updated_at": datetime.now(UTC),
            "helped": (before or {}).get("helped", 0),
            "unhelped": (before or {}).get("unhelped", 0),
            "tutorial": bool(given.get("tutorial")) and given["scope"] == ACADEMIE,
        }
        await self.repository.put_article(doc)
        await self._changed(doc, doc["_id"])
        return doc

    async def delete(self, person: Doc | None, article_id: str) -> None:
        doc = self.articles.get(article_id) or await self.repository.article(article_id)
        if doc is None:
            raise NotFound(f"no article {article_id}")
        if doc["scope"] not in await self.scopes(person):
            raise Forbidden("this article is written by another school or by the académie")
        await self.repository.delete_article(article_id)
        await self._changed(None, article_id)


def _weights(doc: Doc) -> dict[str, float]:
    weights: dict[str, float] = {}
    for word in words(doc.get("body", "")):
        weights[word] = min(weights.get(word, 0.0) + 0.5, 2.0)
    for word in words(doc.get("title", "")):
        weights[word] = weights.get(word, 0.0) + 3.0
    return weights


def parse_seed(name: str, text: str) -> Doc:
    """An article file: `key: value` lines (title, category, profiles), a blank line, then its Markdown."""
    head, _, body = text.partition("\n\n")
    meta = dict(line.split(":", 1) for line in head.splitlines() if ":" in line)
    return {
        "_id": f"tuto-{name}",
        "title": meta["title"].strip(),
        "category": meta["category"].strip(),
        "profiles": [p.strip() for p in meta.get("profiles", "").split(",") if p.strip()],
        "scope": ACADEMIE,
        "body": body.strip() + "\n",
        "author": "",
        "author_name": "L'équipe de l'ENT",
        "updated_at": datetime(2026, 12, 1, tzinfo=UTC),
        "helped": 0,
        "unhelped": 0,
        "tutorial": True,
    }


def seeds() -> Iterable[Doc]:
    folder = resources.files("maille_support") / "articles"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".md"):
            yield parse_seed(entry.name.removesuffix(".md"), entry.read_text(encoding="utf-8"))
