"""The export for research: a school year's anonymous rollups as Parquet, with their data dictionary.

Two tables, one row per school and month (docs/observatory.md is the dictionary; each column's description is also in
the file's schema):
- `usages`: counts by dimension (hour, service, kind of use, vendor, wait for a first answer), each breakdown of a
  school's month protected as the dashboards are (`views.protect`): a count behind fewer than five persons is empty
  and `secret`, with enough others of its breakdown that no subtraction gives it back;
- `actifs`: distinct active persons per profile (sketch estimates, rounded), the school's population of the profile,
  and the school's total across profiles in the same breakdown.
No totals across schools are written: a reader sums the cells shown.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from maille_observatory.directory import Directory
from maille_observatory.ingest import Ingest
from maille_observatory.repository import MONTHS, WEEKS, ObservatoryRepository
from maille_observatory.rollups import months_of_year, week_of
from maille_observatory.scopes import Scope, Scopes
from maille_observatory.views import Summary, protect

USAGES = pa.schema(
    [
        pa.field("annee_scolaire", pa.string(), metadata={"description": "school year, e.g. 2026-2027"}),
        pa.field("mois", pa.string(), metadata={"description": "month of the uses (YYYY-MM; weeks kept whole)"}),
        pa.field("uai", pa.string(), metadata={"description": "the school's UAI"}),
        pa.field("type", pa.string(), metadata={"description": "the school's type (COLLEGE, LYCEE…)"}),
        pa.field("dimension", pa.string(), metadata={"description": "hour, service, kind, vendor or wait"}),
        pa.field("cle", pa.string(), metadata={"description": "the cell within the dimension, parts separated by |"}),
        pa.field("profil", pa.string(), metadata={"description": "national profile code, when the cell has one"}),
        pa.field("usages", pa.int64(), metadata={"description": "uses counted; empty when secret"}),
        pa.field("secret", pa.bool_(), metadata={"description": "left out: fewer than 5 persons, or to protect one"}),
    ]
)
ACTIFS = pa.schema(
    [
        pa.field("annee_scolaire", pa.string(), metadata={"description": "school year"}),
        pa.field("mois", pa.string(), metadata={"description": "the month (YYYY-MM) or the ISO week (YYYY-Www)"}),
        pa.field("uai", pa.string(), metadata={"description": "the school's UAI"}),
        pa.field("type", pa.string(), metadata={"description": "the school's type"}),
        pa.field("periode", pa.string(), metadata={"description": "mois (mois: YYYY-MM) or semaine (mois: YYYY-Www)"}),
        pa.field("profil", pa.string(), metadata={"description": "national profile code; * for every profile"}),
        pa.field("actifs", pa.int64(), metadata={"description": "distinct persons active in the month (estimate)"}),
        pa.field("population", pa.int64(), metadata={"description": "persons of the profile in the directory now"}),
        pa.field("secret", pa.bool_(), metadata={"description": "left out: fewer than 5 persons, or to protect one"}),
    ]
)
TABLES = {"usages": USAGES, "actifs": ACTIFS}
ESTIMATES = {"estimates": 1}  # a week's figures without its sketches


class Exports:
    def __init__(self, repository: ObservatoryRepository, ingest: Ingest, directory: Directory, scopes: Scopes) -> None:
        self.repository = repository
        self.ingest = ingest
        self.directory = directory
        self.scopes = scopes

    async def rows(self, scope: Scope, school_year: str) -> dict[str, list[dict[str, Any]]]:
        schools = sorted(scope.schools if scope.schools is not None else self.directory.schools)
        ids = [f"{m}|{u}" for m in months_of_year(school_year) for u in schools]
        stored = await self.repository.rollups(MONTHS, ids)
        usages: list[dict[str, Any]] = []
        actifs: list[dict[str, Any]] = []
        populations = self.directory.population_by_school_and_profile()
        for doc_id in ids:
            held = self.ingest.held.get((MONTHS, doc_id))
            summary = (
                Summary(held.counts, held.few, held.estimates())
                if held is not None
                else Summary.read(stored.get(doc_id))
            )
            if not summary.counts:
                continue
            month, uai = doc_id.split("|", 1)
            common = {"annee_scolaire": school_year, "mois": month, "uai": uai, "type": self.directory.school_type(uai)}
            groups: dict[str, list[dict[str, Any]]] = {}
            for key, n in summary.counts.items():
                dimension, _, rest = key.partition("|")
                profile = _profile_in(dimension, rest)
                group = f"{dimension}|{profile}" if dimension != "wait" else dimension
                groups.setdefault(group, []).append(
                    {"key": key, "value": n, "persons": summary.behind([key]), "cle": rest, "profil": profile}
                )
            for group, cells in sorted(groups.items()):
                for cell in protect(sorted(cells, key=lambda c: c["key"])):
                    usages.append(
                        {
                            **common,
                            "dimension": group.split("|")[0],
                            "cle": cell["cle"],
                            "profil": cell["profil"],
                            "usages": cell["value"],
                            "secret": cell["secret"],
                        }
                    )
            actifs += _actifs({**common, "periode": "mois"}, summary.estimates, populations.get(uai, {}))
        # Each week of the school year (a week lies within one month of pseudonyms: its distinct persons are exact).
        weeks = [f"{w}|{u}" for w in weeks_of_year(school_year) for u in schools]
        for doc_id, doc in sorted((await self.repository.rollups(WEEKS, weeks, ESTIMATES)).items()):
            held = self.ingest.held.get((WEEKS, doc_id))
            estimates = held.estimates() if held is not None else doc.get("estimates", {})
            week, uai = doc_id.split("|", 1)
            common = {"annee_scolaire": school_year, "mois": week, "uai": uai, "type": self.directory.school_type(uai)}
            actifs += _actifs({**common, "periode": "semaine"}, estimates, populations.get(uai, {}))
        return {"usages": usages, "actifs": actifs}

    async def parquet(self, scope: Scope, school_year: str, table: str) -> bytes:
        rows = (await self.rows(scope, school_year))[table]
        schema = TABLES[table].with_metadata(
            {
                "maille": f"observatoire des usages, {table}, {scope.label}, {school_year}",
                "dictionnaire": "docs/observatory.md",
            }
        )
        out = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), out, compression="zstd")
        return out.getvalue()


def _actifs(common: dict[str, Any], estimates: dict[str, float], population: dict[str, int]) -> list[dict[str, Any]]:
    """A school's active persons of a period per profile and for everyone (`*`), protected as one breakdown."""
    cells = [{"key": p, "value": round(e), "persons": min(round(e), 5)} for p, e in estimates.items() if "|" not in p]
    return [
        {
            **common,
            "profil": cell["key"],
            "actifs": cell["value"],
            "population": population.get(cell["key"], sum(population.values()) if cell["key"] == "*" else 0),
            "secret": cell["secret"],
        }
        for cell in protect(sorted(cells, key=lambda c: c["key"]))
    ]


def weeks_of_year(school_year: str) -> list[str]:
    """The ISO weeks whose Thursday falls from September to August of the school year."""
    start = date(int(school_year[:4]), 9, 1)
    thursday = start + timedelta(days=(3 - start.weekday()) % 7)
    found = []
    while thursday < date(int(school_year[:4]) + 1, 9, 1):
        found.append(week_of(thursday))
        thursday += timedelta(days=7)
    return found


def _profile_in(dimension: str, rest: str) -> str:
    parts = rest.split("|")
    if dimension in ("hour", "kind") and len(parts) > 1:
        return parts[1]
    if dimension in ("service", "vendor") and len(parts) > 1:
        return parts[1]
    return ""
