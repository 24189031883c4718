"""Searching the CDIs of three schools through the gateway, each school's PMB answering in 50–100 ms; then reader sync
of `--sync` pupils into one school's PMB.

Sets up, on this machine: NATS, the docstore, the library service and the gateway (one process each) and the PMB
peer (its own process: three databases of `--records` records, each answer after 50 ms + up to 50 ms). An
operator registers the three schools' connections; `--persons` teachers of the three schools are published as
identity publishes them. Then teachers search (a word of the catalogue's titles and authors, at random), open
loop at `--rate`/s for `--seconds`, each request on any free connection when due; latency from when it was due.
The library's search cache is off (`MAILLE_LIBRARY_SEARCH_CACHE_SECONDS=0`): every search asks the three PMBs.

    .venv/bin/python bench/library.py [--rate 30] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

import httpx
from joserfc.jwk import RSAKey

from common import arguments, bearer, machine, paced, pct, platform
from maille.identity.v1 import directory_pb2 as pb
from maille_devstack.processes import PmbPeerProcess, free_port
from maille_kit.bus import Bus, Stream
from maille_kit.events import make_envelope

SCHOOLS = ("0750001A", "0750002B", "0750003C")
WORDS = [
    "prince",
    "misérables",
    "lieues",
    "étranger",
    "horla",
    "germinal",
    "planète",
    "comte",
    "bovary",
    "candide",
    "hugo",
    "verne",
    "zola",
    "camus",
    "flaubert",
    "voltaire",
    "dumas",
]


def token(key: RSAKey, subject: str, *roles: str, person: bool = True) -> str:
    return bearer(key, ["maille", "maille-library"], subject, *roles, person=person)


async def person_created(bus: Bus, person: pb.Person) -> None:
    """Publish on the bus, as identity does, that `person` is in the directory now."""
    envelope = make_envelope(
        type="identity.person.created.v1", tenant="ac-bench", source="identity", payload=pb.PersonCreated(person=person)
    )
    await bus.js.publish(envelope.type, envelope.SerializeToString(), headers={"Nats-Msg-Id": envelope.id})


def pmb_connection(pmb_url: str, uai: str, **more: object) -> dict[str, object]:
    """What an operator declares of a school's PMB (the peer's, with its database `cdi<UAI>`)."""
    return {"url": pmb_url, "sourceId": 1, "user": "maille", "password": "secret-ws", "database": f"cdi{uai}", **more}


async def load(
    gateway: str, library_url: str, nats_url: str, key: RSAKey, pmb_url: str, args: argparse.Namespace
) -> dict:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        operator = {"authorization": token(key, "bench-operator", "operator", person=False)}
        for uai in SCHOOLS:
            answer = await client.put(
                f"/api/library/v1/operator/schools/{uai}/pmb",
                headers=operator,
                json=pmb_connection(pmb_url, uai, opacUrl=f"https://cdi-{uai.lower()}.example.fr/opac"),
            )
            assert answer.status_code in (200, 201), answer.text
    bus = Bus(nats_url, name="bench-library")
    await bus.connect()
    await bus.ensure_streams([Stream(name="IDENTITY", subjects=("identity.>",), description="identity's facts")])
    teachers = [f"teacher-{n:04d}" for n in range(args.persons)]
    for person_id in teachers:
        person = pb.Person(
            id=person_id,
            last_name="Prof",
            first_name=person_id,
            profiles=[pb.Profile(structure_id=f"S{uai}", uai=uai, code="National_ENS") for uai in SCHOOLS],
        )
        await person_created(bus, person)
    await bus.close()
    tokens = {p: token(key, p) for p in teachers}
    rng = random.Random(3)
    clients = [
        httpx.AsyncClient(base_url=gateway, timeout=30, limits=httpx.Limits(max_connections=1)) for _ in range(64)
    ]
    failures: list[str] = []
    try:

        async def known() -> bool:  # the library has heard of the last teacher
            answer = await clients[0].get(
                "/api/library/v1/search", params={"q": "prince"}, headers={"authorization": tokens[teachers[-1]]}
            )
            return answer.status_code == 200 and answer.json()["total"] > 0

        deadline = time.monotonic() + 60
        while not await known():
            assert time.monotonic() < deadline, "the library never heard of the teachers"
            await asyncio.sleep(0.2)

        async def one(client: httpx.AsyncClient, item: object) -> bool:
            person, word = item  # type: ignore[misc]
            answer = await client.get(
                "/api/library/v1/search", params={"q": word, "size": 20}, headers={"authorization": tokens[person]}
            )
            body = answer.json() if answer.status_code == 200 else {}
            if answer.status_code != 200 or body.get("missing") or not body.get("results"):
                failures.append(f"{answer.status_code} {answer.text[:200]}")
                return False
            return True

        start = time.perf_counter() + 0.5
        schedule = [
            (start + i / args.rate, (rng.choice(teachers), rng.choice(WORDS)))
            for i in range(int(args.rate * args.seconds))
        ]
        latencies = (await paced(clients, schedule, one))[0]
    finally:
        for c in clients:
            await c.aclose()
    # Reader sync: school A asks for it; `--sync` new pupils of A published as identity publishes them; the time
    # until A's PMB holds every one of them as a reader.
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        answer = await client.put(
            f"/api/library/v1/operator/schools/{SCHOOLS[0]}/pmb",
            headers=operator,
            json=pmb_connection(pmb_url, SCHOOLS[0], syncReaders=True),
        )
        assert answer.status_code == 200, answer.text
    peer_count = f"{pmb_url.rsplit('/pmb', 1)[0]}/peer/databases/cdi{SCHOOLS[0]}/readers"
    async with httpx.AsyncClient(timeout=10) as peer:
        # The school's persons already known (the teachers) become readers as the school starts syncing: let that
        # settle before the clock starts.
        already, steady_since = -1, time.perf_counter()
        while time.perf_counter() - steady_since < 2:
            now = (await peer.get(peer_count)).json()["readers"]
            if now != already:
                already, steady_since = now, time.perf_counter()
            await asyncio.sleep(0.2)
        bus = Bus(nats_url, name="bench-library-sync")
        await bus.connect()
        started = time.perf_counter()
        for n in range(args.sync):
            person = pb.Person(
                id=f"pupil-{n:05d}",
                last_name=f"Élève {n}",
                first_name="Prénom",
                group_ids=[f"S{SCHOOLS[0]}$6A"],
                profiles=[pb.Profile(structure_id=f"S{SCHOOLS[0]}", uai=SCHOOLS[0], code="National_ELV")],
            )
            await person_created(bus, person)
        published = time.perf_counter() - started
        await bus.close()
        while (await peer.get(peer_count)).json()["readers"] < already + args.sync:
            assert time.perf_counter() - started < 600, "reader sync did not finish in 10 minutes"
            await asyncio.sleep(0.5)
        synced = time.perf_counter() - started
    return {"latencies": latencies, "failures": failures, "sync": synced, "published": published}


def main() -> None:
    args = arguments(
        __doc__,
        rate=(30.0, "searches per second"),
        seconds=20.0,
        persons=200,
        records=(2000, "records in each school's catalogue"),
        sync=(10_000, "pupils whose PMB readers are synced"),
        sync_concurrency=(16, "MAILLE_LIBRARY_SYNC_CONCURRENCY"),
    )
    with platform("library") as bench:
        pmb = bench.started(
            PmbPeerProcess(
                port=free_port(),
                databases=[f"cdi{uai}" for uai in SCHOOLS],
                log_dir=bench.logs,
                delay_ms=50,
                jitter_ms=50,
                records=args.records,
            )
        )
        library = bench.service(
            "library",
            search_cache_seconds="0",
            sync_concurrency=str(args.sync_concurrency),
            connection_cache_seconds="1",
        )
        gateway = bench.gateway("library", library.url)
        r = asyncio.run(
            load(gateway.url, library.url, bench.nats.url, bench.key, f"http://127.0.0.1:{pmb.port}/pmb", args)
        )
        lat = r["latencies"]
        print(
            f"search across {len(SCHOOLS)} schools' PMBs (each answering in 50-100 ms; {args.records} records each), "
            "through the gateway, "
            f"{len(lat)} searches at {args.rate:g}/s: p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms, max "
            f"{max(lat):.1f} ms, "
            f"{len(r['failures'])} failed or incomplete"
        )
        for failure in r["failures"][:3]:
            print(f"  failed: {failure}")
        print(
            f"reader sync: {args.sync} pupils published as identity publishes them (in {r['published']:.1f} s), all "
            "readers in the "
            f"school's PMB (50-100 ms a call) after {r['sync']:.1f} s ({args.sync / r['sync']:.0f} readers/s, "
            f"{args.sync_concurrency} at once)"
        )
        print(machine())


if __name__ == "__main__":
    main()
