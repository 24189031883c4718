"""The médiacentre: each signed-in person's resources — those of the catalog's valid subscriptions that match
their schools and publics (per-person ones: a licence assigned to them), merged with the GAR's list asked
per school, de-duplicated by `idRessource`.

A person's list is kept in memory until something it depends on changes — every replica hears every event:
a resource of theirs changed or withdrawn, a subscription of one of their schools created, changed, deleted or
expired, a licence of theirs assigned or released, a directory change of theirs. The GAR's answers are kept
`gar_cache_seconds` (and so is a list at most); a GAR that is slow or failing gives the local list with a flag
saying which schools are missing, never an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from maille.catalog.v1 import mediacentre_pb2
from maille_catalog.directory import Directory, publics_in
from maille_catalog.gar import GarClient, GarUnavailable, gar_link
from maille_catalog.offer import Offer, Offered, offered_of_doc
from maille_catalog.repository import FAVOURITES, FavouriteRepository
from maille_contracts import FAVOURITE_CHANGED
from maille_kit.docstore import Docstore, by_ids
from maille_kit.text import folded
from maille_kit.work import Works

log = logging.getLogger("maille.catalog.mediacentre")

Doc = dict[str, Any]
FIELDS = (
    "idRessource",
    "idType",
    "nomRessource",
    "idEditeur",
    "nomEditeur",
    "urlVignette",
    "urlAccesRessource",
    "typePresentation",
    "typePedagogique",
    "typologieDocument",
    "niveauEducatif",
    "domaineEnseignement",
)


@dataclass(slots=True)
class Shelf:
    """A person's médiacentre before filters: the resources, and which schools' GAR lists are missing."""

    resources: list[Doc]
    gar_missing: dict[str, str]  # UAI -> why
    favourites: set[str]  # ARKs


class Mediacentre:
    """Every person's médiacentre, computed once and kept until it changes."""

    def __init__(
        self,
        docstore: Docstore,
        gar: GarClient | None,
        *,
        ent: str,
        gar_link_url: str,
        gar_cache_seconds: float,
        cache_size: int,
    ) -> None:
        self.docstore = docstore
        self.directory = Directory(docstore)
        self.offer = Offer()
        self.assignments = docstore.db["assignments"]
        self.favourites = FavouriteRepository(docstore)
        self.gar = gar
        self.ent = ent
        self.gar_link_url = gar_link_url
        self.gar_cache_seconds = gar_cache_seconds
        self.cache_size = cache_size
        # person -> (until, shelf, what it depends on: "person:…", "uai:…", "ark:…")
        self._shelves: OrderedDict[str, tuple[float, Shelf, tuple[str, ...]]] = OrderedDict()
        self._dependents: dict[str, set[str]] = {}  # "uai:…" / "ark:…" / "person:…" -> persons whose list depends on it
        self._tick = 0  # counts changes heard
        self._changed: dict[
            str, int
        ] = {}  # dependency -> tick of its last change (a list computed meanwhile is not kept)
        self._floor = 0  # lists computed before this tick are not kept (the record above was trimmed)
        self._gar: dict[tuple[str, str], tuple[float, list[Doc]]] = {}  # (UAI, person) -> (until, resources)

    async def close(self) -> None:
        """Close the connections to the GAR's resource list (at the service's stop)."""
        if self.gar is not None:
            await self.gar.close()

    # -- invalidation -------------------------------------------------------------------------------------

    def changed(
        self, *, persons: Iterable[str] = (), schools: Iterable[str] = (), resources: Iterable[str] = ()
    ) -> None:
        """Something changed: the lists depending on it are computed again when next asked."""
        self._tick += 1
        keys = [*(f"person:{p}" for p in persons), *(f"uai:{u}" for u in schools), *(f"ark:{a}" for a in resources)]
        for key in keys:
            self._changed[key] = self._tick
            for person in list(self._dependents.get(key, ())):
                self._drop(person)
        if len(self._changed) > 200_000:
            self._changed.clear()
            self._floor = self._tick

    # What this replica wrote itself, seen at once (its events come back later and change nothing more).

    def wrote_resource(self, doc: Doc) -> None:
        fields = {k: v for k, v in doc.items() if not k.startswith("_")}
        if self.offer.put_resource(fields, published=doc["statut"] == "publiee"):
            self.changed(resources=[doc["_id"]])

    def wrote_subscription(self, doc: Doc) -> None:
        self.offer.put_subscription(offered_of_doc(doc), written=True)
        self.changed(schools=doc["uaiEtab"])

    def deleted_subscription(self, doc: Doc) -> None:
        self.offer.drop_subscription(doc["_id"], version=doc["version"])
        self.changed(schools=doc["uaiEtab"], resources=[doc["idRessource"]])

    def person_changed(self, person_id: str) -> None:
        self.changed(persons=[person_id])

    def _drop(self, person_id: str) -> None:
        kept = self._shelves.pop(person_id, None)
        if kept is None:
            return
        for key in kept[2]:
            dependents = self._dependents.get(key)
            if dependents is not None:
                dependents.discard(person_id)
                if not dependents:
                    del self._dependents[key]

    # -- reading ------------------------------------------------------------------------------------------

    async def shelf(self, person_id: str) -> Shelf:
        now = time.monotonic()
        kept = self._shelves.get(person_id)
        if kept is not None and kept[0] > now:
            self._shelves.move_to_end(person_id)
            return kept[1]
        started = self._tick
        shelf, depends_on = await self._compute(person_id)
        deps = (f"person:{person_id}", *depends_on)
        if started < self._floor or any(self._changed.get(key, 0) > started for key in deps):
            return shelf  # changed while it was computed: answered, not kept
        self._drop(person_id)
        # A list missing a GAR answer is kept only as long as a failed GAR answer would be.
        until = now + (min(30.0, self.gar_cache_seconds) if shelf.gar_missing else self.gar_cache_seconds)
        self._shelves[person_id] = (until, shelf, deps)
        for key in deps:
            self._dependents.setdefault(key, set()).add(person_id)
        while len(self._shelves) > self.cache_size:
            self._drop(next(iter(self._shelves)))
        return shelf

    async def _favourites(self, person_id: str) -> set[str]:
        doc = await self.favourites.of(person_id)
        return set(doc["arks"]) if doc else set()

    async def set_favourite(self, person_id: str, ark: str, on: bool, *, works: Works, tenant: str) -> None:
        """Mark or unmark a favourite: one document per person (read by key), and an event every replica hears
        (their copy of the person's list follows) — one unit of work."""
        work = works.new()
        change = {"$addToSet": {"arks": ark}} if on else {"$pull": {"arks": ark}}
        work.update(FAVOURITES, {"_id": person_id}, change, upsert=on)
        work.event(
            type=FAVOURITE_CHANGED,
            tenant=tenant,
            payload=mediacentre_pb2.FavouriteChanged(person_id=person_id, resource_id=ark, favourite=on),
        )
        await works.commit(work)
        kept = self._shelves.get(person_id)
        if kept is not None:  # this replica's copy at once
            (kept[1].favourites.add if on else kept[1].favourites.discard)(ark)

    async def _compute(self, person_id: str) -> tuple[Shelf, list[str]]:
        """A person's list, and what it depends on besides them: their schools, the resources subscribed for them
        (shown or not)."""
        person = await self.directory.person(person_id)
        if person is None:  # not in the directory (yet): nothing subscribed for them
            return Shelf([], {}, await self._favourites(person_id)), []
        schools = person.get("etablissements", [])
        local_task = asyncio.ensure_future(self._local(person, schools))
        favourites_task = asyncio.ensure_future(self._favourites(person_id))
        gar_results = await asyncio.gather(*(self._gar_list(uai, person_id) for uai in schools)) if self.gar else []
        local, subscribed = await local_task
        merged: dict[str, Doc] = {r["idRessource"]: r for r in local}
        missing: dict[str, str] = {}
        for uai, outcome in zip(schools, gar_results):
            if isinstance(outcome, str):
                missing[uai] = outcome
                continue
            for resource in outcome:
                ark = resource["idRessource"]
                if ark in merged:  # listed already: by the catalog, or by the GAR for another school
                    entry = merged[ark]
                    entry["sources"] += [] if "gar" in entry["sources"] else ["gar"]
                    entry["etablissements"] += [] if uai in entry["etablissements"] else [uai]
                    continue
                entry = {k: resource.get(k) for k in FIELDS if k in resource}
                entry.update(
                    sources=["gar"],
                    etablissements=[uai],
                    lien=gar_link(self.gar_link_url, ent=self.ent, uai=uai, ark=ark),
                )
                merged[ark] = entry
        resources = sorted(merged.values(), key=lambda r: folded(r.get("nomRessource") or ""))
        return Shelf(resources, missing, await favourites_task), [
            *(f"uai:{u}" for u in schools),
            *(f"ark:{a}" for a in subscribed),
        ]

    async def _local(self, person: Doc, schools: list[str]) -> tuple[list[Doc], list[str]]:
        """The catalog's resources for the person, and the resources subscribed for them (shown or not)."""
        now = datetime.now(UTC)
        matching: dict[str, list[str]] = {}  # ARK -> schools
        per_person: list[tuple[Offered, str]] = []
        for uai in schools:
            publics = set(publics_in(person, uai))
            for offered in self.offer.by_school.get(uai, {}).values():
                if not offered.valid(now) or uai in offered.removed:
                    continue
                if offered.per_person:
                    per_person.append((offered, uai))
                elif publics & offered.publics:
                    matching.setdefault(offered.ark, []).append(uai)
        if per_person:  # a licence of theirs: one look-up by key each (never a scan)
            held = await by_ids(self.assignments, [f"{o.id}|{person['_id']}" for o, _ in per_person], {"uai": 1})
            for offered, uai in per_person:
                doc = held.get(f"{offered.id}|{person['_id']}")
                if doc is not None and doc["uai"] == uai:
                    matching.setdefault(offered.ark, []).append(uai)
        found = []
        for ark, where in matching.items():
            resource = self.offer.resources.get(ark)
            if resource is not None:
                entry = {k: resource.get(k) for k in FIELDS}
                entry.update(
                    idType="ARK",
                    sources=["maille"],
                    etablissements=sorted(set(where)),
                    lien=resource["urlAccesRessource"],
                )
                found.append(entry)
        return found, list(matching)

    async def _gar_list(self, uai: str, person_id: str) -> list[Doc] | str:
        """The GAR's list for one school, or why it is missing."""
        key = (uai, person_id)
        now = time.monotonic()
        kept = self._gar.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        assert self.gar is not None
        try:
            listed = await self.gar.resources(uai, person_id)
        except GarUnavailable as exc:
            log.warning("GAR list of %s missing: %s", uai, exc)
            return str(exc)
        if len(self._gar) > self.cache_size * 2:
            self._gar = {k: v for k, v in self._gar.items() if v[0] > now}
        self._gar[key] = (now + self.gar_cache_seconds, listed)
        return listed


def matches(resource: Doc, *, niveau: str | None, domaine: str | None, type: str | None, q: str | None) -> bool:
    """Whether a resource passes the filters: a level, a domain, a type (presentation code or pedagogical type),
    each by concept URI or name, and words searched in its name and vendor, without regard to case or accents."""

    def has(key: str, wanted: str) -> bool:
        wanted_folded = folded(wanted)
        return any(
            c.get("uri") == wanted or folded(c.get("nom") or "") == wanted_folded for c in resource.get(key) or []
        )

    if niveau and not has("niveauEducatif", niveau):
        return False
    if domaine and not has("domaineEnseignement", domaine):
        return False
    if type:
        presentation = resource.get("typePresentation") or {}
        if (
            presentation.get("code") != type
            and folded(presentation.get("nom") or "") != folded(type)
            and not has("typePedagogique", type)
        ):
            return False
    if q:
        text = folded(f"{resource.get('nomRessource') or ''} {resource.get('nomEditeur') or ''}")
        if not all(word in text for word in folded(q).split()):
            return False
    return True
