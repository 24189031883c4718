"""Support: a desk's queue filtered and paged, the knowledge base searched as one types, and a request's trip to the
académie's Redmine and back into the person's feed.

Sets up, on this machine: NATS, the docstore, support, the timeline and the gateway (each one process), and Debian's
Redmine (the devstack's instance). Then:

1. **the queue**: `--requests` requests (50,000 by default) of `--schools` schools (300) written in support's docstore
   as a year leaves them (most closed; 40 % went up to the académie's desk, 10 % to the collectivité's); support
   started on them (its queues read whole at start: the time is said); then the académie desk's queue asked through
   the gateway at `--rate`/s for `--seconds` (open loop), each call a random filter of those an agent uses (to treat,
   a category, a school, unassigned, overdue, words of the subject, the next page), while persons open new requests
   beside it (`--opening`/s: the queues change as they are read);
2. **the search**: `--articles` articles (2,000) written in the knowledge base; then what people type, one key at a
   time ("m", "mo", "mot", "mot d" … each a call), at `--rate`/s through the gateway, requests opened beside it;
3. **Redmine and back**: `--trips` requests opened by a pupil and sent up by their referent to the académie's desk,
   connected to Redmine; once the issue is there, a comment made in Redmine (its REST API, as an agent answers); the
   time until the notification is in the pupil's feed (the timeline's API), support reading Redmine every
   `--poll` seconds (10, the default setting).

    .venv/bin/python bench/support.py [--requests 50000] [--articles 2000] [--trips 5]
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from joserfc.jwk import RSAKey
from pymongo import MongoClient

from common import arguments, bearer, machine, paced, pct, platform
from maille_devstack.processes import RedmineServer, free_port
from maille_support.requests import stamp

AGENT, OPERATOR = "agent-academie", "ops-bench"
CATEGORIES = ["account", "resource", "mail", "library", "equipment", "classroom", "other"]
WORDS = (
    "mot passe compte connexion educonnect manuel ressource médiacentre licence messagerie message pièce jointe "
    "classe groupe cdi livre prêt réservation imprimante ordinateur tablette wifi réseau vidéoprojecteur tableau "
    "numérique cahier textes devoirs emploi temps notes absence parent élève enseignant accès refusé erreur page "
    "blanche lent téléchargement document partage dossier quota espace identifiant oublié bloqué verrouillé"
).split()
TYPED = [
    "mot de passe oublié",
    "manuel ne s'ouvre pas",
    "imprimante du cdi",
    "pièce jointe trop grosse",
    "wifi de la classe",
    "accès refusé médiacentre",
]


def token(key: RSAKey, person: str, *roles: str) -> str:
    return bearer(key, ["maille", "maille-support", "maille-timeline"], person, *roles)


def uai(n: int) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return f"{350000 + n:07d}{letters[n % len(letters)]}"


def seed(store: str, requests: int, schools: int, articles: int) -> tuple[float, float]:
    """The year's requests and the knowledge base, written as support leaves them; the seconds each took."""
    rng = random.Random(7)
    db = MongoClient(store)["maille_support"]
    now = datetime.now(UTC)
    started = time.perf_counter()
    persons = [
        {"_id": f"pupil-{s}-{i}", "name": f"Élève {i}", "schools": {uai(s): ["National_ELV"]}, "functions": {}}
        for s in range(schools)
        for i in range(3)
    ]
    persons += [
        {"_id": f"ref-{s}", "name": f"Référent {s}", "schools": {uai(s): ["National_ENS"]}, "functions": {}}
        for s in range(schools)
    ]
    db["persons"].insert_many(persons)
    db["referents"].insert_many([{"_id": uai(s), "named": [f"ref-{s}"]} for s in range(schools)])
    db["schools"].insert_many([{"_id": uai(s), "name": f"Collège n° {s}"} for s in range(schools)])
    batch = []
    for n in range(requests):
        opened = now - timedelta(seconds=(requests - n) * (365 * 86400 / requests))
        school = rng.randrange(schools)
        desks = ["school"]
        went = rng.random()
        if went < 0.4:
            desks.append("academie")
        elif went < 0.5:
            desks.append("collectivite")
        status = (
            "closed"
            if opened < now - timedelta(days=20) and rng.random() < 0.97
            else rng.choice(["new", "open", "open", "waiting", "resolved"])
        )
        batch.append(
            {
                "_id": f"r{int(opened.timestamp() * 1000):013d}{rng.getrandbits(64):016x}",
                "version": 3,
                "author": f"pupil-{school}-{n % 3}",
                "author_name": f"Élève {n % 3}",
                "profile": "National_ELV",
                "uai": uai(school),
                "school_name": f"Collège n° {school}",
                "category": rng.choice(CATEGORIES),
                "subject": " ".join(rng.sample(WORDS, 4)).capitalize(),
                "description": " ".join(rng.choices(WORDS, k=40)),
                "context": {"page": "/mediacentre", "browser": "Firefox", "failed_requests": []},
                "status": status,
                "desk": desks[-1],
                "desks": desks,
                "assignee": rng.choice([None, None, AGENT]) if len(desks) > 1 else None,
                "assignee_name": None,
                "opened_at": opened,
                "updated_at": opened,
                "level_since": opened,
                "level_answered": status != "new",
                "first_answer_at": None if status == "new" else opened + timedelta(hours=2),
                "waiting_since": opened if status == "waiting" else None,
                "paused": 0.0,
                "level_paused": 0.0,
                "resolved_at": opened + timedelta(days=2) if status in ("resolved", "closed") else None,
                "closed_at": opened + timedelta(days=9) if status == "closed" else None,
                # A year's platform has told its late requests already (else the first look tells them all at once).
                "overdue_told": [f"{desks[-1]}:{stamp(opened)}:{c}" for c in ("first_answer", "resolution")],
                "messages": [],
                "files": [],
                "tracker": None,
                "tracker_out": [],
            }
        )
        if len(batch) == 1000:
            db["requests"].insert_many(batch)
            batch = []
    if batch:
        db["requests"].insert_many(batch)
    took_requests = time.perf_counter() - started
    started = time.perf_counter()
    docs = []
    for n in range(articles):
        words = rng.sample(WORDS, 5)
        docs.append(
            {
                "_id": f"a{1765000000000 + n:013d}{n:08x}",
                "title": f"{' '.join(words[:3]).capitalize()} : que faire ?",
                "body": "\n\n".join(" ".join(rng.choices(WORDS, k=25)) for _ in range(6)),
                "category": rng.choice(CATEGORIES),
                "profiles": [],
                "scope": "academie" if n % 4 else uai(n % schools),
                "author": AGENT,
                "author_name": "Support de l'académie",
                "updated_at": now,
                "helped": rng.randrange(20),
                "unhelped": 0,
                "tutorial": False,
            }
        )
    db["articles"].insert_many(docs)
    return took_requests, time.perf_counter() - started


