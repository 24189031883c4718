"""The figures people read: each month's rollups merged per scope (`Summaries`), and the dashboards made of them.

A scope's month is a merge, not a re-count: counts are summed, the few persons behind each count united (exactly, up
to five), the schools' sketches united for the distinct persons. The merges above a school are made in the
background (every `refresh_seconds`, and when a month's rollups are written) and kept (`scopes`), so that a dashboard
of the whole académie over a school year reads twenty-four summaries, never three hundred schools' rollups.

Anonymous by construction (`protect`): a figure behind fewer than five persons is not shown ("< 5"), and in every
breakdown (the cells of a chart, which sum to a total one could read elsewhere) a cell left out is never alone nor
the only few persons left out: the smallest other cells are left out with it until at least two are, behind five
persons or more together — subtracting the others from a total gives a sum of several cells, never one. Across months
the persons behind a figure are counted as the most of any one month (pseudonyms change each month: a person
active in three months is not three persons).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from datasketches import hll_sketch, hll_union

from maille_kit.usage import month_of
from maille_observatory.directory import PARENT, Directory
from maille_observatory.ingest import Ingest
from maille_observatory.repository import MONTHS, ObservatoryRepository
from maille_observatory.rollups import ENOUGH, LG_K, SMALL, WAIT_HOURS, months_of_year, persons_behind, school_year_of
from maille_observatory.scopes import Scope, Scopes

log = logging.getLogger("maille.observatory.views")
Doc = dict[str, Any]

PROFILES = {
    "National_ELV": "Élèves",
    "National_TUT": "Parents",
    "National_ENS": "Enseignants",
    "National_DIR": "Direction",
    "National_EVS": "Vie scolaire",
    "National_DOC": "Documentalistes",
    "National_ETA": "Personnels",
    "National_COL": "Personnels de la collectivité",
}
SERVICES = {
    "connexion": "Connexion",
    "accueil": "Accueil",
    "messagerie": "Messagerie",
    "mediacentre": "Médiacentre",
    "cdi": "CDI",
    "actualites": "Actualités",
    "notifications": "Notifications",
    "aide": "Aide",
    "classes": "Mes classes",
    "compte": "Mon compte",
    "administration": "Administration",
    "observatoire": "Observatoire",
}
OUTCOMES = {
    "": "Réussie",
    "no-match": "Inconnu de l'annuaire",
    "detached": "Compte détaché",
    "unavailable": "Service indisponible",
    "failed": "Échec",
    "refused": "Refusée",
}
CATEGORIES = {
    "account": "Compte et mot de passe",
    "resource": "Ressource ou médiacentre",
    "mail": "Messagerie",
    "library": "CDI",
    "equipment": "Matériel et réseau",
    "classroom": "Usage en classe",
    "other": "Autre",
}
MONTH_NAMES = ("sept.", "oct.", "nov.", "déc.", "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août")


def profile_label(code: str) -> str:
    return PROFILES.get(code, "Autres profils")


@dataclass
class Summary:
    """A month's figures for one scope."""

    counts: dict[str, int] = field(default_factory=dict)
    few: dict[str, list[str] | int] = field(default_factory=dict)
    estimates: dict[str, float] = field(default_factory=dict)
    _index: dict[str, list[tuple[list[str], str, int]]] | None = field(default=None, repr=False, compare=False)

    def of(self, dimension: str) -> list[tuple[list[str], str, int]]:
        """The counts of one dimension: (the key's parts after the dimension, the key, the count) — parsed once."""
        if self._index is None:
            index: dict[str, list[tuple[list[str], str, int]]] = {}
            for key, n in self.counts.items():
                parts = key.split("|")
                index.setdefault(parts[0], []).append((parts[1:], key, n))
            self._index = index
        return self._index.get(dimension, [])

    @classmethod
    def read(cls, doc: Doc | None) -> Summary:
        if not doc:
            return cls()
        return cls(dict(doc.get("counts", {})), dict(doc.get("few", {})), dict(doc.get("estimates", {})))

    def behind(self, keys: Sequence[str]) -> int:
        """At least how many persons stand behind the sum of these counts (exact up to five)."""
        return persons_behind(self.few[key] for key in keys if key in self.few)


def merged_few(held: list[str] | int | None, value: list[str] | int) -> list[str] | int:
    if isinstance(held, int) or isinstance(value, int):
        return ENOUGH
    if held is None:
        return list(value)
    united = sorted(set(held) | set(value))
    return ENOUGH if len(united) >= ENOUGH else united


# The sketches merged above a school: anyone and each profile (a profile × service, a class are a school's own).
def merged_sketch(key: str) -> bool:
    return "|" not in key


