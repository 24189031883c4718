"""The observatory: uses ingested end to end, the school year's dashboards of the académie and of one school, and the
distinct-person counts at the académie's scale.

Sets up, on this machine: NATS, the docstore, the observatory and the gateway (each one process). The docstore is
filled first as an académie's would be in December: `--schools` schools (300: collèges and lycées, 10 districts, 3
collectivités), `--persons` persons (600,000) in the directory's copy, and the rollups a school year leaves — last
year's twelve months and this year's months before the current one (each school's month: its counts by hour, service,
kind, vendor and wait, and its sketches of distinct persons per profile, service and class). Then:

1. **ingest**: `--uses` uses (1,200,000: each person signs in once at 8 a.m. yesterday, then opens services) made
   beforehand as the services make them (`maille_kit.usage`: pseudonyms, batches of 500), published to JetStream as
   fast as NATS takes them; the time from the first publication until the observatory has folded every use, and until
   it has written them (its `flush_seconds`, 10 by default): uses per second, end to end;
2. **distinct persons**: once the month is merged for the académie (a union of the schools' sketches), its active
   persons per profile against the exact number of persons who signed in;
3. **dashboards**: the académie's school-year dashboard (24 months of summaries: this year against last) and one
   school's, each asked `--calls` times at `--rate`/s through the gateway (open loop); p50/p99.

    .venv/bin/python bench/observatory.py [--schools 300] [--persons 600000] [--uses 1200000]
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from joserfc.jwk import RSAKey
from pymongo import InsertOne, MongoClient

from common import arguments, bearer, machine, paced, pct, platform
from maille.observatory.v1 import usage_pb2 as pb
from maille_contracts import USE_RECORDED
from maille_kit.bus import Bus
from maille_kit.events import make_envelope, new_event_id
from maille_kit.usage import PARIS, month_of, pseudonym
from maille_observatory.rollups import (
    WAIT_HOURS,
    Rollup,
    months_of_year,
    school_year_of,
)

KEY = "bench-usage-key"
RECTORAT = "rectorat-bench"
PROFILES = [
    ("National_ELV", 0.55),
    ("National_TUT", 0.38),
    ("National_ENS", 0.05),
    ("National_EVS", 0.01),
    ("National_DIR", 0.01),
]
SERVICES = ["messagerie", "mediacentre", "cdi", "actualites", "accueil", "aide", "notifications"]
VENDORS = [f"editeur-{n:02d}" for n in range(30)]
CATEGORIES = ["account", "resource", "mail", "library", "equipment", "classroom", "other"]


def token(key: RSAKey, person: str, *roles: str) -> str:
    return bearer(key, ["maille", "maille-observatory"], person, *roles)


def uai(n: int) -> str:
    return f"{350000 + n:07d}{'ABCDEFGHJKLMNPRSTUVWXYZ'[n % 23]}"


def profile_of(n: int) -> str:
    r = (n * 2654435761 % 1000) / 1000
    total = 0.0
    for code, share in PROFILES:
        total += share
        if r < total:
            return code
    return PROFILES[0][0]


def seed(db: Any, schools: list[str], persons: int, rng: random.Random) -> dict[str, Any]:
    """The directory's copy, the territories, and the rollups of the school year so far and of the year before."""
    db["schools"].insert_many(
        [
            {
                "_id": u,
                "name": f"{'Lycée' if i % 4 == 0 else 'Collège'} n° {i}",
                "type": "LYCEE" if i % 4 == 0 else "COLLEGE",
            }
            for i, u in enumerate(schools)
        ]
    )
    batch: list[Any] = []
    for n in range(persons):
        school = schools[n % len(schools)]
        code = profile_of(n)
        doc = {"_id": f"p{n:07d}", "cells": [f"{school}|{code}"], "classes": [], "adults": [], "directs": []}
        if code == "National_ELV":
            doc["classes"] = [f"{school}$C{n // len(schools) % 25:02d}"]
            doc["adults"] = [f"a{n:07d}"]
        if code == "National_DIR":
            doc["directs"] = [school]
        batch.append(InsertOne(doc))
        if len(batch) == 5000:
            db["persons"].bulk_write(batch, ordered=False)
            batch = []
    if batch:
        db["persons"].bulk_write(batch, ordered=False)
    principal = next(f"p{n:07d}" for n in range(persons) if profile_of(n) == "National_DIR")
    db["territories"].insert_many(
        [{"_id": "academie", "kind": "academie", "name": "Académie", "schools": [], "viewers": [RECTORAT]}]
        + [
            {"_id": f"bassin-{d}", "kind": "district", "name": f"Bassin {d}", "schools": schools[d::10], "viewers": []}
            for d in range(10)
        ]
        + [
            {
                "_id": f"departement-{c}",
                "kind": "collectivite",
                "name": f"Département {c}",
                "schools": schools[c::3],
                "viewers": [],
            }
            for c in range(3)
        ]
    )
    today = date.today()
    year = school_year_of(month_of(today))
    months = months_of_year(f"{int(year[:4]) - 1}-{year[:4]}") + [
        m for m in months_of_year(year) if m < month_of(today)
    ]
    size = persons // len(schools)
    written = 0
    for month in months:
        docs = []
        for s, school in enumerate(schools):
            docs.append(month_rollup(month, school, s * size, size, rng).doc())
        db["months"].insert_many(docs)
        written += len(docs)
    return {"principal": principal, "school": schools[0], "months": written}