def declare_desks(gateway: str, key: RSAKey, schools: int, redmine: RedmineServer | None) -> None:
    operator = {"authorization": token(key, OPERATOR, "operator")}
    academie: dict[str, Any] = {"name": "Support de l'académie", "kind": "academie", "agents": [AGENT]}
    if redmine is not None:
        academie["redmine"] = {
            k: redmine.desk[k] for k in ("url", "project", "tracker_id", "uai_field", "reference_field", "api_key")
        }
    collectivite = {
        "name": "Assistance du département",
        "kind": "collectivite",
        "schools": [uai(s) for s in range(schools)],
    }
    for desk_id, body in (("academie", academie), ("collectivite", collectivite)):
        answer = httpx.put(
            f"{gateway}/api/support/v1/operator/desks/{desk_id}", json=body, headers=operator, timeout=30
        )
        assert answer.status_code == 200, answer.text


async def queue_and_search(
    gateway: str, key: RSAKey, schools: int, rate: float, seconds: float, opening: float
) -> tuple[tuple, tuple, int]:
    rng = random.Random(11)
    agent = {"authorization": token(key, AGENT)}
    pupils = {s: {"authorization": token(key, f"pupil-{s}-0")} for s in range(schools)}
    first_pages: list[str] = []
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as warm:
        page = (await warm.get("/api/support/v1/queue?desk=academie&status=closed", headers=agent)).json()
        first_pages.append(page["next"])
        for s in range(0, schools, 10):
            await warm.get("/api/support/v1/articles/search?q=mo", headers=pupils[s])

    def filters() -> dict[str, str]:
        base = {"desk": "academie", "status": "new,open,waiting"}
        pick = rng.randrange(7)
        if pick == 1:
            base["category"] = rng.choice(CATEGORIES)
        elif pick == 2:
            base["uai"] = uai(rng.randrange(schools))
            base.pop("status")
        elif pick == 3:
            base["assignee"] = "none"
        elif pick == 4:
            base["overdue"] = "true"
        elif pick == 5:
            base["q"] = rng.choice(WORDS)
            base.pop("status")
        elif pick == 6:
            base = {"desk": "academie", "status": "closed", "before": first_pages[0]}
        return base

    async def ask(client: httpx.AsyncClient, what: object) -> bool:
        answer = await client.get("/api/support/v1/queue", params=what, headers=agent)  # type: ignore[arg-type]
        return answer.status_code == 200

    typed = [(phrase[: n + 1], s) for phrase in TYPED for n in range(len(phrase)) for s in (rng.randrange(schools),)]

    async def search(client: httpx.AsyncClient, what: object) -> bool:
        text, school = what  # type: ignore[misc]
        answer = await client.get("/api/support/v1/articles/search", params={"q": text}, headers=pupils[school])
        return answer.status_code == 200

    opened = 0

    async def open_beside(until: float) -> None:
        nonlocal opened
        async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
            while time.perf_counter() < until:
                school = rng.randrange(schools)
                body = {
                    "category": rng.choice(CATEGORIES),
                    "uai": uai(school),
                    "subject": " ".join(rng.sample(WORDS, 4)),
                    "description": " ".join(rng.choices(WORDS, k=40)),
                }
                answer = await client.post("/api/support/v1/requests", json=body, headers=pupils[school])
                opened += answer.status_code == 201
                await asyncio.sleep(1 / opening)

    def schedule(items: list, span: float) -> list[tuple[float, object]]:
        start = time.perf_counter() + 0.5
        return [(start + i / rate, items[i % len(items)]) for i in range(int(rate * span))]

    queue_clients = [httpx.AsyncClient(base_url=gateway, timeout=30) for _ in range(32)]
    search_clients = [httpx.AsyncClient(base_url=gateway, timeout=30) for _ in range(32)]
    try:
        # Each load first three seconds at its rate, not counted (the connections and pools grown), then measured with
        # persons opening requests beside it: the queues change as they are read.
        await paced(queue_clients, schedule([filters() for _ in range(300)], 3), ask)
        beside = asyncio.create_task(open_beside(time.perf_counter() + seconds + 1))
        queue = await paced(queue_clients, schedule([filters() for _ in range(int(rate * seconds))], seconds), ask)
        await beside
        await paced(search_clients, schedule(typed, 3), search)
        beside = asyncio.create_task(open_beside(time.perf_counter() + seconds + 1))
        searched = await paced(search_clients, schedule(typed, seconds), search)
        await beside
        return queue, searched, opened
    finally:
        for client in queue_clients + search_clients:
            await client.aclose()


