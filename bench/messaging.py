"""The ENT mail through the gateway: an inbox page, sending to a class, to a 1,500-person group, and sends/s.

Sets up, on this machine: NATS, the docstore, identity (the communication rules) on a directory imported from
a synthetic AAF feed of one school (`--persons`, about 1,500 pupils by default), messaging and the gateway,
each one process. Seeds `--messages` messages straight into messaging's database (pupils writing to
classmates over ten months, and `--inbox` of them into one teacher's inbox). Then, through the gateway:

1. the teacher's inbox, first page and the next (25 each), at `--page-rate`/s for `--seconds` (the listing
   lines kept in memory after the first read), then `--cold` pupils' first look at their inbox (cold);
2. the teacher writing to their biggest class (its pupils group), at `--class-rate`/s for `--seconds`;
3. the teacher writing to the school's pupils group (about 1,500 persons), five times: the answer comes once
   every copy is filed, so its time is the time until the message is in every inbox (checked on a sample);
4. pupils writing to a classmate at `--send-rate`/s for `--seconds` (open loop: latency counted from when each
   send was due), and the rate sustained (completions per second after the first two seconds; offer more than
   the platform can take, `--send-rate 360`, to see its ceiling).

Every phase is open loop: each request goes out when due on any free connection of `--connections`, so a slow
answer delays no other request. Tokens are signed by the bench's own key (RS256) and checked in full by the gateway and
messaging.

    .venv/bin/python bench/messaging.py [--messages 100000] [--inbox 2000] [--send-rate 300] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import httpx
from joserfc.jwk import RSAKey
from pymongo import MongoClient

from common import arguments, bearer, machine, paced, pct, platform, scrape_cost
from maille_devstack.processes import DocstoreServer
from maille_messaging.bodies import words
from maille_messaging.schemas import new_message_id
from maille_messaging.sending import listing_line, search_key

TENANT = "ac-bench"


def token(key: RSAKey, person: str) -> str:
    return bearer(key, ["maille", "maille-messaging"], person)


def directory(everyone: list[dict]) -> dict:
    """Who is who in the school identity imported: each class's pupils, each teacher's classes, everyone's name."""
    classes: dict[str, list[str]] = defaultdict(list)
    teachers: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    uai = ""
    for doc in everyone:
        names[doc["_id"]] = f"{doc.get('first_name', '')} {doc.get('last_name', '')}"
        if doc.get("kind") == "pupil":
            uai = doc["profiles"][0]["structure"]
            for cls in doc.get("classes", []):
                classes[cls].append(doc["_id"])
        elif any(p["code"] == "National_ENS" for p in doc.get("profiles", [])) and doc.get("classes"):
            teachers[doc["_id"]] = list(doc["classes"])
    return {"classes": dict(classes), "teachers": teachers, "names": names, "uai": uai}