def month_rollup(month: str, school: str, first: int, size: int, rng: random.Random) -> Rollup:
    """A school's month as the ingest leaves it: ~70 % of its people active, their uses by hour, service, kind…"""
    rollup = Rollup(f"{month}|{school}", seq=1)
    for n in range(first, first + size):
        if rng.random() > 0.7:
            continue
        who = f"{month}:{n}"
        code = profile_of(n)
        for key in ("*", code, f"{code}|{SERVICES[n % len(SERVICES)]}"):
            rollup.sketch(key, who)
        if code == "National_TUT":
            rollup.sketch(f"class|{school}$C{n % 25:02d}|National_TUT", who)
        hour = 8 if rng.random() < 0.4 else rng.randrange(7, 22)
        rollup.count(f"hour|connexion|{code}|{hour}|1", who, rng.randrange(5, 40))
        rollup.count(f"service|{SERVICES[n % len(SERVICES)]}|{code}", who, rng.randrange(3, 30))
        rollup.count(
            f"kind|connexion|{code}|{'educonnect' if code in ('National_ELV', 'National_TUT') else 'agents'}|", who, 20
        )
        if n % 3 == 0:
            rollup.count(f"vendor|{VENDORS[n % len(VENDORS)]}|{code}", who, rng.randrange(1, 10))
        if n % 97 == 0:
            category = CATEGORIES[n % len(CATEGORIES)]
            rollup.count(f"kind|aide-demande|{code}||{category}", who)
            rollup.count(f"wait|{category}|<={WAIT_HOURS[n % len(WAIT_HOURS)]}h", who)
    return rollup


def made_uses(schools: list[str], persons: int, total: int, rng: random.Random) -> tuple[list[bytes], dict[str, int]]:
    """The uses, as the services tell them, made before the clock starts: every person signs in once yesterday
    between 7:30 and 9:00, then opens services until `total`. The envelopes, and the exact persons per profile."""
    day = date.today() - timedelta(days=1)
    start = int(datetime(day.year, day.month, day.day, 7, 30, tzinfo=PARIS).timestamp() * 1000)
    key = KEY.encode()
    uses: list[pb.Use] = []
    exact: dict[str, int] = {}
    for n in range(total):
        person = n if n < persons else rng.randrange(persons)
        code = profile_of(person)
        at = start + rng.randrange(90 * 60 * 1000)
        school = schools[person % len(schools)]
        if n < persons:
            exact[code] = exact.get(code, 0) + 1
            use = pb.Use(
                id=new_event_id(),
                at_ms=at,
                kind=pb.KIND_SIGN_IN,
                school=school,
                profile=code,
                service="connexion",
                idp="educonnect",
                pseudonym=pseudonym(key, f"p{person:07d}", at),
            )
        else:
            use = pb.Use(
                id=new_event_id(),
                at_ms=at,
                kind=pb.KIND_SERVICE_OPENED,
                school=school,
                profile=code,
                service=SERVICES[n % len(SERVICES)],
                pseudonym=pseudonym(key, f"p{person:07d}", at),
            )
        uses.append(use)
    envelopes = []
    for first in range(0, len(uses), 500):
        envelope = make_envelope(
            type=USE_RECORDED, tenant="bench", source="bench", payload=pb.UseRecorded(uses=uses[first : first + 500])
        )
        envelopes.append(envelope.SerializeToString())
    return envelopes, exact


async def ingest(
    nats_url: str, envelopes: list[bytes], observatory: str, operator: str, total: int
) -> dict[str, float]:
    bus = Bus(nats_url, name="bench-publisher")
    await bus.connect(timeout=10)
    http = httpx.AsyncClient(base_url=observatory, headers={"authorization": operator}, timeout=10)
    try:
        before = (await http.get("/api/observatory/v1/operator/figures")).json()
        started = time.perf_counter()
        for first in range(0, len(envelopes), 50):
            chunk = envelopes[first : first + 50]
            acked = await bus.publish_batch(
                [(USE_RECORDED, data, {"Nats-Msg-Id": f"bench-{first + i}"}) for i, data in enumerate(chunk)],
                timeout=30,
            )
            assert all(acked), "NATS refused uses"
        published = time.perf_counter() - started
        folded_at = written_at = None
        info = await bus.js.stream_info("OBSERVATORY")
        while written_at is None:
            figures = (await http.get("/api/observatory/v1/operator/figures")).json()
            now = time.perf_counter() - started
            if folded_at is None and figures["folded"] - before["folded"] >= total:
                folded_at = now
            if figures["flushed_seq"] >= info.state.last_seq:
                written_at = now
            assert now < 1200, figures
            await asyncio.sleep(0.2)
        assert figures["rejected"] == {}, figures
        return {
            "published_s": published,
            "folded_s": folded_at or written_at,
            "written_s": written_at,
            "folded_per_s": total / (folded_at or written_at),
            "written_per_s": total / written_at,
        }
    finally:
        await http.aclose()
        await bus.close()