async def trips(gateway: str, key: RSAKey, redmine: RedmineServer, count: int) -> list[float]:
    """A pupil's request sent up to Redmine, a comment made there, the time until it is in the pupil's feed."""
    pupil, referent = {"authorization": token(key, "pupil-0-0")}, {"authorization": token(key, "ref-0")}
    took = []
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        for n in range(count):
            body = {"category": "resource", "uai": uai(0), "subject": f"Manuel introuvable {n}", "description": "Vide."}
            made = (await client.post("/api/support/v1/requests", json=body, headers=pupil)).json()
            up = await client.post(f"/api/support/v1/requests/{made['id']}/escalate", json={}, headers=referent)
            assert up.status_code == 200, up.text
            deadline = time.monotonic() + 60
            issue = None
            while issue is None:
                found = httpx.get(
                    f"{redmine.url}/issues.json",
                    params={
                        "project_id": redmine.desk["project"],
                        "status_id": "*",
                        f"cf_{redmine.desk['reference_field']}": made["id"],
                    },
                    headers=redmine.headers,
                    timeout=10,
                ).json()["issues"]
                issue = found[0] if found else None
                assert time.monotonic() < deadline, "no Redmine issue"
                await asyncio.sleep(0.2)
            httpx.put(
                f"{redmine.url}/issues/{issue['id']}.json",
                json={"issue": {"notes": f"Réponse {n} du support"}},
                headers=redmine.headers,
                timeout=10,
            ).raise_for_status()
            commented = time.monotonic()
            while True:
                feed = (await client.get("/api/timeline/v1/feed", headers=pupil)).json()
                link = f"/aide/demandes/{made['id']}"
                if any(i["link"] == link and "a répondu" in i["title"] for i in feed["items"]):
                    break
                assert time.monotonic() - commented < 180, "the comment never reached the feed"
                await asyncio.sleep(0.2)
            took.append(time.monotonic() - commented)
    return took


