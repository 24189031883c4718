"""The timeline: a school's news in every feed, feed pages through the gateway, 20,000 live streams on one gateway
process, and the evening's digests handed to an SMTP server.

Sets up, on this machine: NATS, the docstore, identity on a directory imported from a synthetic AAF feed of one school
(`--persons`, 4,000 by default: pupils, parents and staff), the timeline (which learns the directory from identity's
events), the gateway, and Mailpit (a real SMTP server), each one process. Then:

1. **news**: the school's principal publishes a news item to the whole school through the gateway, `--news` times; the
   answer comes once the item is in every feed (the fan-out is done before it answers; checked on a sample);
2. **feed pages**: each person's feed seeded with `--notes` notifications over six months, then feed pages (20 each)
   of random persons at `--feed-rate`/s for `--seconds` through the gateway (open loop, bearer tokens);
3. **live streams**: `--streams` sessions written in the gateway's session store, one open `/live` stream each on one
   gateway process; then `--signals` notifications published for random persons (as the timeline publishes them)
   while the feed pages of 2. run beside them; the time from publication to the frame read by the stream's client,
   and the gateway's memory (RSS) before and after the streams opened;
4. **digests**: `--parents` parents with a digest waiting (one to three notifications each), handed to Mailpit by the
   timeline's own digest sender; digests built and handed over per second, and the time for all of them.

    .venv/bin/python bench/timeline.py [--persons 4000] [--streams 20000] [--parents 300000]\
        [--phases news,feed,live,digest]
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats as nats_client
from joserfc.jwk import RSAKey
from pymongo import MongoClient
from pymongo.errors import BulkWriteError

from common import ISSUER, arguments, bearer, machine, paced, pct, platform
from maille_contracts import live_subject
from maille_devstack.processes import DocstoreServer, MailpitServer, free_port
from maille_gateway.sessions import Session, Sessions
from maille_gateway.settings import GatewaySettings
from maille_kit.auth import TokenVerifier
from maille_kit.bus import Bus

TENANT = "ac-bench"


def token(key: RSAKey, person: str) -> str:
    return bearer(key, ["maille", "maille-timeline"], person)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def school(everyone: list[dict]) -> tuple[str, list[str], str]:
    """The school identity imported: its UAI, every person, its principal."""
    head = next(d for d in everyone if any(f.get("code") == "DIR" for f in d.get("functions", [])))
    return head["profiles"][0]["structure"], [d["_id"] for d in everyone], head["_id"]


def wait_for_copy(store: DocstoreServer, count: int, seconds: float = 300) -> float:
    """Until the timeline's copy of the directory holds `count` persons (identity's events consumed); how long."""
    started = time.perf_counter()
    with MongoClient(store.url) as client:
        persons = client["maille_timeline"]["persons"]
        while persons.count_documents({}) < count:
            if time.perf_counter() - started > seconds:
                raise SystemExit(f"the timeline holds {persons.count_documents({})} of {count} persons")
            time.sleep(1)
    return time.perf_counter() - started


async def news(gateway: str, key: RSAKey, head: str, uai: str, everyone: list[str], store: str, times: int) -> list:
    """The principal publishes to the whole school; each answer's time (every feed written when it comes)."""
    took = []
    auth = {"authorization": token(key, head)}
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        for n in range(times):
            made = await client.post(
                "/api/timeline/v1/news",
                json={"audience": {"scope": "school", "id": uai}, "title": f"Conseil d'école n° {n}", "body": "Mardi."},
                headers=auth,
            )
            made.raise_for_status()
            started = time.perf_counter()
            done = await client.post(f"/api/timeline/v1/news/{made.json()['id']}/publish", json={}, headers=auth)
            took.append((time.perf_counter() - started) * 1000)
            done.raise_for_status()
    with MongoClient(store) as client:  # in every feed: a sample of persons' months hold the last item's notification
        db = client["maille_timeline"]
        note = db["notes"].find_one({"kind": "news", "title": f"Actualité : Conseil d'école n° {times - 1}"})
        month = datetime.fromtimestamp(int(note["_id"][:16]) / 1e6, UTC).strftime("%Y%m")
        sample = random.Random(1).sample([p for p in everyone if p != head], min(200, len(everyone) - 1))
        held = {
            d["person"]
            for d in db["feeds"].find({"_id": {"$in": [f"{p}:{month}" for p in sample]}, "ids": note["_id"]})
        }
        missing = len(sample) - len(held)
    return [took, missing]