async def dashboards(gateway: str, calls: int, rate: float, scope: str, who: str) -> tuple[list[float], int, float]:
    """The dashboard asked `calls` times at `rate`/s: the latencies, the failures, and the first call's time (ms)."""
    clients = [httpx.AsyncClient(base_url=gateway, headers={"authorization": who}, timeout=30) for _ in range(8)]

    async def one(client: httpx.AsyncClient, _: object) -> bool:
        answer = await client.get(f"/api/observatory/v1/dashboards/{scope}")
        return answer.status_code == 200 and "charts" in answer.json()

    try:
        started = time.perf_counter()
        await one(clients[0], None)  # the first: its summaries read from the store, the dashboard built
        first = (time.perf_counter() - started) * 1000
        start = time.perf_counter() + 0.2
        latencies, failed, done = await paced(clients, [(start + i / rate, None) for i in range(calls)], one)
        return latencies, failed, first
    finally:
        for client in clients:
            await client.aclose()


def main() -> None:
    args = arguments(__doc__, schools=300, persons=600_000, uses=1_200_000, calls=600, rate=20.0)
    rng = random.Random(7)
    schools = [uai(n) for n in range(args.schools)]
    with platform("observatory") as bench:
        key, store, nats = bench.key, bench.store, bench.nats
        t = time.perf_counter()
        with MongoClient(store.url) as client:
            seeded = seed(client["maille_observatory"], schools, args.persons, rng)
        print(
            f"seeded {args.persons} persons, {args.schools} schools, {seeded['months']} school-months "
            f"in {time.perf_counter() - t:.0f} s"
        )
        t = time.perf_counter()
        envelopes, exact = made_uses(schools, args.persons, args.uses, rng)
        print(f"made {args.uses} uses in {len(envelopes)} events ({time.perf_counter() - t:.0f} s, before the clock)")
        t = time.perf_counter()
        observatory = bench.service("observatory")
        started = time.perf_counter() - t
        gateway = bench.gateway("observatory", observatory.url)
        print(f"observatory ready in {started:.1f} s (its directory of {args.persons} persons read)")
        operator = token(key, "ops-bench", "operator")
        flow = asyncio.run(ingest(nats.url, envelopes, observatory.url, operator, args.uses))
        print(
            f"ingest: {args.uses} uses published in {flow['published_s']:.1f} s; folded in {flow['folded_s']:.1f} s "
            f"({flow['folded_per_s']:,.0f}/s), written in {flow['written_s']:.1f} s ({flow['written_per_s']:,.0f}/s)"
        )
        month = month_of(date.today() - timedelta(days=1))
        with MongoClient(store.url) as client:
            scopes = client["maille_observatory"]["scopes"]
            deadline = time.monotonic() + 600
            while True:
                doc = scopes.find_one({"_id": f"{month}|academie"}) or {}
                estimates = doc.get("estimates", {})
                if estimates.get("*", 0) >= 0.9 * args.persons:
                    break
                assert time.monotonic() < deadline, "the académie's month never merged"
                time.sleep(2)
        errors = {p: (estimates.get(p, 0) - n) / n * 100 for p, n in exact.items()}
        everyone = (estimates["*"] - args.persons) / args.persons * 100
        print(
            f"distinct persons, académie, {month}: {estimates['*']:,.0f} for {args.persons:,} ({everyone:+.2f} %); "
            + ", ".join(f"{p.removeprefix('National_')} {e:+.2f} %" for p, e in errors.items())
        )
        rectorat = token(key, RECTORAT)
        principal = token(key, seeded["principal"])
        with MongoClient(store.url) as client:
            directs = client["maille_observatory"]["persons"].find_one({"_id": seeded["principal"]})["directs"][0]
        for label, scope, who in (("académie", "academie", rectorat), ("one school", f"school:{directs}", principal)):
            latencies, failed, first = asyncio.run(dashboards(gateway.url, args.calls, args.rate, scope, who))
            print(
                f"dashboard {label} ({scope}), school year against the last: first call {first:.0f} ms; then "
                f"{args.calls} calls at {args.rate:g}/s (merges and writes going on): p50 {pct(latencies, 50):.1f} ms, "
                f"p99 {pct(latencies, 99):.1f} ms, {failed} failed"
            )
        print(machine())


if __name__ == "__main__":
    main()