def main() -> None:
    args = arguments(
        __doc__,
        requests=50_000,
        schools=300,
        articles=2000,
        rate=100.0,
        seconds=30.0,
        opening=(5.0, "new requests opened per second beside the load"),
        trips=5,
        poll=10.0,
    )

    with platform("support") as bench:
        redmine = None
        if args.trips:
            redmine = bench.started(
                RedmineServer(port=free_port(), data_dir=bench.work / "redmine", log_dir=bench.logs)
            )
        took_requests, took_articles = seed(bench.store.url, args.requests, args.schools, args.articles)
        print(
            f"seeded: {args.requests} requests of {args.schools} schools in {took_requests:.1f} s, "
            f"{args.articles} articles in {took_articles:.1f} s"
        )
        started = time.perf_counter()
        support = bench.service("support", environment="development", redmine_poll_seconds=str(args.poll))
        print(
            f"support ready (every request and article read into its queues and index) in "
            f"{time.perf_counter() - started:.1f} s; RSS {rss_mib(support.process.pid):.0f} MiB"
        )
        timeline = bench.service("timeline", environment="development", daily_digests="false")
        gateway = bench.gateway("support", support.url, more_routes={"timeline": timeline.url})
        key = bench.key
        declare_desks(gateway.url, key, args.schools, redmine)

        queue, searched, opened = asyncio.run(
            queue_and_search(gateway.url, key, args.schools, args.rate, args.seconds, args.opening)
        )
        print(
            f"the académie desk's queue ({args.requests} requests, {args.schools} schools), filtered and paged at "
            f"{args.rate:g}/s through the gateway: p50 {pct(queue[0], 50):.1f} ms, p99 {pct(queue[0], 99):.1f} ms, "
            f"{queue[1]} failed, {queue[2]:.0f}/s sustained"
        )
        print(
            f"knowledge-base search as one types ({args.articles} articles), a key a call at {args.rate:g}/s: "
            f"p50 {pct(searched[0], 50):.1f} ms, p99 {pct(searched[0], 99):.1f} ms, {searched[1]} failed "
            f"(requests opened beside each: {opened} in all)"
        )
        print(f"support's memory after: RSS {rss_mib(support.process.pid):.0f} MiB")
        if redmine is not None:
            took = asyncio.run(trips(gateway.url, key, redmine, args.trips))
            print(
                f"a comment made in Redmine, in the pupil's feed after (support reading Redmine every {args.poll:g} s):"
                " " + ", ".join(f"{t:.1f} s" for t in took)
            )
        print(machine())


def rss_mib(pid: int | None) -> float:
    if pid is None:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    main()