def seed(store: DocstoreServer, people: dict, args: argparse.Namespace) -> float:
    """`--messages` messages as the service stores them (content, each holder's copy, the month indexes), over ten
    months."""
    rng = random.Random(5)
    started = time.perf_counter()
    classes = [pupils for pupils in people["classes"].values() if len(pupils) > 1]
    reader = people["reader"]
    reader_classes = [people["classes"][c] for c in people["teachers"][reader] if c in people["classes"]]
    now = time.time()
    with MongoClient(store.url) as client:
        db = client["maille_messaging"]
        months: dict[str, dict] = {}
        messages, copies = [], []

        def index(person: str, message_id: str, folder: str, unread: bool) -> None:
            month = time.strftime("%Y%m", time.gmtime(int(message_id[:12], 16) / 1000))
            doc = months.setdefault(
                f"{person}:{month}",
                {"_id": f"{person}:{month}", "tenant": TENANT, "person": person, "folders": {}, "unread": {}},
            )
            doc["folders"].setdefault(folder, []).append(message_id)
            if unread:
                doc["unread"].setdefault(folder, []).append(message_id)

        def flush() -> None:
            if messages:
                db.messages.insert_many(messages, ordered=False)
                db.copies.insert_many(copies, ordered=False)
                messages.clear()
                copies.clear()

        for n in range(args.messages):
            if n < args.inbox:
                sender, recipient = rng.choice(rng.choice(reader_classes)), reader
            else:
                pupils = rng.choice(classes)
                sender, recipient = rng.sample(pupils, 2)
            at = now - rng.uniform(60, 300 * 86400)
            message_id = new_message_id(at)
            subject = f"Message {n} : devoirs de la semaine"
            body = f"<p>Bonjour, voici le travail n°{n} pour la classe. Bonne journée !</p>"
            sent_at = datetime.fromtimestamp(at, UTC)
            sender_doc = {"id": sender, "name": people["names"][sender]}
            message = {
                "_id": message_id,
                "tenant": TENANT,
                "state": "sent",
                "sender": sender_doc,
                "to": [{"type": "person", "id": recipient, "name": people["names"][recipient]}],
                "cc": [],
                "bcc": [],
                "subject": subject,
                "body": body,
                "attachments": [],
                "thread": message_id,
                "sent_at": sent_at,
                "recipients": [recipient],
                "holders": 2,
                "words": words(subject, body),
            }
            message["line"], message["search_key"] = listing_line(message), search_key(message)
            messages.append(message)
            for owner, folder, unread in ((sender, "sent", False), (recipient, "inbox", True)):
                copies.append(
                    {
                        "_id": f"{owner}:{message_id}",
                        "tenant": TENANT,
                        "person": owner,
                        "message": message_id,
                        "folder": folder,
                        "unread": unread,
                    }
                )
                index(owner, message_id, folder, unread)
            if len(messages) == 2000:
                flush()
        flush()
        docs = list(months.values())
        for start in range(0, len(docs), 2000):
            db.months.insert_many(docs[start : start + 2000], ordered=False)
        per_person: dict[str, list[str]] = defaultdict(list)
        for key in months:
            person, month = key.rsplit(":", 1)
            per_person[person].append(month)
        db.mailboxes.insert_many(
            [{"_id": p, "tenant": TENANT, "months": sorted(m)} for p, m in per_person.items()], ordered=False
        )
    return time.perf_counter() - started


class Cpu:
    """CPU seconds each process used in each phase (from /proc), to see where the machine's two cores go."""

    def __init__(self, parts: dict[str, int]) -> None:
        self.parts = {**parts, "bench": os.getpid()}
        self.marks: list[tuple[str, float, dict[str, float]]] = []

    def _now(self) -> dict[str, float]:
        ticks = os.sysconf("SC_CLK_TCK")
        found = {}
        for name, pid in self.parts.items():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            found[name] = (int(fields[11]) + int(fields[12])) / ticks
        return found

    def mark(self, phase: str) -> None:
        self.marks.append((phase, time.perf_counter(), self._now()))

    def shares(self, name: str) -> dict[str, float]:
        """Each phase's CPU of process `name`, as a share of one core."""
        return {
            phase: (c1[name] - c0[name]) / (t1 - t0) for (phase, t0, c0), (_, t1, c1) in zip(self.marks, self.marks[1:])
        }

    def report(self) -> list[str]:
        lines = []
        for (phase, t0, c0), (_, t1, c1) in zip(self.marks, self.marks[1:]):
            shares = ", ".join(f"{name} {100 * (c1[name] - c0[name]) / (t1 - t0):.0f} %" for name in c0)
            lines.append(f"  CPU during {phase} (of one core): {shares}")
        return lines


