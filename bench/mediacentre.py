"""The médiacentre through the gateway, and assigning licences.

Sets up, on this machine: NATS, the docstore, the GAR peer's resource list (HTTPS with client certificates,
answering in `--gar-ms`), the catalog and the gateway (each one process). Seeds, through the catalog's own
paths: `--schools` schools and their persons as identity's events, `--resources` resources in bulk loads by
10 vendors, `--subscriptions` subscriptions spread over the schools; every benched person is a teacher in two
schools. Then sends `--rate` médiacentre requests/s (open loop: latency counted from when each request was
due) for `--seconds`, spread over `--persons` persons, and reports the latency of each person's first request
(their list computed: the catalog's subscriptions and the GAR's lists of both schools) and of the others (kept
until an event changes it). Last, a school's head assigns `--licences` licences in one call, three times.

Tokens are signed by the bench's own key (RS256) and checked in full by the gateway and the catalog.

    .venv/bin/python bench/mediacentre.py [--rate 200] [--seconds 30] [--persons 1000] [--gar-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import time

import httpx
from joserfc.jwk import RSAKey

from common import arguments, bearer, machine, pct, platform
from maille.identity.v1 import directory_pb2 as pb
from maille_devstack.pki import make_pki
from maille_devstack.processes import Process, free_port
from maille_kit.bus import Bus, Stream
from maille_kit.events import make_envelope

CONCEPT = "http://data.education.fr/voc/scolomfr/concept/"
LEVELS = ["6e", "5e", "4e", "3e"]
DOMAINS = ["mathématiques", "français", "histoire-géographie", "anglais", "physique-chimie"]


def uai(n: int) -> str:
    return f"{750000 + n:07d}{'ABCDEFGHJKLMNPRSTUVWXYZ'[(750000 + n) % 23]}"


def token(key: RSAKey, subject: str, *roles: str, person: bool = True) -> str:
    return bearer(key, ["maille", "maille-catalog"], subject, *roles, person=person)


def resource(n: int) -> dict:
    level, domain = LEVELS[n % len(LEVELS)], DOMAINS[n % len(DOMAINS)]
    return {
        "idRessource": f"ark:/{10000 + n % 10:05d}/res-{n:05d}",
        "nomRessource": f"{domain.capitalize()} {level} n°{n}",
        "nomEditeur": f"Éditeur {n % 10}",
        "urlVignette": f"https://vendor{n % 10}.example/{n}.png",
        "urlAccesRessource": f"https://vendor{n % 10}.example/r/{n}",
        "typePresentation": {"code": "MAN", "nom": "manuel numérique"},
        "typePedagogique": [{"uri": f"{CONCEPT}scolomfr-voc-010-num-003", "nom": "cours"}],
        "typologieDocument": [],
        "niveauEducatif": [{"uri": f"{CONCEPT}level-{level}", "nom": level}],
        "domaineEnseignement": [{"uri": f"{CONCEPT}domain-{n % len(DOMAINS)}", "nom": domain}],
    }


def subscription(n: int, ark: str, schools: list[str], kind: str = "ETABL", **extra: object) -> dict:
    return {
        "idAbonnement": f"ABO-{n:05d}",
        "idDistributeurCom": "123456789_000000000000001X",
        "idRessource": ark,
        "libelleRessource": ark,
        "debutValidite": "2026-09-01T00:00:00",
        "finValidite": "2030-08-31T23:59:59",
        "uaiEtab": schools,
        "categorieAffectation": "transferable",
        "typeAffectation": kind,
        "nbLicenceGlobale": "ILLIMITE",
        "publicCible": ["ELEVE", "ENSEIGNANT"],
        **extra,
    }


async def publish_directory(nats_url: str, args: argparse.Namespace) -> None:
    """Identity's events: the schools, the benched teachers (two schools each), a head and 1,000+ pupils in school 0."""
    bus = Bus(nats_url, name="bench-directory")
    await bus.connect(timeout=10)
    await bus.ensure_streams([Stream(name="IDENTITY", subjects=("identity.>",))])
    facts = [
        (
            "identity.structure.created.v1",
            pb.StructureCreated(structure=pb.Structure(id=f"S{uai(s)}", uai=uai(s), name=f"Collège {s}")),
        )
        for s in range(args.schools)
    ]
    for p in range(args.persons):
        first = p % args.schools
        second = (first + 1 + p // args.schools) % args.schools
        facts.append(
            (
                "identity.person.created.v1",
                pb.PersonCreated(
                    person=pb.Person(
                        id=f"teacher-{p:05d}",
                        last_name="Prof",
                        first_name=str(p),
                        profiles=[
                            pb.Profile(structure_id=f"S{uai(s)}", uai=uai(s), code="National_ENS")
                            for s in (first, second)
                        ],
                    )
                ),
            )
        )
    facts.append(
        (
            "identity.person.created.v1",
            pb.PersonCreated(
                person=pb.Person(
                    id="head-0",
                    last_name="Principal",
                    first_name="Zero",
                    profiles=[pb.Profile(structure_id=f"S{uai(0)}", uai=uai(0), code="National_DIR")],
                )
            ),
        )
    )
    for p in range(args.licences):
        facts.append(
            (
                "identity.person.created.v1",
                pb.PersonCreated(
                    person=pb.Person(
                        id=f"pupil-{p:05d}",
                        last_name="Élève",
                        first_name=str(p),
                        profiles=[pb.Profile(structure_id=f"S{uai(0)}", uai=uai(0), code="National_ELV")],
                    )
                ),
            )
        )
    for type, payload in facts:
        envelope = make_envelope(type=type, tenant="ac-bench", source="identity", payload=payload)
        await bus.js.publish(type, envelope.SerializeToString(), headers={"Nats-Msg-Id": envelope.id})
    await bus.close()


async def seed(catalog: str, key: RSAKey, args: argparse.Namespace) -> tuple[int, float]:
    vendors = [{"authorization": token(key, f"vendor-{v}", "vendor", person=False)} for v in range(10)]
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=catalog, timeout=600) as client:
        per_vendor: dict[int, list[dict]] = {}
        for n in range(args.resources):
            per_vendor.setdefault(n % 10, []).append(resource(n))
        for v, items in per_vendor.items():
            for start in range(0, len(items), 500):
                report = (
                    await client.post(
                        "/api/catalog/v1/vendor/resources/bulk", json=items[start : start + 500], headers=vendors[v]
                    )
                ).json()
                assert report["refusees"] == 0, report
        # Subscriptions: each covers 1 to 3 schools; their resources drawn over the catalogue.
        rng = random.Random(7)
        bodies = []
        for n in range(args.subscriptions):
            r = rng.randrange(args.resources)
            schools = sorted({uai(rng.randrange(args.schools)) for _ in range(rng.randint(1, 3))})
            bodies.append((r % 10, subscription(n, resource(r)["idRessource"], schools)))
        # The licences' subscription: school 0, per person, as many pupil licences as asked.
        bodies.append(
            (
                0,
                subscription(
                    99999,
                    resource(0)["idRessource"],
                    [uai(0)],
                    "INDIV",
                    nbLicenceGlobale=None,
                    nbLicenceEleve=args.licences,
                ),
            )
        )
        for start in range(0, len(bodies), 16):
            answers = await asyncio.gather(
                *(
                    client.post("/api/catalog/v1/vendor/subscriptions", json=b, headers=vendors[v])
                    for v, b in bodies[start : start + 16]
                )
            )
            bad = [a.text for a in answers if a.status_code != 201]
            assert not bad, bad[:3]
    return len(bodies), time.perf_counter() - started


