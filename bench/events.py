"""Events end to end through JetStream with the kit: outbox → relay → JetStream → idempotent consumer.

Starts its own nats-server and docstore (FerretDB on SQLite) on free ports, as the tests do, then:
1. throughput: N events published by concurrent producers (as concurrent requests would), timed from
   the first publish until the consumer has handled the last one;
2. latency: events published at a steady 1,000/s; publish-to-handle latency percentiles.

    .venv/bin/python bench/events.py [--events 20000] [--producers 50] [--rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
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


async def run_phase(bus: Bus, docstore: Docstore, *, label: str, total: int, produce) -> tuple[float, list[float]]:
    """Publish `total` events with `produce`; the seconds until all were handled, and each latency (s)."""
    stream = Stream(name=f"BENCH_{uuid.uuid4().hex[:6].upper()}", subjects=(SUBJECT,), max_age_seconds=600)
    await bus.ensure_streams([stream])
    outbox = Outbox(docstore.db, bus, source="bench")
    outbox.start()
    latencies: list[float] = []
    done = asyncio.Event()

    async def handle(event: Event) -> None:
        sent_ns = event.unpack(Int64Value).value
        latencies.append((time.time_ns() - sent_ns) / 1e9)
        if len(latencies) >= total:
            done.set()

    consumer = EventConsumer(
        bus, docstore.db, service="bench", durable=f"bench{label}", stream=stream.name, subjects=stream.subjects, handler=handle
    )
    await consumer.start()
    started = time.perf_counter()
    await produce(outbox)
    await asyncio.wait_for(done.wait(), timeout=600)
    elapsed = time.perf_counter() - started
    await consumer.stop()
    await outbox.stop()
    await bus.js.delete_stream(stream.name)
    return elapsed, latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="maille-bench-"))
    nats = NatsServer(port=free_port(), store_dir=workdir / "nats", log_dir=workdir / "log")
    store = DocstoreServer(port=free_port(), data_dir=workdir / "docstore", log_dir=workdir / "log")
    nats.start()
    store.start()
    bus = Bus(nats.url, name="bench")
    await bus.connect(timeout=10)
    docstore = Docstore(store.url, "bench", app_name="bench")
    try:
        # 1. Throughput.
        async def burst(outbox: Outbox) -> None:
            per_producer = args.events // args.producers

            async def producer() -> None:
                for _ in range(per_producer):
                    await outbox.publish(type=SUBJECT, tenant="bench", payload=Int64Value(value=time.time_ns()))

            await asyncio.gather(*(producer() for _ in range(args.producers)))

        total = args.events // args.producers * args.producers
        elapsed, _ = await run_phase(bus, docstore, label="burst", total=total, produce=burst)
        throughput = total / elapsed

        # 2. Latency at a steady rate.
        steady_total = args.rate * args.seconds

        async def steady(outbox: Outbox) -> None:
            interval = 1 / args.rate
            start = time.perf_counter()
            tasks = []
            for n in range(steady_total):
                delay = start + n * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(outbox.publish(type=SUBJECT, tenant="bench", payload=Int64Value(value=time.time_ns()))))
            await asyncio.gather(*tasks)

        _, latencies = await run_phase(bus, docstore, label="steady", total=steady_total, produce=steady)
    finally:
        await bus.close()
        await docstore.close()
        nats.stop()
        store.stop()

    print(f"machine: {platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}")
    print(f"throughput: {total} events in {elapsed:.2f}s = {throughput:,.0f} events/s end to end "
          f"({args.producers} concurrent producers; goal >= 5,000)")
    ms = [v * 1000 for v in latencies]
    print(f"latency at {args.rate}/s for {args.seconds}s: p50 {statistics.median(ms):.1f} ms, "
          f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms (goal p99 <= 20 ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--producers", type=int, default=50)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
