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

from datasketches import hll_sketch

from maille_kit.usage import month_of
from maille_observatory.directory import PARENT, Directory
from maille_observatory.ingest import Ingest
from maille_observatory.repository import MONTHS, ObservatoryRepository
from maille_observatory.rollups import ENOUGH, SMALL, WAIT_HOURS, months_of_year, school_year_of, union
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

    @classmethod
    def of(cls, doc: Doc | None) -> Summary:
        if not doc:
            return cls()
        return cls(dict(doc.get("counts", {})), dict(doc.get("few", {})), dict(doc.get("estimates", {})))

    def behind(self, keys: Sequence[str]) -> int:
        """At least how many persons stand behind the sum of these counts (exact up to five)."""
        seen: set[str] = set()
        for key in keys:
            value = self.few.get(key)
            if value is None:
                continue
            if isinstance(value, int):
                return ENOUGH
            seen.update(value)
            if len(seen) >= ENOUGH:
                return ENOUGH
        return len(seen)


def merge(docs: Sequence[Doc]) -> tuple[dict[str, int], dict[str, list[str] | int], dict[str, float]]:
    counts: Counter[str] = Counter()
    few: dict[str, list[str] | int] = {}
    sketches: dict[str, list[hll_sketch]] = {}
    for doc in docs:
        counts.update(doc.get("counts", {}))
        for key, value in doc.get("few", {}).items():
            held = few.get(key)
            if isinstance(held, int) or isinstance(value, int):
                few[key] = ENOUGH
            elif held is None:
                few[key] = list(value)
            else:
                united = sorted(set(held) | set(value))
                few[key] = ENOUGH if len(united) >= ENOUGH else united
        for key, data in doc.get("sketches", {}).items():
            sketches.setdefault(key, []).append(hll_sketch.deserialize(bytes(data)))
    estimates = {key: round(union(found), 1) for key, found in sketches.items()}
    return dict(counts), few, estimates


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

    async def months_written(self, months: set[str]) -> None:
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

    def due(self, school_year: str) -> None:
        """Every month of a school year to merge again (an operator changed a territory)."""
        self.changed |= set(months_of_year(school_year))

    async def _merge_month(self, month: str) -> int:
        schools = sorted(self.directory.schools)
        held = {r.id: r.doc() for r in self.ingest.month_rollups(month)}
        missing = [f"{month}|{u}" for u in schools if f"{month}|{u}" not in held]
        stored = await self.repository.rollups(MONTHS, missing) if missing else {}
        docs = {**stored, **held}
        written = []
        for scope in self.scopes.merged():
            mine = [d for doc_id, d in docs.items() if scope.holds(doc_id.split("|", 1)[1])]
            counts, few, estimates = merge(mine)
            key = f"{month}|{scope.id}"
            written.append({"_id": key, "counts": counts, "few": few, "estimates": estimates})
            self.cache[key] = Summary(counts, few, estimates)
        await self.repository.write("scopes", written)
        self.merged_at[month] = time.time()
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
                found[month] = self.cache[f"{month}|{scope.id}"] = Summary.of(doc)
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

    async def build(self, scope: Scope, school_year: str | None = None) -> Doc:
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
        cells = []
        for hour in range(24):
            value, persons = 0, 0
            for month in months:
                summary = this[month]
                keys = [k for k in summary.counts if k.startswith("hour|connexion|") and k.endswith(f"|{hour}|1")]
                value += sum(summary.counts[k] for k in keys)
                persons = max(persons, summary.behind(keys))
            cells.append({"key": str(hour), "label": f"{hour} h", "value": value, "persons": persons})
        return {"title": "Connexions par heure, les jours de classe", "unit": "connexions", "cells": protect(cells)}

    def _breakdown(
        self, months: list[str], this: dict[str, Summary], dimension: str, at: int, labels: dict[str, str]
    ) -> Doc:
        values: Counter[str] = Counter()
        keys_of: dict[str, dict[str, list[str]]] = {}
        for month in months:
            for key, n in this[month].counts.items():
                parts = key.split("|")
                if parts[0] != dimension:
                    continue
                values[parts[at]] += n
                keys_of.setdefault(parts[at], {}).setdefault(month, []).append(key)
        cells = [
            {
                "key": name,
                "label": labels.get(name, name),
                "value": value,
                "persons": max(this[m].behind(keys) for m, keys in keys_of[name].items()),
            }
            for name, value in values.most_common()
        ]
        titles = {"service": "Services utilisés", "vendor": "Ressources ouvertes, par éditeur"}
        return {"title": titles[dimension], "unit": "ouvertures", "cells": protect(cells)}

    def _signins(self, months: list[str], this: dict[str, Summary]) -> Doc:
        """Sign-ins by identity provider and outcome."""
        values: Counter[str] = Counter()
        keys_of: dict[str, dict[str, list[str]]] = {}
        for month in months:
            for key, n in this[month].counts.items():
                parts = key.split("|")
                if parts[0] != "kind" or parts[1] != "connexion":
                    continue
                name = f"{parts[3] or 'inconnu'}|{parts[4]}"
                values[name] += n
                keys_of.setdefault(name, {}).setdefault(month, []).append(key)
        cells = []
        for name, value in values.most_common():
            idp, outcome = name.split("|")
            cells.append(
                {
                    "key": name,
                    "label": f"{idp} — {OUTCOMES.get(outcome, outcome)}",
                    "value": value,
                    "persons": max(this[m].behind(k) for m, k in keys_of[name].items()),
                }
            )
        return {
            "title": "Connexions par fournisseur d'identité et issue",
            "unit": "connexions",
            "cells": protect(cells),
        }

    def _support(self, months: list[str], this: dict[str, Summary]) -> Doc:
        """Help requests per category, and the time to their first answer."""
        opened: Counter[str] = Counter()
        waits: dict[str, Counter[str]] = {}
        keys_of: dict[str, dict[str, list[str]]] = {}
        for month in months:
            for key, n in this[month].counts.items():
                parts = key.split("|")
                if parts[0] == "kind" and parts[1] == "aide-demande":
                    opened[parts[4]] += n
                    keys_of.setdefault(parts[4], {}).setdefault(month, []).append(key)
                elif parts[0] == "wait":
                    waits.setdefault(parts[1], Counter())[parts[2]] += n
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
                    "persons": max(this[m].behind(k) for m, k in keys_of[category].items()),
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
        cells = []
        for uai in schools:
            found = (await self.summaries.get(self.scopes.school(uai), [month]))[month]
            active = found.estimates.get("*", 0.0)
            cells.append(
                {
                    "key": uai,
                    "label": str((self.directory.schools.get(uai) or {}).get("name") or uai),
                    "value": round(active),
                    "persons": min(round(active), ENOUGH),
                    "of": sum(self.directory.population_of([uai]).values()),
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