async def load(gateway: str, key: RSAKey, people: dict, args: argparse.Namespace, cpu: Cpu) -> dict:
    reader = people["reader"]
    reader_token = token(key, reader)
    rng = random.Random(9)
    result: dict = {}
    errors: list[str] = []
    result["errors"] = errors
    gc.freeze()
    gc.disable()  # the load generator must not pause for its own collector while it sends
    clients = [
        httpx.AsyncClient(base_url=gateway, timeout=30, limits=httpx.Limits(max_connections=1))
        for _ in range(args.connections)
    ]
    try:
        # Warm-up, as a running platform is: identity has loaded the tenant's directory for its rules.
        warm = await clients[0].post(
            "/api/messaging/v1/messages",
            headers={"authorization": reader_token},
            json={
                "to": [{"type": "person", "id": people["classes"][people["teachers"][reader][0]][0]}],
                "subject": "Bonjour",
            },
        )
        assert warm.status_code == 201, warm.text
        first = (
            await clients[0].get("/api/messaging/v1/folders/inbox/messages", headers={"authorization": reader_token})
        ).json()
        cursor = first["next"]
        assert len(first["entries"]) == 25 and cursor, first

        async def page(client: httpx.AsyncClient, n: object) -> bool:
            params = {"cursor": cursor} if n % 2 else {}
            answer = await client.get(
                "/api/messaging/v1/folders/inbox/messages", params=params, headers={"authorization": reader_token}
            )
            ok = answer.status_code == 200 and answer.content.count(b'"thread":') == 25
            if not ok and len(errors) < 3:
                errors.append(f"{answer.status_code} {answer.text[:200]}")
            return ok

        total = int(args.page_rate * args.seconds)
        start = time.perf_counter() + 0.3
        cpu.mark("pages")
        result["pages"] = await paced(clients, [(start + i / args.page_rate, i) for i in range(total)], page)

        # Cold pages: pupils' first look at their inbox, none of whose listing lines this replica has seen.
        pupils = rng.sample([p for ps in people["classes"].values() for p in ps], min(args.cold, 1000))
        cold_tokens = {p: token(key, p) for p in pupils}

        async def cold_page(client: httpx.AsyncClient, pupil: object) -> bool:
            answer = await client.get(
                "/api/messaging/v1/folders/inbox/messages", headers={"authorization": cold_tokens[pupil]}
            )
            return answer.status_code == 200 and b'"entries":[{' in answer.content

        start = time.perf_counter() + 0.3
        cpu.mark("cold pages")
        result["cold"] = await paced(
            clients, [(start + i / args.cold_rate, p) for i, p in enumerate(pupils)], cold_page
        )

        cls = max(
            (c for c in people["teachers"][reader] if c in people["classes"]), key=lambda c: len(people["classes"][c])
        )
        result["class_size"] = len(people["classes"][cls])

        async def to_class(client: httpx.AsyncClient, n: object) -> bool:
            answer = await client.post(
                "/api/messaging/v1/messages",
                headers={"authorization": reader_token},
                json={
                    "to": [{"type": "group", "id": f"{cls}/ELV"}],
                    "subject": f"Classe {n}",
                    "body": "<p>Demain : contrôle</p>",
                },
            )
            return answer.status_code == 201 and answer.json()["recipients"] == result["class_size"]

        total = int(args.class_rate * args.seconds)
        start = time.perf_counter() + 0.3
        cpu.mark("class")
        result["class"] = await paced(clients, [(start + i / args.class_rate, i) for i in range(total)], to_class)

        school = f"{people['uai']}/ELV"
        result["school_size"] = sum(len(p) for p in people["classes"].values())
        big: list[float] = []
        async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
            for n in range(5):
                started = time.perf_counter()
                answer = await client.post(
                    "/api/messaging/v1/messages",
                    headers={"authorization": reader_token},
                    json={
                        "to": [{"type": "group", "id": school}],
                        "subject": f"À toute l'école {n}",
                        "body": "<p>Info</p>",
                    },
                )
                big.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 201, answer.text[:300]
                sample = rng.sample([p for ps in people["classes"].values() for p in ps], 30)
                for pupil in sample:  # in their inboxes, newest first
                    inbox = (
                        await client.get(
                            "/api/messaging/v1/folders/inbox/messages",
                            params={"limit": 1},
                            headers={"authorization": token(key, pupil)},
                        )
                    ).json()
                    assert inbox.get("entries") and inbox["entries"][0]["id"] == answer.json()["id"], (pupil, inbox)
                await asyncio.sleep(1)
        result["big"] = big

        pairs = [
            (p, rng.choice([q for q in pupils if q != p]))
            for pupils in people["classes"].values()
            if len(pupils) > 1
            for p in pupils
        ]
        tokens = {p: token(key, p) for p, _ in pairs}

        async def send(client: httpx.AsyncClient, pair: object) -> bool:
            sender, recipient = pair  # type: ignore[misc]
            answer = await client.post(
                "/api/messaging/v1/messages",
                headers={"authorization": tokens[sender]},
                json={
                    "to": [{"type": "person", "id": recipient}],
                    "subject": "Tu as les devoirs ?",
                    "body": "<p>Merci !</p>",
                },
            )
            return answer.status_code == 201

        total = int(args.send_rate * args.seconds)
        start = time.perf_counter() + 0.5
        cpu.mark("sends")
        result["sends"] = await paced(
            clients, [(start + i / args.send_rate, rng.choice(pairs)) for i in range(total)], send
        )
        cpu.mark("end")
    finally:
        for client in clients:
            await client.aclose()
        gc.enable()
    return result


