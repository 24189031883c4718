"""Searching the CDI catalogues of a person's schools: every school's PMB asked at once, the answers merged and
paged, each school's answer kept a short while. A PMB that is down, slow or refusing leaves the other schools'
results, and the answer names the schools missing and why."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from maille_library.connections import Connections
from maille_library.directory import Directory
from maille_library.pmb import PmbClient, PmbError, Record

MAX_FETCHED = 200  # records asked of one school for one search (pages beyond are not offered)


@dataclass
class Found:
    total: int
    results: list[dict[str, Any]]
    missing: list[dict[str, str]]


def result_of(uai: str, record: Record) -> dict[str, Any]:
    cover = record.cover if record.cover and record.cover.startswith(("https://", "http://")) else None
    return {**record.model_dump(), "cover": cover, "uai": uai}


class Search:
    """Searches across schools' PMBs for the persons the directory knows."""

    def __init__(
        self,
        client: PmbClient,
        connections: Connections,
        directory: Directory,
        *,
        timeout: float,
        cache_seconds: float = 60.0,
        cache_size: int = 10_000,
    ) -> None:
        self.client = client
        self.connections = connections
        self.directory = directory
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, int, str, int], tuple[float, int, list[Record]]] = OrderedDict()

    async def search(self, person_id: str, term: str, *, search_type: int, page: int, size: int) -> Found:
        schools = await self.directory.schools_of(person_id)
        wanted = min((page + 1) * size, MAX_FETCHED)
        answers = await asyncio.gather(*(self._school(uai, term, search_type, wanted) for uai in schools))
        per_school: list[tuple[str, list[Record]]] = []
        missing: list[dict[str, str]] = []
        total = 0
        for uai, answer in zip(schools, answers):
            if isinstance(answer, str):
                missing.append({"uai": uai, "reason": answer})
            else:
                total += answer[0]
                per_school.append((uai, answer[1]))
        merged: list[dict[str, Any]] = []
        for rank in range(max((len(records) for _, records in per_school), default=0)):  # each school's best first
            merged.extend(result_of(uai, records[rank]) for uai, records in per_school if rank < len(records))
        return Found(total=total, results=merged[page * size : (page + 1) * size], missing=missing)

    async def _school(self, uai: str, term: str, search_type: int, wanted: int) -> tuple[int, list[Record]] | str:
        """One school's answer, or why there is none."""
        conn = await self.connections.get(uai)
        if conn is None:
            return "no PMB connection is registered for this school"
        key = (uai, search_type, term, wanted)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1], cached[2]
        try:
            async with asyncio.timeout(self.timeout):
                total, records = await self.client.search(conn, term, search_type=search_type, count=wanted)
        except TimeoutError:
            return f"the school's PMB did not answer within {self.timeout:g} s"
        except PmbError as exc:
            return exc.detail
        self._cache[key] = (time.monotonic() + self.cache_seconds, total, records)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return total, records