def wait_directory(mongodb_url: str, args: argparse.Namespace) -> float:
    """Until the catalog has learnt every person published (its consumer works through identity's stream); how long."""
    from pymongo import MongoClient

    expected = args.persons + 1 + args.licences
    started = time.perf_counter()
    with MongoClient(mongodb_url) as client:
        persons = client["maille_catalog"]["persons"]
        while persons.estimated_document_count() < expected:
            if time.perf_counter() - started > 600:
                raise SystemExit("the catalog did not learn the directory in 10 minutes")
            time.sleep(0.5)
    return time.perf_counter() - started


async def paced(
    clients: list[httpx.AsyncClient], tokens: list[str], schedule: list[tuple[float, int]]
) -> tuple[list[float], int]:
    """Send each request when due (open loop), spread over the clients' connections; latencies counted from when each
    was due."""
    latencies: list[float] = []
    failed = 0

    async def worker(client: httpx.AsyncClient, share: list[tuple[float, int]]) -> None:
        nonlocal failed
        for due, person in share:
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            answer = await client.get("/api/catalog/v1/mediacentre", headers={"authorization": tokens[person]})
            latencies.append((time.perf_counter() - due) * 1000)
            # Checked on the bytes: parsing every answer would make this process pause for its collector.
            if (
                answer.status_code != 200
                or b'"gar":"ok"' not in answer.content
                or b'"ressources":[{' not in answer.content
            ):
                failed += 1

    await asyncio.gather(*(worker(client, schedule[k :: len(clients)]) for k, client in enumerate(clients)))
    return latencies, failed