async def merge(
    parts: Sequence[tuple[dict[str, int], dict[str, list[str] | int], dict[str, hll_sketch]]],
) -> tuple[dict[str, int], dict[str, list[str] | int], dict[str, float]]:
    """Schools' months summed and united into one scope's (yielding to the requests between schools)."""
    counts: dict[str, int] = {}
    few: dict[str, list[str] | int] = {}
    unions: dict[str, hll_union] = {}
    for n, (their_counts, their_few, sketches) in enumerate(parts):
        get = counts.get
        for key, n_uses in their_counts.items():
            counts[key] = get(key, 0) + n_uses
        for key, behind in their_few.items():
            held = few.get(key)
            if held != ENOUGH:
                few[key] = merged_few(held, behind)
        for key, sketch in sketches.items():
            if merged_sketch(key):
                found = unions.get(key)
                if found is None:
                    found = unions[key] = hll_union(LG_K)
                found.update(sketch)
        if n % 20 == 19:
            await asyncio.sleep(0)
    return counts, few, {key: round(u.get_estimate(), 1) for key, u in unions.items()}


class Summaries:
    """The scopes' months, merged in the background and kept; a school's month read from its rollup."""

    def __init__(self, repository: ObservatoryRepository, ingest: Ingest, scopes: Scopes, directory: Directory) -> None:
        self.repository = repository
        self.ingest = ingest
        self.scopes = scopes
        self.directory = directory
        self.cache: dict[str, Summary] = {}  # "<month>|<scope id>"
        self.changed: set[str] = set()  # months whose merges are due
        self.merged_at: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self.generation = 0  # a merge done: the dashboards above a school are built again
        self.written = 0  # a school's rollups written: its dashboard is built again

    async def months_written(self, months: set[str]) -> None:
        self.written += 1
        self.changed |= months
        for month in months:  # a school's month is read again from its rollup
            for key in [k for k in self.cache if k.startswith(f"{month}|school:")]:
                del self.cache[key]

    async def refresh(self) -> int:
        """Merge the months that changed, for every scope above a school; how many summaries were written."""
        async with self._lock:
            months, self.changed = self.changed, set()
            written = 0
            for month in sorted(months):
                written += await self._merge_month(month)
            return written

    async def catch_up(self) -> int:
        """At start: the months of this school year and the last whose académie summary is missing (a store filled
        by an earlier version, or restored), and the current month, to merge at the next round."""
        year = school_year_of(month_of(date.today()))
        months = months_of_year(f"{int(year[:4]) - 1}-{year[:4]}") + months_of_year(year)
        stored = await self.repository.scopes([f"{m}|academie" for m in months])
        self.changed |= {m for m in months if f"{m}|academie" not in stored} | {month_of(date.today())}
        return len(self.changed)

    async def active(self, schools: Sequence[str], month: str) -> dict[str, float]:
        """Each school's active persons of a month (its sketch's estimate): from memory, else its stored rollup's."""
        found: dict[str, float] = {}
        missing: list[str] = []
        for uai in schools:
            rollup = self.ingest.held.get((MONTHS, f"{month}|{uai}"))
            cached = self.cache.get(f"{month}|school:{uai}")
            if rollup is not None:
                sketch = rollup.sketches.get("*")
                found[uai] = float(sketch.get_estimate()) if sketch is not None else 0.0
            elif cached is not None:
                found[uai] = cached.estimates.get("*", 0.0)
            else:
                missing.append(uai)
        if missing:
            stored = await self.repository.rollups(MONTHS, [f"{month}|{u}" for u in missing])
            for uai in missing:
                summary = self.cache[f"{month}|school:{uai}"] = Summary.read(stored.get(f"{month}|{uai}"))
                found[uai] = summary.estimates.get("*", 0.0)
        return found

    def due(self, school_year: str) -> None:
        """Every month of a school year to merge again (an operator changed a territory)."""
        self.changed |= set(months_of_year(school_year))

    async def _merge_month(self, month: str) -> int:
        schools = sorted(self.directory.schools)
        parts: dict[str, tuple[dict[str, int], dict[str, list[str] | int], dict[str, hll_sketch]]] = {}
        for rollup in self.ingest.month_rollups(month):  # being filled: as held (its sketches as they are)
            parts[rollup.id.split("|", 1)[1]] = (dict(rollup.counts), dict(rollup.few), dict(rollup.sketches))
        missing = [f"{month}|{u}" for u in schools if u not in parts]
        stored = await self.repository.rollups(MONTHS, missing) if missing else {}
        for doc_id, doc in stored.items():
            sketches = {
                k: hll_sketch.deserialize(bytes(v)) for k, v in doc.get("sketches", {}).items() if merged_sketch(k)
            }
            parts[doc_id.split("|", 1)[1]] = (doc.get("counts", {}), doc.get("few", {}), sketches)
        written = []
        for scope in self.scopes.merged():
            mine = [part for uai, part in parts.items() if scope.holds(uai)]
            counts, few, estimates = await merge(mine)
            key = f"{month}|{scope.id}"
            written.append({"_id": key, "counts": counts, "few": few, "estimates": estimates})
            self.cache[key] = Summary(counts, few, estimates)
        await self.repository.write("scopes", written)
        self.merged_at[month] = time.time()
        self.generation += 1
        return len(written)

    async def get(self, scope: Scope, months: Sequence[str]) -> dict[str, Summary]:
        """The scope's summaries of these months: a school's month being filled from memory, others from the cache or
        the store."""
        found: dict[str, Summary] = {}
        missing: list[str] = []
        uai = scope.id.split(":", 1)[1] if scope.kind == "school" else ""
        for month in months:
            if uai:
                rollup = self.ingest.held.get((MONTHS, f"{month}|{uai}"))
                if rollup is not None:
                    found[month] = Summary(rollup.counts, rollup.few, rollup.estimates())
                    continue
            cached = self.cache.get(f"{month}|{scope.id}")
            if cached is not None:
                found[month] = cached
            else:
                missing.append(month)
        if missing:
            if uai:
                stored = await self.repository.rollups(MONTHS, [f"{m}|{uai}" for m in missing])
                docs = {m: stored.get(f"{m}|{uai}") for m in missing}
            else:
                stored = await self.repository.scopes([f"{m}|{scope.id}" for m in missing])
                docs = {m: stored.get(f"{m}|{scope.id}") for m in missing}
            for month, doc in docs.items():
                found[month] = self.cache[f"{month}|{scope.id}"] = Summary.read(doc)
        return found


