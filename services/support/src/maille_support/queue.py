"""The queues, answered from memory: every request's summary, indexed by school, by desk and by author.

A referent's or a desk's queue is filtered (status, category, school, assignee, overdue, words of the subject) and
paged newest first. FerretDB answers a filter on anything but `_id` by reading the whole collection, so each replica
reads every summary once at start (50,000 in a few seconds), then follows the changes: the replica that made a change
applies it at once and signals the others on core NATS (`signal.support.changed`), which read that one request again
by `_id`; every `queue_refresh_seconds` a replica reads them all again (a signal lost while NATS was away is healed).

Request ids begin with their creation time, so each index is a list of ids in creation order: a page walks it from the
newest (or from the `before` of the page above) and stops once full."""

from __future__ import annotations

import bisect
import gc
import logging
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from maille_kit.bus import Bus
from maille_support.categories import ACTIVE
from maille_support.repository import SupportRepository

log = logging.getLogger("maille.support")
SIGNAL = "signal.support.changed"
Doc = dict[str, Any]
Predicate = Callable[[Doc], bool]


def folded(text: str) -> str:
    """Lower case without accents: "Élève" and "eleve" match."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


@dataclass
class Page:
    items: list[Doc]
    next: str | None
    counts: dict[str, int] = field(default_factory=dict)


class Index:
    """Ids in creation order, by key."""

    def __init__(self) -> None:
        self.lists: dict[str, list[str]] = {}

    def add(self, key: str, request_id: str) -> None:
        ids = self.lists.setdefault(key, [])
        if not ids or ids[-1] < request_id:
            ids.append(request_id)
            return
        at = bisect.bisect_left(ids, request_id)
        if at == len(ids) or ids[at] != request_id:
            ids.insert(at, request_id)

    def remove(self, key: str, request_id: str) -> None:
        ids = self.lists.get(key)
        if ids:
            at = bisect.bisect_left(ids, request_id)
            if at < len(ids) and ids[at] == request_id:
                del ids[at]

    def of(self, key: str) -> list[str]:
        return self.lists.get(key, [])


def keys_of(doc: Doc) -> set[str]:
    """The index lists a request is in: its school's, its author's, each desk's it went through — and, while it is
    to be treated (new, open, waiting), the `active:` lists of its school and of those desks (what a queue shows by
    default: a few hundred among tens of thousands)."""
    keys = {f"school:{doc['uai']}", f"author:{doc['author']}", *(f"desk:{d}" for d in doc.get("desks", []))}
    if doc.get("status") in ACTIVE:
        keys |= {f"active:school:{doc['uai']}", *(f"active:desk:{d}" for d in doc.get("desks", []))}
    return keys


# Fields a summary keeps (what the queues filter and show, and the clocks): the rest is read by `_id` when asked.
KEPT = (
    "_id",
    "author",
    "author_name",
    "profile",
    "uai",
    "school_name",
    "category",
    "subject",
    "status",
    "desk",
    "desks",
    "assignee",
    "assignee_name",
    "opened_at",
    "updated_at",
    "level_since",
    "level_answered",
    "first_answer_at",
    "waiting_since",
    "paused",
    "level_paused",
    "resolved_at",
    "overdue_told",
    "tracker",
    "tracker_out",
)
SHARED = ("uai", "school_name", "category", "status", "desk", "profile", "assignee", "assignee_name")


def slim(doc: Doc) -> Doc:
    """A request's summary, its repeated words shared (a school's name is one string however many requests)."""
    summary = {k: doc.get(k) for k in KEPT}
    for k in SHARED:
        value = summary[k]
        if isinstance(value, str):
            summary[k] = sys.intern(value)
    summary["desks"] = tuple(sys.intern(str(d)) for d in summary["desks"] or ())
    summary["_words"] = folded(f"{doc.get('subject', '')} {doc.get('author_name', '')}")
    return summary


class Queue:
    def __init__(self, repository: SupportRepository, bus: Bus | None = None) -> None:
        self.repository = repository
        self.bus = bus
        self.items: dict[str, Doc] = {}
        self.index = Index()
        self.loaded_at = 0.0

    def __len__(self) -> int:
        return len(self.items)

    async def load(self) -> int:
        """Every summary read again (at start, and at each refresh)."""
        docs = await self.repository.all_requests()
        items: dict[str, Doc] = {}
        index = Index()
        for doc in sorted(docs, key=lambda d: d["_id"]):
            summary = slim(doc)
            items[doc["_id"]] = summary
            for key in keys_of(summary):
                index.lists.setdefault(key, []).append(doc["_id"])
        self.items, self.index, self.loaded_at = items, index, time.monotonic()
        # Tens of thousands of long-lived summaries: out of the collector's sight (each full collection would walk
        # them all, a pause of a tenth of a second in the middle of the requests it serves).
        gc.collect()
        gc.freeze()
        return len(items)

    def apply(self, doc: Doc) -> None:
        """A request as it is now (written by this replica, or read again after another's signal)."""
        summary = slim(doc)
        before = self.items.get(doc["_id"])
        old, new = (keys_of(before) if before else set()), keys_of(summary)
        for key in old - new:
            self.index.remove(key, doc["_id"])
        for key in new - old:
            self.index.add(key, doc["_id"])
        self.items[doc["_id"]] = summary

    async def changed(self, doc: Doc) -> None:
        """Applied here, and the other replicas told (best effort: each refresh heals a lost signal)."""
        self.apply(doc)
        if self.bus is not None and self.bus.nc is not None and self.bus.connected:
            try:
                await self.bus.nc.publish(SIGNAL, doc["_id"].encode())
            except Exception as exc:
                log.warning("queue signal not sent: %s", exc)

    async def heard(self, request_id: str) -> None:
        doc = await self.repository.request(request_id)
        if doc is not None:
            self.apply(doc)

    def _ids(self, keys: Sequence[str]) -> list[str]:
        return _merge([self.index.of(key) for key in keys])

    def get(self, request_id: str) -> Doc | None:
        return self.items.get(request_id)

    def active(self) -> Iterable[Doc]:
        return (doc for doc in list(self.items.values()) if doc.get("status") in ACTIVE)

    def resolved(self) -> Iterable[Doc]:
        return (doc for doc in list(self.items.values()) if doc.get("status") == "resolved")

    def page(
        self,
        keys: Sequence[str],
        predicate: Predicate,
        *,
        before: str | None,
        size: int,
        count: Predicate | None = None,
        count_keys: Sequence[str] = (),
    ) -> Page:
        """The newest `size` summaries under `keys` that `predicate` keeps, older than `before`; with `count`, the
        counts by status of those of `count_keys` it keeps (the filter's chips)."""
        ids = self._ids(keys)
        end = bisect.bisect_left(ids, before) if before else len(ids)
        items: list[Doc] = []
        at = end - 1
        while at >= 0 and len(items) <= size:
            doc = self.items.get(ids[at])
            if doc is not None and predicate(doc):
                items.append(doc)
            at -= 1
        more = len(items) > size
        items = items[:size]
        counts: dict[str, int] = {}
        if count is not None:
            for request_id in self._ids(count_keys or keys):
                doc = self.items.get(request_id)
                if doc is not None and count(doc):
                    counts[doc["status"]] = counts.get(doc["status"], 0) + 1
        return Page(items, items[-1]["_id"] if more and items else None, counts)


def _merge(lists: list[list[str]]) -> list[str]:
    return lists[0] if len(lists) == 1 else sorted({i for ids in lists for i in ids})


def now() -> datetime:
    return datetime.now(UTC)
