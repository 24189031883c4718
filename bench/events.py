"""Events end to end through JetStream with the kit: outbox → relay → JetStream → idempotent consumer.

As in production, the publishing service and the consuming service are two processes. The script
starts its own nats-server and docstore (FerretDB on SQLite) on free ports, as the tests do, and a
consumer process (this script with --consume), then measures:
1. throughput: N events published by concurrent producers (as concurrent requests in a service would
   publish them), timed from the first publish until the consumer has handled the last one;
2. latency: events published at a steady rate (1,000/s); publish-to-handle latency percentiles.

    .venv/bin/python bench/events.py [--events 20000] [--producers 200] [--rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from google.protobuf.wrappers_pb2 import Int64Value

from maille_devstack.processes import DocstoreServer, NatsServer, free_port
from maille_kit.bus import Bus, Stream
from maille_kit.consumer import EventConsumer
from maille_kit.docstore import Docstore
from maille_kit.events import Event
from maille_kit.outbox import Outbox

SUBJECT = "bench.item.counted.v1"


async def consume(args: argparse.Namespace) -> None:
    """The consuming service: handle `expect` events, then print when and how late each came."""
    bus = Bus(args.nats, name="bench-consumer")
    await bus.connect(timeout=10)
    docstore = Docstore(args.mongodb, "bench_consumer", app_name="bench-consumer")
    await docstore.detect()
    latencies: list[float] = []
    done = asyncio.Event()

    async def handle(event: Event) -> None:
        latencies.append(time.time_ns() - event.unpack(Int64Value).value)
        if len(latencies) >= args.expect:
            done.set()

    consumer = EventConsumer(
        bus,
        docstore,
        service="bench",
        durable=args.stream.lower(),
        stream=args.stream,
        subjects=(SUBJECT,),
        handler=handle,
    )
    await consumer.start()
    print("ready", flush=True)
    await asyncio.wait_for(done.wait(), timeout=900)
    finished = time.time_ns()
    await consumer.stop()
    await bus.close()
    await docstore.close()
    print(json.dumps({"finished_ns": finished, "latencies_ns": latencies}), flush=True)


async def phase(
    bus: Bus, docstore: Docstore, args: argparse.Namespace, *, total: int, produce
) -> tuple[float, list[float]]:
    """Publish `total` events with `produce` to a consumer process; elapsed seconds and latencies (ms)."""
    stream = Stream(name=f"BENCH_{uuid.uuid4().hex[:6].upper()}", subjects=(SUBJECT,), max_age_seconds=900)
    await bus.ensure_streams([stream])
    consumer = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--consume",
            "--nats",
            args.nats,
            "--mongodb",
            args.mongodb,
            "--stream",
            stream.name,
            "--expect",
            str(total),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert consumer.stdout is not None
    while consumer.stdout.readline().strip() != "ready":
        pass
    outbox = Outbox(docstore, bus, source="bench")
    outbox.start()
    started = time.time_ns()
    await produce(outbox)
    line = await asyncio.to_thread(consumer.stdout.readline)
    consumer.wait(60)
    await outbox.stop()
    await bus.js.delete_stream(stream.name)
    result = json.loads(line)
    return (result["finished_ns"] - started) / 1e9, [v / 1e6 for v in result["latencies_ns"]]


async def bench(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="maille-bench-"))
    nats = NatsServer(port=free_port(), store_dir=workdir / "nats", log_dir=workdir / "log")
    store = DocstoreServer(port=free_port(), data_dir=workdir / "docstore", log_dir=workdir / "log")
    nats.start()
    store.start()
    args.nats, args.mongodb = nats.url, store.url
    bus = Bus(nats.url, name="bench-producer")
    await bus.connect(timeout=10)
    docstore = Docstore(store.url, "bench_producer", app_name="bench-producer")
    await docstore.detect()
    try:
        per_producer = args.events // args.producers
        total = per_producer * args.producers

        async def burst(outbox: Outbox) -> None:
            async def producer() -> None:
                for _ in range(per_producer):
                    await outbox.publish(type=SUBJECT, tenant="bench", payload=Int64Value(value=time.time_ns()))

            await asyncio.gather(*(producer() for _ in range(args.producers)))

        elapsed, _ = await phase(bus, docstore, args, total=total, produce=burst)

        steady_total = args.rate * args.seconds

        async def steady(outbox: Outbox) -> None:
            start = time.perf_counter()
            tasks = []
            for n in range(steady_total):
                delay = start + n / args.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                event = outbox.publish(type=SUBJECT, tenant="bench", payload=Int64Value(value=time.time_ns()))
                tasks.append(asyncio.create_task(event))
            await asyncio.gather(*tasks)

        _, latencies = await phase(bus, docstore, args, total=steady_total, produce=steady)
    finally:
        await bus.close()
        await docstore.close()
        nats.stop()
        store.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # the data (hundreds of MB) is not kept

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"throughput: {total:,} events in {elapsed:.2f}s = {total / elapsed:,.0f} events/s published and consumed "
        f"end to end ({args.producers} concurrent producers; goal >= 5,000)"
    )
    print(
        f"latency at {args.rate:,}/s for {args.seconds}s: p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {sorted(latencies)[int(0.99 * len(latencies))]:.1f} ms, max {max(latencies):.1f} ms (goal p99 <= 20 ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--producers", type=int, default=200)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--consume", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--nats", help=argparse.SUPPRESS)
    parser.add_argument("--mongodb", help=argparse.SUPPRESS)
    parser.add_argument("--stream", help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, help=argparse.SUPPRESS)
    cli = parser.parse_args()
    asyncio.run(consume(cli) if cli.consume else bench(cli))
