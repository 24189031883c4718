"""The directory's AAF import (a full import of a synthetic académie, then the same feed again) and
its GAR export.

Generates a full feed (`--persons`, `--schools`), then runs `maille-identity import-aaf` twice as an
operator would, each in its own process so that its peak memory is its own; prints persons/s, peak
memory (max RSS) and the events each run published. Starts its own nats-server and docstore on free
ports unless `--mongodb` / `--nats` point at running ones (e.g. those of `make run`).

    .venv/bin/python bench/directory.py [--persons 106500] [--schools 60]
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import arguments
from maille_devstack.processes import DocstoreServer, NatsServer, free_port
from maille_identity.directory.synthetic import generate
from maille_identity.events import STREAM
from maille_kit.bus import Bus

BIN = Path(sys.executable).parent


def run_command(args: list[str], env: dict[str, str]) -> tuple[str, float, float]:
    """Run `maille-identity ARGS` in a child process; its first output line, seconds, peak memory (MB)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen([str(BIN / "maille-identity"), *args], env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak memory
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if child.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({child.returncode}):\n{text}")
    return text.strip().splitlines()[0], time.perf_counter() - started, usage.ru_maxrss / 1024


async def events_in_jetstream(url: str) -> int:
    """How many events identity's stream holds (every event of the import must have reached it)."""
    bus = Bus(url, name="bench-directory")
    await bus.connect(timeout=10)
    try:
        return (await bus.js.stream_info(STREAM.name)).state.messages
    finally:
        await bus.close()


def main() -> None:
    # The generator's target: siblings share parents, so 106,500 asked gives 99,977 persons (100,000 of the goal).
    args = arguments(__doc__, persons=106_500, schools=60, mongodb=None, nats=None)
    workdir = Path(tempfile.mkdtemp(prefix="maille-bench-directory-"))
    servers = []
    if args.nats is None:
        nats = NatsServer(port=free_port(), store_dir=workdir / "nats", log_dir=workdir / "log")
        nats.start()
        servers.append(nats)
        args.nats = nats.url
    if args.mongodb is None:
        store = DocstoreServer(port=free_port(), data_dir=workdir / "docstore", log_dir=workdir / "log")
        store.start()
        servers.append(store)
        args.mongodb = store.url
    try:
        counts = generate(workdir / "feed", persons=args.persons, schools=args.schools)
        persons = counts["pupils"] + counts["parents"] + counts["staff"]
        env = {
            **os.environ,
            "MAILLE_IDENTITY_NATS_URL": args.nats,
            "MAILLE_IDENTITY_MONGODB_URL": args.mongodb,
            "MAILLE_IDENTITY_DATABASE": f"bench_directory_{uuid.uuid4().hex[:8]}",
            "CI": "1",
        }
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        print(f"feed: {json.dumps(counts)} ({persons:,} persons)")
        for label, goal in (
            ("full import", "goal >= 3,000 persons/s, peak <= 400 MB"),
            ("re-import", "goal >= 10,000 persons/s, 0 events"),
        ):
            line, _, peak = run_command(
                ["import-aaf", str(workdir / "feed"), "--report", str(workdir / "report.txt")], env
            )
            seconds = float(re.search(r"in ([\d.]+)s", line).group(1))
            events = re.search(r"([\d,]+) events", line).group(1)
            held = asyncio.run(events_in_jetstream(args.nats))
            print(
                f"{label}: {persons / seconds:,.0f} persons/s ({seconds:.1f}s), peak memory {peak:.0f} MB, {events} "
                "events "
                f"(JetStream holds {held:,} in all) ({goal})"
            )
        line, seconds, peak = run_command(["export-gar", str(workdir / "gar")], env)
        print(f"GAR export: {seconds:.1f}s, peak memory {peak:.0f} MB; {line} (goal <= 60 s, <= 300 MB, XSD-valid)")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # the data (hundreds of MB) is not kept


if __name__ == "__main__":
    main()
