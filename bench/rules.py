"""`can_write` over NATS request/reply, as messaging asks it: p50/p99 at a steady request rate.

Starts its own nats-server and docstore, imports a synthetic directory (`--persons`), starts the
identity service as a real process, warms its visibles, then sends `--rate` requests/s for `--seconds`
from another process's connection, each naming a sender and 5 recipients of the same school.

    .venv/bin/python bench/rules.py [--persons 20000] [--rate 500] [--seconds 10]
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nats
from pymongo import MongoClient

from common import arguments
from maille.identity.v1 import rules_pb2 as pb
from maille_devstack.processes import DocstoreServer, NatsServer, ServiceProcess, free_port
from maille_identity.directory.synthetic import generate
from maille_identity.rules.responder import CAN_WRITE

BIN = Path(sys.executable).parent


async def measure(
    nats_url: str, tenant: str, senders: list[tuple[str, list[str]]], rate: int, seconds: int
) -> list[float]:
    nc = await nats.connect(nats_url)
    requests = [pb.CanWriteRequest(tenant=tenant, sender_id=s, recipient_ids=r).SerializeToString() for s, r in senders]
    for data in requests[:200]:  # warm: the tenant loaded, the senders' targets computed
        await nc.request(CAN_WRITE, data, timeout=60)
    latencies: list[float] = []

    async def one(data: bytes) -> None:
        started = time.perf_counter()
        reply = await nc.request(CAN_WRITE, data, timeout=5)
        latencies.append((time.perf_counter() - started) * 1000)
        assert not pb.CanWriteResponse.FromString(reply.data).error

    tasks = []
    start = time.perf_counter()
    for n in range(rate * seconds):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(random.choice(requests))))
    await asyncio.gather(*tasks)
    await nc.close()
    return latencies


def main() -> None:
    args = arguments(__doc__, persons=20_000, schools=12, rate=500, seconds=10)
    workdir = Path(tempfile.mkdtemp(prefix="maille-bench-rules-"))
    natsd = NatsServer(port=free_port(), store_dir=workdir / "nats", log_dir=workdir / "log")
    store = DocstoreServer(port=free_port(), data_dir=workdir / "docstore", log_dir=workdir / "log")
    natsd.start()
    store.start()
    database = f"bench_rules_{uuid.uuid4().hex[:8]}"
    env = {
        "MAILLE_IDENTITY_NATS_URL": natsd.url,
        "MAILLE_IDENTITY_MONGODB_URL": store.url,
        "MAILLE_IDENTITY_DATABASE": database,
    }
    identity = None
    try:
        generate(workdir / "feed", persons=args.persons, schools=args.schools)
        subprocess.run(
            [
                str(BIN / "maille-identity"),
                "import-aaf",
                str(workdir / "feed"),
                "--report",
                str(workdir / "report.txt"),
            ],
            env={**os.environ, **env, "CI": "1"},
            check=True,
            capture_output=True,
        )
        with MongoClient(store.url) as client:
            persons = list(client[database]["persons"].find({}, {"profiles": 1, "tenant": 1}))
        by_school: dict[str, list[str]] = {}
        for person in persons:
            for profile in person.get("profiles", []):
                by_school.setdefault(profile["structure"], []).append(person["_id"])
        rng = random.Random(1)
        senders = []
        for _ in range(5000):
            school = rng.choice(list(by_school))
            members = by_school[school]
            senders.append((rng.choice(members), rng.sample(members, 5)))
        identity = ServiceProcess("identity", port=free_port(), env=env, log_dir=workdir / "log")
        identity.start()
        latencies = sorted(asyncio.run(measure(natsd.url, persons[0]["tenant"], senders, args.rate, args.seconds)))
    finally:
        if identity is not None:
            identity.stop()
        natsd.stop()
        store.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # the data (hundreds of MB) is not kept
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"directory: {len(persons):,} persons in {len(by_school)} schools")
    print(
        f"can_write over NATS at {args.rate}/s for {args.seconds}s (5 recipients each): p50 {p(0.5):.2f} ms, "
        f"p99 {p(0.99):.2f} ms, max {latencies[-1]:.2f} ms (goal p99 <= 2 ms)"
    )


if __name__ == "__main__":
    main()