def main() -> None:
    args = arguments(
        __doc__,
        persons=(4000, "persons of the school's AAF feed (about 1,500 pupils)"),
        messages=100_000,
        inbox=(2000, "of them in the benched teacher's inbox"),
        page_rate=100.0,
        cold=(600, "pupils whose inbox is read once, cold"),
        cold_rate=30.0,
        class_rate=10.0,
        send_rate=300.0,
        seconds=20.0,
        connections=(256, "connections the load is spread over (a request goes on any free one)"),
    )

    with platform("messaging") as bench:
        started = time.perf_counter()
        identity, everyone = bench.school(args.persons, TENANT)
        print(f"directory imported ({args.persons} persons) in {time.perf_counter() - started:.1f} s")
        people = directory(everyone)
        key, store, nats = bench.key, bench.store, bench.nats
        people["reader"] = max(
            people["teachers"], key=lambda t: sum(len(people["classes"].get(c, [])) for c in people["teachers"][t])
        )
        took = seed(store, people, args)
        print(f"seeded {args.messages} messages ({args.inbox} in the benched teacher's inbox) in {took:.1f} s")
        messaging = bench.service("messaging", tenant=TENANT)
        gateway = bench.gateway("messaging", messaging.url)

        cpu = Cpu(
            {
                "gateway": gateway.process.popen.pid,
                "messaging": messaging.process.popen.pid,
                "identity": identity.process.popen.pid,
                "docstore": store.process.popen.pid,
                "nats": nats.process.popen.pid,
            }
        )
        r = asyncio.run(load(gateway.url, key, people, args, cpu))
        pages, klass, sends = r["pages"], r["class"], r["sends"]
        print(f"messaging through the gateway; {args.messages} messages stored, {args.inbox} in the reader's inbox")
        print(
            f"  inbox pages (first and next, 25 each) at {args.page_rate:g}/s: p50 {pct(pages[0], 50):.1f} ms, "
            f"p99 {pct(pages[0], 99):.1f} ms, {pages[1]} failed"
        )
        cold = r["cold"]
        print(
            f"  {len(cold[0])} pupils' first inbox page (cold: their lines read from the docstore) at "
            f"{args.cold_rate:g}/s: "
            f"p50 {pct(cold[0], 50):.1f} ms, p99 {pct(cold[0], 99):.1f} ms, {cold[1]} failed"
        )
        print(
            f"  sending to a class of {r['class_size']} pupils at {args.class_rate:g}/s: p50 {pct(klass[0], 50):.1f} "
            "ms, "
            f"p99 {pct(klass[0], 99):.1f} ms, {klass[1]} failed"
        )
        print(
            f"  sending to the school's {r['school_size']} pupils (in every inbox when answered): "
            + ", ".join(f"{t:.0f} ms" for t in r["big"])
        )
        print(
            f"  pupils writing to a classmate, {len(sends[0])} sends due at {args.send_rate:g}/s: "
            f"{sends[2]:.0f} sends/s sustained, p50 {pct(sends[0], 50):.1f} ms, p99 {pct(sends[0], 99):.1f} ms, "
            f"{sends[1]} failed"
        )
        for line in cpu.report():
            print(line)
        # What a Prometheus scrape of messaging's /metrics costs it, against its busiest phase (the sends).
        cost = scrape_cost([messaging.process.popen.pid], f"http://127.0.0.1:{messaging.metrics_port}/metrics")
        busiest = max(cpu.shares("messaging").values())
        print(
            f"  a scrape of messaging's /metrics: {cost['cpu_ms']:.2f} ms of its CPU ({cost['series']:.0f} series, "
            f"{cost['kib']:.0f} KiB); every 15 s = {cost['cpu_ms'] / 15_000 / busiest * 100:.3f} % of its CPU in "
            f"its busiest phase ({busiest * 100:.0f} % of a core) (goal <= 1 %)"
        )
        for error in r["errors"]:
            print(f"  failed: {error}")
        print(machine())


if __name__ == "__main__":
    main()