def insert_missing(collection, docs: list) -> None:
    """Insert, leaving the months already there (this month's: the news just published made them)."""
    try:
        collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
            raise


def seed_feeds(store: str, everyone: list[str], notes: int) -> float:
    """`notes` notifications over the last six months in every person's feed (as the timeline stores them)."""
    started = time.perf_counter()
    rng = random.Random(7)
    now = datetime.now(UTC)
    with MongoClient(store) as client:
        db = client["maille_timeline"]
        made = []
        for n in range(notes):
            at = now - timedelta(days=rng.uniform(1, 180))
            made.append(
                {
                    "_id": f"{round(at.timestamp() * 1e6):016d}{n:012x}",
                    "kind": "mail",
                    "title": "Nouveau message de M. Dupont",
                    "text": f"« Message {n} »",
                    "link": f"/messagerie/message/m{n}",
                    "at": at,
                    "tenant": TENANT,
                }
            )
        db["notes"].insert_many(made)
        months: dict[str, list[str]] = {}
        for note in made:
            months.setdefault(note["at"].strftime("%Y%m"), []).append(note["_id"])
        batch = []
        for person in everyone:
            for month, ids in months.items():
                chosen = [i for i in ids if rng.random() < 0.8]
                batch.append(
                    {
                        "_id": f"{person}:{month}",
                        "person": person,
                        "month": month,
                        "ids": chosen,
                        "read": chosen[: len(chosen) // 2],
                    }
                )
            if len(batch) >= 2000:
                insert_missing(db["feeds"], batch)
                batch = []
        if batch:
            insert_missing(db["feeds"], batch)
    return time.perf_counter() - started


async def feed_pages(gateway: str, key: RSAKey, everyone: list[str], rate: float, seconds: float) -> tuple:
    rng = random.Random(3)
    # Persons signed in, each paging their feed: their tokens checked once (as a session's token is), before the clock
    # starts.
    tokens = {p: token(key, p) for p in rng.sample(everyone, min(len(everyone), 400))}
    who = list(tokens)
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as warm:
        for person in who:
            await warm.get("/api/timeline/v1/unread", headers={"authorization": tokens[person]})
    clients = [httpx.AsyncClient(base_url=gateway, timeout=30) for _ in range(64)]

    async def call(client: httpx.AsyncClient, person: object) -> bool:
        answer = await client.get("/api/timeline/v1/feed?size=20", headers={"authorization": tokens[str(person)]})
        return answer.status_code == 200 and len(answer.json()["items"]) > 0

    def schedule(span: float) -> list[tuple[float, object]]:
        start = time.perf_counter() + 0.5
        return [(start + i / rate, rng.choice(who)) for i in range(int(rate * span))]

    try:
        # Three seconds at the same rate first, not counted: the connections opened (the bench's to the gateway, the
        # gateway's and the timeline's pools grown to the load) as a running platform has them.
        await paced(clients, schedule(3), call)
        return await paced(clients, schedule(seconds), call)
    finally:
        for client in clients:
            await client.aclose()


async def sessions_for(nats_url: str, persons: list[str]) -> dict[str, str]:
    """A signed-in session for each person, written as the gateway writes them (its own code, its session store);
    person -> cookie."""
    settings = GatewaySettings(nats_url=nats_url, environment="development")
    store = Sessions(settings, TokenVerifier(issuer=ISSUER, audience="maille", jwks_url="http://127.0.0.1:1/"))
    bus = Bus(nats_url, name="bench-sessions")
    await bus.connect(timeout=10)
    await store.start(bus)
    cookies: dict[str, str] = {}
    now = time.time()
    gate = asyncio.Semaphore(256)

    async def one(person: str) -> None:
        cookie = uuid.uuid4().hex + uuid.uuid4().hex
        session = Session(
            key=hashlib.sha256(cookie.encode()).hexdigest(),
            subject=person,
            name=person,
            access_token="x",
            refresh_token="x",
            id_token="x",
            expires_at=now + 3600,
            csrf="x",
            created=now,
            person=person,
        )
        async with gate:
            await store.save(session)
        cookies[person] = cookie

    await asyncio.gather(*(one(p) for p in persons))
    await bus.close()
    return cookies


async def _streams(port: int, cookies: list[str], ready: Any, hold: float) -> dict[str, Any]:
    """One client process's share of the streams: open them, say how many opened, then read them for `hold` seconds;
    when each signal's frame arrived (wall clock: comparable across the bench's processes)."""
    arrived: dict[str, float] = {}
    opened = failed = 0

    async def stream(cookie: str) -> None:
        nonlocal opened, failed
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"GET /live HTTP/1.1\r\nhost: localhost\r\ncookie: maille_session={cookie}\r\n"
                "accept: text/event-stream\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                failed += 1
                return
            opened += 1
            while True:
                line = await reader.readline()
                if not line:
                    return
                if line.startswith(b"data: "):
                    arrived.setdefault(json.loads(line[6:]).get("id", ""), time.time())
        except (OSError, asyncio.IncompleteReadError, ValueError):
            failed += 1

    tasks = []
    for start in range(0, len(cookies), 500):  # opened 500 at a time, as pages open at 8 a.m. (not all in one tick)
        tasks += [asyncio.create_task(stream(c)) for c in cookies[start : start + 500]]
        await asyncio.sleep(0.05)
    deadline = time.perf_counter() + 120
    while opened + failed < len(cookies) and time.perf_counter() < deadline:
        await asyncio.sleep(0.5)
    ready.put((opened, failed))
    await asyncio.sleep(hold)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"opened": opened, "failed": failed, "arrived": arrived}