def protect(cells: list[Doc]) -> list[Doc]:
    """Mark the cells not to show (`secret`): behind fewer than five persons, and then the smallest others of the
    breakdown until the cells left out are two or more and behind five persons or more together."""
    for cell in cells:
        cell["secret"] = 0 < cell["persons"] < SMALL
    hidden = [c for c in cells if c["secret"]]
    if hidden:
        others = sorted((c for c in cells if not c["secret"] and c["value"]), key=lambda c: (c["value"], c["key"]))
        while (len(hidden) < 2 or sum(min(c["persons"], SMALL) for c in hidden) < SMALL) and others:
            extra = others.pop(0)
            extra["secret"] = True
            hidden.append(extra)
    for cell in cells:
        if cell["secret"]:
            cell["value"] = None
    return cells


class Dashboards:
    """The charts of one scope over a school year, against the year before."""

    def __init__(self, summaries: Summaries, directory: Directory, scopes: Scopes) -> None:
        self.summaries = summaries
        self.directory = directory
        self.scopes = scopes
        # Built dashboards, kept until what they read changes: a merge (above a school), a school's rollups written.
        self.built: dict[tuple[str, str | None], tuple[tuple[int, int], asyncio.Future[Doc]]] = {}

    async def build(self, scope: Scope, school_year: str | None = None) -> Doc:
        """The dashboard, built once per change of what it reads (those asking meanwhile wait for the same build)."""
        stamp = (self.summaries.generation, self.summaries.written if scope.kind == "school" else 0)
        key = (scope.id, school_year)
        held = self.built.get(key)
        if held is not None and held[0] == stamp and not (held[1].done() and held[1].exception()):
            return await asyncio.shield(held[1])
        future: asyncio.Future[Doc] = asyncio.get_running_loop().create_future()
        self.built[key] = (stamp, future)
        if len(self.built) > 2000:  # the oldest let go
            del self.built[next(iter(self.built))]
        try:
            future.set_result(await self._build(scope, school_year))
        except Exception as exc:
            future.set_exception(exc)
            self.built.pop(key, None)
            raise
        return future.result()

    async def _build(self, scope: Scope, school_year: str | None = None) -> Doc:
        today = date.today()
        current_month = month_of(today)
        year = school_year or school_year_of(current_month)
        months = months_of_year(year)
        before = months_of_year(f"{int(year[:4]) - 1}-{int(year[:4])}")
        this, last = await self.summaries.get(scope, months), await self.summaries.get(scope, before)
        population = self.directory.population_of(None if scope.schools is None else list(scope.schools))
        latest = max((m for m in months if this[m].counts), default=months[0])
        charts = {
            "active": self._active(months, before, this, last, population),
            "hours": self._hours(months, this),
            "services": self._breakdown(months, this, "service", 1, SERVICES),
            "signins": self._signins(months, this),
            "vendors": self._breakdown(months, this, "vendor", 1, {}),
            "support": self._support(months, this),
            "parents": self._parents(scope, latest, this[latest]) if scope.kind == "school" else None,
            "schools": await self._schools(scope, latest) if scope.kind != "school" else None,
        }
        return {
            "scope": {"id": scope.id, "label": scope.label},
            "school_year": year,
            "month": latest,
            "months": [MONTH_NAMES[i] for i in range(12)],
            "population": [
                {"key": p, "label": profile_label(p), "value": n} for p, n in sorted(population.items()) if n
            ],
            "merged_at": self.summaries.merged_at.get(latest),
            "charts": {k: v for k, v in charts.items() if v is not None},
        }

    def _active(
        self,
        months: list[str],
        before: list[str],
        this: dict[str, Summary],
        last: dict[str, Summary],
        population: dict[str, int],
    ) -> Doc:
        """Active persons per profile each month (the share of the profile's population), this year and last."""
        series = []
        for profile in sorted(p for p in population if p in PROFILES):
            for label, span, found in (("cette année", months, this), ("l'an dernier", before, last)):
                points = []
                for month in span:
                    active = found[month].estimates.get(profile, 0.0)
                    shown = active >= SMALL
                    points.append(
                        {
                            "month": month,
                            "persons": round(active) if shown else None,
                            "rate": round(100 * active / population[profile], 1)
                            if shown and population[profile]
                            else None,
                            "secret": 0 < active < SMALL,
                        }
                    )
                series.append({"profile": profile, "label": f"{profile_label(profile)} — {label}", "points": points})
        return {"title": "Personnes actives par profil, chaque mois", "unit": "%", "series": series}

    def _hours(self, months: list[str], this: dict[str, Summary]) -> Doc:
        """Sign-ins by hour on school days, over the year."""
        values = [0] * 24
        persons = [0] * 24
        for month in months:
            keys: list[list[str]] = [[] for _ in range(24)]
            for parts, key, n in this[month].of("hour"):  # kind, profile, hour, school day
                if parts[0] == "connexion" and parts[3] == "1":
                    hour = int(parts[2])
                    values[hour] += n
                    keys[hour].append(key)
            for hour in range(24):
                if keys[hour]:
                    persons[hour] = max(persons[hour], this[month].behind(keys[hour]))
        cells = [
            {"key": str(hour), "label": f"{hour} h", "value": values[hour], "persons": persons[hour]}
            for hour in range(24)
        ]
        return {"title": "Connexions par heure, les jours de classe", "unit": "connexions", "cells": protect(cells)}

    def _grouped(
        self, months: list[str], this: dict[str, Summary], dimension: str, name: Any
    ) -> tuple[Counter[str], dict[str, int]]:
        """Counts of a dimension summed over the months by `name(parts)` (None: left out), and the persons behind
        each (the most of any one month)."""
        values: Counter[str] = Counter()
        persons: dict[str, int] = {}
        for month in months:
            keys: dict[str, list[str]] = {}
            for parts, key, n in this[month].of(dimension):
                found = name(parts)
                if found is None:
                    continue
                values[found] += n
                keys.setdefault(found, []).append(key)
            for found, these in keys.items():
                persons[found] = max(persons.get(found, 0), this[month].behind(these))
        return values, persons

    def _breakdown(
        self, months: list[str], this: dict[str, Summary], dimension: str, at: int, labels: dict[str, str]
    ) -> Doc:
        values, persons = self._grouped(months, this, dimension, lambda parts: parts[at - 1])
        cells = [
            {"key": name, "label": labels.get(name, name), "value": value, "persons": persons[name]}
            for name, value in values.most_common()
        ]
        titles = {"service": "Services utilisés", "vendor": "Ressources ouvertes, par éditeur"}
        return {"title": titles[dimension], "unit": "ouvertures", "cells": protect(cells)}

    def _signins(self, months: list[str], this: dict[str, Summary]) -> Doc:
        """Sign-ins by identity provider and outcome."""
        values, persons = self._grouped(
            months,
            this,
            "kind",
            lambda parts: f"{parts[2] or 'inconnu'}|{parts[3]}" if parts[0] == "connexion" else None,
        )
        cells = []
        for name, value in values.most_common():
            idp, outcome = name.split("|")
            cells.append(
                {
                    "key": name,
                    "label": f"{idp} — {OUTCOMES.get(outcome, outcome)}",
                    "value": value,
                    "persons": persons[name],
                }
            )
        return {
            "title": "Connexions par fournisseur d'identité et issue",
            "unit": "connexions",
            "cells": protect(cells),
        }

    def _support(self, months: list[str], this: dict[str, Summary]) -> Doc:
        """Help requests per category, and the time to their first answer."""
        opened, persons = self._grouped(
            months, this, "kind", lambda parts: parts[3] if parts[0] == "aide-demande" else None
        )
        waits: dict[str, Counter[str]] = {}
        for month in months:
            for parts, _, n in this[month].of("wait"):
                waits.setdefault(parts[0], Counter())[parts[1]] += n
        cells = []
        order = [f"<={b}h" for b in WAIT_HOURS] + [f">{WAIT_HOURS[-1]}h"]
        for category, value in opened.most_common():
            found = waits.get(category, Counter())
            total, running, median = sum(found.values()), 0, None
            for bucket in order:
                running += found.get(bucket, 0)
                if total and running * 2 >= total:
                    median = bucket
                    break
            cells.append(
                {
                    "key": category,
                    "label": CATEGORIES.get(category, category),
                    "value": value,
                    "persons": persons[category],
                    "first_answer": median.replace("<=", "≤ ").replace(">", "> ").replace("h", " h")
                    if median
                    else None,
                }
            )
        protect(cells)
        for cell in cells:
            if cell["secret"]:
                cell["first_answer"] = None
        return {
            "title": "Demandes d'aide par catégorie, et délai de première réponse (médian)",
            "unit": "demandes",
            "cells": cells,
        }

    def _parents(self, scope: Scope, month: str, summary: Summary) -> Doc:
        """Parents who signed in this month, per class (the share of the class's parents)."""
        cells: list[Doc] = []
        for key, active in summary.estimates.items():
            if not key.startswith("class|") or not key.endswith(f"|{PARENT}"):
                continue
            group = key.split("|")[1]
            parents = self.directory.parents_of_class(group)
            cells.append(
                {
                    "key": group,
                    "label": group.split("$")[-1],
                    "value": round(active),
                    "persons": min(round(active), ENOUGH),
                    "of": parents,
                }
            )
        for group, school in self.directory.class_school.items():
            if school in (scope.schools or ()) and not any(c["key"] == group for c in cells):
                cells.append(
                    {
                        "key": group,
                        "label": group.split("$")[-1],
                        "value": 0,
                        "persons": 0,
                        "of": self.directory.parents_of_class(group),
                    }
                )
        cells.sort(key=lambda c: c["label"])
        protect(cells)
        for cell in cells:
            cell["rate"] = (
                round(100 * cell["value"] / cell["of"], 1) if cell["value"] is not None and cell["of"] else None
            )
        return {"title": f"Parents connectés par classe ({month})", "unit": "parents", "cells": cells}

    async def _schools(self, scope: Scope, month: str) -> Doc:
        """Active persons per school this month, against its population."""
        schools = sorted(scope.schools if scope.schools is not None else self.directory.schools)
        population = self.directory.population_by_school()
        active = await self.summaries.active(schools, month)
        cells = []
        for uai in schools:
            found = active.get(uai, 0.0)
            cells.append(
                {
                    "key": uai,
                    "label": str((self.directory.schools.get(uai) or {}).get("name") or uai),
                    "value": round(found),
                    "persons": min(round(found), ENOUGH),
                    "of": population.get(uai, 0),
                }
            )
        protect(cells)
        return {"title": f"Personnes actives par établissement ({month})", "unit": "personnes", "cells": cells}


def to_csv(chart: Doc) -> str:
    """One chart's data as CSV (semicolons, as French spreadsheets read it): a figure left out reads "< 5"."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    if "series" in chart:
        writer.writerow(["série", "mois", "personnes", "taux (%)"])
        for series in chart["series"]:
            for point in series["points"]:
                secret = point["secret"]
                writer.writerow(
                    [
                        series["label"],
                        point["month"],
                        "< 5" if secret else ("" if point["persons"] is None else point["persons"]),
                        "" if point["rate"] is None else str(point["rate"]).replace(".", ","),
                    ]
                )
    else:
        extra = [k for k in ("of", "rate", "first_answer") if any(k in c for c in chart["cells"])]
        writer.writerow(["clé", "libellé", chart["unit"], *extra])
        for cell in chart["cells"]:
            writer.writerow(
                [
                    cell["key"],
                    cell["label"],
                    "< 5" if cell["secret"] else cell["value"],
                    *["" if cell.get(k) is None else cell.get(k) for k in extra],
                ]
            )
    return out.getvalue()
