"""Uses folded into rollups: per school and day (by hour), week and month — counts, the few persons behind each count
(exactly, up to five: what the suppression needs) and mergeable sketches of the distinct persons (Apache
DataSketches' HLL, lg_k 14: 0.8 % standard error; a month, a collectivité or the académie is a union of them).

Every rollup remembers the JetStream sequence of the last use folded into it (`seq`): uses are folded in the stream's
order, by one ingesting replica, so a use whose sequence is not beyond its rollup's is already counted — a message
delivered again after a crash, or the whole stream replayed, changes nothing.

Keys (what a chart or the export groups by), within a school's rollup:
- day `hours`: "<kind>|<profile>|<service>|<idp>|<detail>" → 24 counts, one per hour (Paris time);
- month `counts`: "<dimension>|…" → count, with the dimensions `hour` (kind, profile, hour, school day or not),
  `service` (service, profile), `kind` (kind, profile, idp, detail), `vendor` (vendor, profile), `wait` (category,
  bucket of the time to a first answer);
- `few`: the same keys → the first pseudonyms seen behind them (at most five; then the key is "enough");
- `sketches`: "*" (anyone), "<profile>", "<profile>|<service>", and for parents and pupils "class|<group id>|<profile>"
  → the serialised HLL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from datasketches import hll_sketch, hll_union, tgt_hll_type

from maille.observatory.v1 import usage_pb2 as pb
from maille_kit.usage import PARIS, month_of

LG_K = 14
SMALL = 5  # no figure behind fewer persons than this is shown
ENOUGH = SMALL
KINDS = {
    pb.KIND_SIGN_IN: "connexion",
    pb.KIND_SERVICE_OPENED: "service",
    pb.KIND_MAIL_SENT: "courriel-envoye",
    pb.KIND_MAIL_READ: "courriel-lu",
    pb.KIND_RESOURCE_OPENED: "ressource",
    pb.KIND_CDI_SEARCH: "cdi-recherche",
    pb.KIND_CDI_LOAN: "cdi-pret",
    pb.KIND_NEWS_READ: "actualite-lue",
    pb.KIND_SUPPORT_OPENED: "aide-demande",
    pb.KIND_SUPPORT_ANSWERED: "aide-reponse",
}
# Buckets of the time to a first answer (upper bounds, hours); the last is "beyond".
WAIT_HOURS = (1, 4, 8, 24, 72, 168)
Doc = dict[str, Any]


def new_sketch() -> hll_sketch:
    return hll_sketch(LG_K, tgt_hll_type.HLL_8)


def day_hour(at_ms: int, cache: dict[int, tuple[date, int]]) -> tuple[date, int]:
    """The Paris day and hour of a moment (cached by hour: thousands of uses share it)."""
    bucket = at_ms // 3_600_000
    found = cache.get(bucket)
    if found is None:
        local = datetime.fromtimestamp(bucket * 3600, UTC).astimezone(PARIS)
        found = cache[bucket] = (local.date(), local.hour)
    return found


def week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def school_year_of(month: str) -> str:
    """ "2026-2027" for the months from September 2026 to August 2027."""
    year, number = int(month[:4]), int(month[5:7])
    start = year if number >= 9 else year - 1
    return f"{start}-{start + 1}"


def months_of_year(school_year: str) -> list[str]:
    start = int(school_year[:4])
    return [f"{start + (m < 9):04d}-{m:02d}" for m in (9, 10, 11, 12, 1, 2, 3, 4, 5, 6, 7, 8)]


def wait_bucket(seconds: int) -> str:
    hours = seconds / 3600
    for bound in WAIT_HOURS:
        if hours <= bound:
            return f"<={bound}h"
    return f">{WAIT_HOURS[-1]}h"


@dataclass
class Rollup:
    """One school's rollup of one period (a day, a week or a month), as held while uses are folded in."""

    id: str  # "<period>|<uai>": "2026-12-07|0350001L", "2026-W50|…", "2026-12|…"
    seq: int = 0  # the stream sequence of the last use folded in
    stored_seq: int = 0  # … as stored (what a use must be beyond to be new)
    counts: dict[str, int] = field(default_factory=dict)
    hours: dict[str, list[int]] = field(default_factory=dict)
    few: dict[str, list[str] | int] = field(default_factory=dict)
    sketches: dict[str, hll_sketch] = field(default_factory=dict)
    dirty: bool = False

    def count(self, key: str, pseudonym: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n
        self.behind(key, pseudonym)

    def behind(self, key: str, pseudonym: str) -> None:
        seen = self.few.get(key)
        if seen is None:
            self.few[key] = [pseudonym]
        elif isinstance(seen, list) and pseudonym not in seen:
            seen.append(pseudonym)
            if len(seen) >= ENOUGH:
                self.few[key] = ENOUGH

    def hour(self, key: str, hour: int, pseudonym: str) -> None:
        counts = self.hours.get(key)
        if counts is None:
            counts = self.hours[key] = [0] * 24
        counts[hour] += 1
        self.behind(f"{key}|{hour}", pseudonym)

    def sketch(self, key: str, pseudonym: str) -> None:
        sketch = self.sketches.get(key)
        if sketch is None:
            sketch = self.sketches[key] = new_sketch()
        sketch.update(pseudonym)

    def estimates(self) -> dict[str, float]:
        return {key: round(sketch.get_estimate(), 1) for key, sketch in self.sketches.items()}

    def doc(self) -> Doc:
        """As stored: the sketches serialised (compact), their estimates beside them for the readers."""
        return {
            "_id": self.id,
            "seq": self.seq,
            "counts": self.counts,
            "hours": self.hours,
            "few": self.few,
            "sketches": {key: sketch.serialize_compact() for key, sketch in self.sketches.items()},
            "estimates": self.estimates(),
        }

    @classmethod
    def of(cls, doc: Doc) -> Rollup:
        return cls(
            id=doc["_id"],
            seq=int(doc.get("seq", 0)),
            stored_seq=int(doc.get("seq", 0)),
            counts=dict(doc.get("counts", {})),
            hours={k: list(v) for k, v in doc.get("hours", {}).items()},
            few={k: (list(v) if isinstance(v, list) else int(v)) for k, v in doc.get("few", {}).items()},
            sketches={k: hll_sketch.deserialize(bytes(v)) for k, v in doc.get("sketches", {}).items()},
        )


def fold(use: pb.Use, seq: int, day: Rollup, week: Rollup, month: Rollup, hour: int, school_day: bool) -> int:
    """Fold one use into its school's day, week and month rollups (each only if the use is new to it); how many of
    the three took it."""
    kind = KINDS.get(use.kind, "autre")
    who, profile, service = use.pseudonym, use.profile or "inconnu", use.service or kind
    taken = 0
    if seq > day.stored_seq:
        day.hour(f"{kind}|{profile}|{service}|{use.idp}|{use.detail}", hour, who)
        day.sketch("*", who)
        day.sketch(profile, who)
        day.seq, day.dirty = max(day.seq, seq), True
        taken += 1
    if seq > week.stored_seq:
        week.sketch("*", who)
        week.sketch(profile, who)
        week.seq, week.dirty = max(week.seq, seq), True
        taken += 1
    if seq > month.stored_seq:
        month.count(f"hour|{kind}|{profile}|{hour}|{int(school_day)}", who)
        month.count(f"service|{service}|{profile}", who)
        month.count(f"kind|{kind}|{profile}|{use.idp}|{use.detail}", who)
        if use.kind == pb.KIND_RESOURCE_OPENED and use.vendor:
            month.count(f"vendor|{use.vendor}|{profile}", who)
        if use.kind == pb.KIND_SUPPORT_ANSWERED:
            month.count(f"wait|{use.detail}|{wait_bucket(use.seconds)}", who)
        month.sketch("*", who)
        month.sketch(profile, who)
        month.sketch(f"{profile}|{service}", who)
        if use.kind == pb.KIND_SIGN_IN and not use.detail:
            for group in use.classes:
                month.sketch(f"class|{group}|{profile}", who)
        month.seq, month.dirty = max(month.seq, seq), True
        taken += 1
    return taken


def periods(day: date) -> tuple[str, str, str]:
    """The day's, week's and (pseudonyms') month's names."""
    return day.isoformat(), week_of(day), month_of(day)


def is_school_day(day: date) -> bool:
    return day.weekday() < 5


def union(sketches: Iterable[hll_sketch]) -> float:
    merged = hll_union(LG_K)
    for sketch in sketches:
        merged.update(sketch)
    return float(merged.get_estimate())


def union_bytes(serialised: Iterable[bytes]) -> hll_sketch:
    merged = hll_union(LG_K)
    for data in serialised:
        merged.update(hll_sketch.deserialize(bytes(data)))
    return merged.get_result(tgt_hll_type.HLL_8)


def persons_behind(values: Iterable[list[str] | int]) -> int:
    """At least how many persons stand behind a figure made of these (`few` entries of the same month): exact up to
    five."""
    seen: set[str] = set()
    for value in values:
        if isinstance(value, int):
            return ENOUGH
        seen.update(value)
        if len(seen) >= ENOUGH:
            return ENOUGH
    return len(seen)


def day_of(day_id: str) -> date:
    return date.fromisoformat(day_id)


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