def _stream_process(port: int, cookies: list[str], ready: Any, done: Any, hold: float) -> None:
    done.put(asyncio.run(_streams(port, cookies, ready, hold)))


async def live(
    gateway_port: int, nats_url: str, cookies: dict[str, str], signals: int, rate: float, load, clients: int, rss
) -> dict:
    """Open a stream per session (from `clients` processes: a process may hold only so many sockets), then publish
    `signals` notifications for random persons at `rate`/s (with `load` running beside); latencies from publication to
    the frame read."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ready, done = context.Queue(), context.Queue()
    persons = list(cookies)
    hold = signals / rate + 60
    shares = [persons[n::clients] for n in range(clients)]
    workers = [
        context.Process(target=_stream_process, args=(gateway_port, [cookies[p] for p in share], ready, done, hold))
        for share in shares
    ]
    for worker in workers:
        worker.start()
    opened = failed = 0
    for _ in workers:
        got = await asyncio.to_thread(ready.get, True, 300)
        opened, failed = opened + got[0], failed + got[1]
    with_open = rss()  # the gateway's memory with every stream open, before any signal
    nc = await nats_client.connect(nats_url)
    sent: dict[str, float] = {}
    rng = random.Random(11)
    load_task = asyncio.create_task(load())
    await asyncio.sleep(5)  # the load's warm-up done: the signals go out while it runs
    for n in range(signals):
        person = rng.choice(persons)
        signal_id = f"s{n}"
        payload = {"event": "notification", "data": {"id": signal_id, "title": "Bench", "link": "/"}}
        sent[signal_id] = time.time()
        await nc.publish(live_subject(person), json.dumps(payload).encode())
        await asyncio.sleep(1 / rate)
    await nc.flush()
    pages = await load_task
    await nc.close()
    arrived: dict[str, float] = {}
    for _ in workers:
        arrived |= (await asyncio.to_thread(done.get, True, hold + 300))["arrived"]
    for worker in workers:
        worker.join(30)
    latencies = [(arrived[i] - t) * 1000 for i, t in sent.items() if i in arrived]
    return {
        "opened": opened,
        "failed": failed,
        "latencies": latencies,
        "lost": len(sent) - len(latencies),
        "pages": pages,
        "rss": with_open,
        "rss_end": rss(),
    }


def seed_digests(store: str, parents: int) -> float:
    """`parents` parents, each with an address and one to three notifications waiting for the evening's digest."""
    started = time.perf_counter()
    rng = random.Random(13)
    now = datetime.now(UTC)
    with MongoClient(store) as client:
        db = client["maille_timeline"]
        notes = [
            {
                "_id": f"{round((now - timedelta(hours=n)).timestamp() * 1e6):016d}{n:012x}",
                "kind": "mail",
                "title": "Nouveau message de Mme Leroy",
                "text": f"« Sortie scolaire n° {n} »",
                "link": f"/messagerie/message/m{n}",
                "at": now - timedelta(hours=n),
            }
            for n in range(50)
        ]
        db["notes"].insert_many(notes, ordered=False)
        persons, digests = [], []
        day = f"{now:%Y-%m-%d}"
        for n in range(parents):
            pid = f"parent-{n:07d}"
            persons.append(
                {
                    "_id": pid,
                    "first_name": "Camille",
                    "last_name": "Martin",
                    "emails": [f"{pid}@example.org"],
                    "schools": {"0350001L": ["National_TUT"]},
                }
            )
            digests.append(
                {
                    "_id": f"{day}:{pid}",
                    "person": pid,
                    "day": day,
                    "ids": [notes[i]["_id"] for i in rng.sample(range(50), rng.randint(1, 3))],
                }
            )
            if len(persons) >= 5000:
                db["persons"].insert_many(persons, ordered=False)
                db["digests"].insert_many(digests, ordered=False)
                persons, digests = [], []
        if persons:
            db["persons"].insert_many(persons, ordered=False)
            db["digests"].insert_many(digests, ordered=False)
    return time.perf_counter() - started