async def load(gateway: str, catalog: str, key: RSAKey, args: argparse.Namespace) -> dict[str, object]:
    """Every person's first request (their list computed) at `--first-rate`; then `--rate` for `--seconds` over
    all of them while a vendor changes one of its resources every 2 s (the lists holding it are computed again)."""
    tokens = [token(key, f"teacher-{p:05d}") for p in range(args.persons)]
    rng = random.Random(11)
    order = list(range(args.persons))
    rng.shuffle(order)
    gc.freeze()  # the load must not pause: what exists now is never collected, and nothing else is while it runs
    gc.disable()
    # 48 connections, kept for both phases (as browsers keep theirs to the gateway).
    clients = [
        httpx.AsyncClient(base_url=gateway, timeout=30, limits=httpx.Limits(max_connections=1)) for _ in range(48)
    ]
    start = time.perf_counter() + 0.5
    first, first_failed = await paced(clients, tokens, [(start + i / args.first_rate, p) for i, p in enumerate(order)])

    vendor = {"authorization": token(key, "vendor-3", "vendor", person=False)}
    changes = 0
    stop = asyncio.Event()

    async def vendor_changes() -> None:
        nonlocal changes
        async with httpx.AsyncClient(base_url=catalog, timeout=30) as client:
            while not stop.is_set():
                await asyncio.sleep(2)
                n = 3 + 10 * rng.randrange(args.resources // 10)
                changed = resource(n) | {"nomRessource": f"{resource(n)['nomRessource']} (v{changes + 2})"}
                answer = await client.put(
                    f"/api/catalog/v1/vendor/resources/{changed['idRessource']}", json=changed, headers=vendor
                )
                changes += answer.status_code == 200

    changer = asyncio.create_task(vendor_changes())
    total = int(args.rate * args.seconds)
    start = time.perf_counter() + 0.5
    steady, steady_failed = await paced(
        clients, tokens, [(start + i / args.rate, rng.randrange(args.persons)) for i in range(total)]
    )
    took = time.perf_counter() - start
    stop.set()
    await changer
    for client in clients:
        await client.aclose()
    gc.enable()
    return {
        "first": first,
        "first_failed": first_failed,
        "steady": steady,
        "steady_failed": steady_failed,
        "rate": total / took,
        "changes": changes,
    }


async def assign(gateway: str, key: RSAKey, args: argparse.Namespace) -> list[float]:
    head = {"authorization": token(key, "head-0")}
    base = f"/api/catalog/v1/schools/{uai(0)}/subscriptions/ABO-99999/assignments"
    pupils = [f"pupil-{p:05d}" for p in range(args.licences)]
    times = []
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        for _ in range(3):
            started = time.perf_counter()
            answer = await client.post(base, json={"personnes": pupils}, headers=head)
            times.append(time.perf_counter() - started)
            assert answer.status_code == 200 and len(answer.json()["affectees"]) == args.licences, answer.text[:300]
            released = await client.post(f"{base}/release", json={"personnes": pupils}, headers=head)
            assert len(released.json()["liberees"]) == args.licences, released.text[:300]
    return times


def main() -> None:
    args = arguments(
        __doc__,
        schools=300,
        resources=5000,
        subscriptions=2000,
        persons=(1000, "benched persons, each a teacher in two schools"),
        rate=200.0,
        seconds=30.0,
        first_rate=(50.0, "rate of the persons' first requests (their lists computed)"),
        gar_ms=20,
        licences=1000,
    )

    with platform("mediacentre") as bench:
        pki = make_pki(bench.work / "pki")
        gar_port = free_port()
        bench.started(
            Process(
                "gar",
                [sys.executable, "-m", "gar.resources"],
                bench.logs / "gar.log",
                env={
                    "PEER_RESOURCES_PORT": str(gar_port),
                    "PEER_TLS_CERT": str(pki.server_cert),
                    "PEER_TLS_KEY": str(pki.server_key),
                    "PEER_TLS_CA": str(pki.ca),
                    "PEER_DELAY_MS": str(args.gar_ms),
                },
            )
        )
        asyncio.run(publish_directory(bench.nats.url, args))
        catalog = bench.service(
            "catalog",
            gar_url=f"https://localhost:{gar_port}",
            gar_client_cert=str(pki.client_cert),
            gar_client_key=str(pki.client_key),
            gar_ca_file=str(pki.ca),
        )
        gateway = bench.gateway("catalog", catalog.url)
        key, store = bench.key, bench.store

        count, took = asyncio.run(seed(catalog.url, key, args))
        print(
            f"seeded {args.resources} resources and {count} subscriptions over {args.schools} schools in {took:.1f} s"
        )
        waited = wait_directory(store.url, args)
        print(
            f"the catalog learnt the directory's {args.persons + 1 + args.licences} persons from identity's events "
            f"({waited:.1f} s more)"
        )
        result = asyncio.run(load(gateway.url, catalog.url, key, args))
        first, steady = result["first"], result["steady"]
        print(
            f"médiacentre through the gateway; {args.persons} persons, each a teacher in two schools; GAR peer at "
            f"{args.gar_ms} ms"
        )
        print(
            f"  each person's first request ({len(first)} at {args.first_rate:g}/s, list computed): p50 "
            f"{pct(first, 50):.1f} ms, "
            f"p99 {pct(first, 99):.1f} ms, {result['first_failed']} failed"
        )
        print(
            f"  then {len(steady)} requests at {result['rate']:.0f}/s for {args.seconds:g} s, a vendor changing a "
            "resource every 2 s "
            f"({result['changes']} changes): p50 {pct(steady, 50):.1f} ms, p90 {pct(steady, 90):.1f} ms, p99 "
            f"{pct(steady, 99):.1f} ms, "
            f"{result['steady_failed']} failed"
        )
        times = asyncio.run(assign(gateway.url, key, args))
        print(
            f"assigning {args.licences} licences in one call through the gateway: "
            + ", ".join(f"{t * 1000:.0f} ms" for t in times)
        )
        print(machine())


if __name__ == "__main__":
    main()