def main() -> None:
    args = arguments(
        __doc__,
        persons=(4000, "persons of the school (pupils, parents, staff)"),
        news=(3, "news items published to the whole school"),
        notes=(120, "notifications seeded over six months"),
        feed_rate=200.0,
        seconds=20.0,
        streams=20_000,
        signals=2000,
        signal_rate=100.0,
        parents=300_000,
        phases="news,feed,live,digest",
    )
    phases = set(args.phases.split(","))
    # Open files: the gateway (a child) inherits the limit, and holds every stream. Raised as far as allowed; where a
    # process may not open enough (a hard limit the bench cannot raise), the streams are capped below it and said so.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.streams + 4096, max(hard, args.streams + 4096)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if args.streams + 1024 > limit:
        print(
            f"!! a process may open {limit} files here (hard limit, CAP_SYS_RESOURCE absent): {args.streams} streams "
            f"capped at {limit - 1024}"
        )
        args.streams = limit - 1024

    with platform("timeline") as bench:
        mailpit = bench.started(
            MailpitServer(
                smtp_port=free_port(), http_port=free_port(), data_dir=bench.work / "mailpit", log_dir=bench.logs
            )
        )
        timeline = bench.service(
            "timeline", smtp_port=str(mailpit.smtp_port), daily_digests="false", environment="development"
        )
        gateway = bench.gateway("timeline", timeline.url, environment="development")
        key, store, nats = bench.key, bench.store, bench.nats

        started = time.perf_counter()
        uai, everyone, head = school(bench.school(args.persons, TENANT)[1])
        print(f"directory of one school imported: {len(everyone)} persons in {time.perf_counter() - started:.1f} s")
        print(f"  the timeline's copy complete {wait_for_copy(store, len(everyone)):.1f} s after")

        if "news" in phases:
            took, missing = asyncio.run(news(gateway.url, key, head, uai, everyone, store.url, args.news))
            print(
                f"news to the whole school ({len(everyone) - 1} persons), in every feed when answered: "
                + ", ".join(f"{t:.0f} ms" for t in took)
                + f" ({missing} of a sample of 200 feeds without it)"
            )
        pages = None
        if "feed" in phases or "live" in phases:
            print(
                f"feeds seeded ({args.notes} notifications over six months each) in "
                f"{seed_feeds(store.url, everyone, args.notes):.1f} s"
            )
        if "feed" in phases:
            pages = asyncio.run(feed_pages(gateway.url, key, everyone, args.feed_rate, args.seconds))
            print(
                f"feed pages (20 items) at {args.feed_rate:g}/s through the gateway: p50 {pct(pages[0], 50):.1f} ms, "
                f"p99 {pct(pages[0], 99):.1f} ms, {pages[1]} failed, {pages[2]:.0f}/s sustained"
            )
        if "live" in phases:
            persons = [f"bench-{n:06d}" for n in range(args.streams)]
            cookies = asyncio.run(sessions_for(nats.url, persons))
            pid = gateway.process.popen.pid
            before = rss_mib(pid)

            async def load() -> tuple:
                return await feed_pages(gateway.url, key, everyone, args.feed_rate, args.seconds)

            result = asyncio.run(
                live(
                    gateway.port,
                    nats.url,
                    cookies,
                    args.signals,
                    args.signal_rate,
                    load,
                    clients=4,
                    rss=lambda: rss_mib(pid),
                )
            )
            lat = result["latencies"]
            print(
                f"live streams on one gateway process: {result['opened']} open ({result['failed']} failed); "
                f"gateway RSS {before:.0f} MiB before, {result['rss']:.0f} MiB with them open, "
                f"{result['rss_end']:.0f} MiB at the end of the signals and the load"
            )
            print(
                f"  {len(lat)} notifications at {args.signal_rate:g}/s to random persons: publication to frame p50 "
                f"{pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms, {result['lost']} not heard"
            )
            pages = result["pages"]
            print(
                f"  beside them, feed pages at {args.feed_rate:g}/s: p50 {pct(pages[0], 50):.1f} ms, "
                f"p99 {pct(pages[0], 99):.1f} ms, {pages[1]} failed"
            )
        if "digest" in phases:
            print(f"{args.parents} parents' digests seeded in {seed_digests(store.url, args.parents):.1f} s")
            env = {
                **os.environ,
                "MAILLE_TIMELINE_MONGODB_URL": store.url,
                "MAILLE_TIMELINE_SMTP_PORT": str(mailpit.smtp_port),
                "MAILLE_TIMELINE_ENVIRONMENT": "development",
                "MAILLE_TIMELINE_LOG_LEVEL": "WARNING",
            }
            started = time.perf_counter()
            done = subprocess.run(
                [str(Path(sys.executable).parent / "maille-timeline"), "send-digests"],
                env=env,
                capture_output=True,
                text=True,
            )
            took = time.perf_counter() - started
            print(f"  {done.stdout.strip()} {done.stderr.strip()[-300:]}")
            sent = int(done.stdout.split("sent ")[1].split(",")[0]) if "sent " in done.stdout else 0
            received = httpx.get(f"{mailpit.api}/messages?limit=1", timeout=30).json()["total"]
            print(
                f"digests: {sent} built and handed to the SMTP server in {took:.0f} s ({sent / took:.0f} mails/s); "
                f"the SMTP server holds {received}"
            )
        print(machine())


if __name__ == "__main__":
    main()
