"""What several benchmarks share: the bench's own signing key with its JWKS endpoint, NATS and the docstore started,
an open-loop load, and percentiles."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey
from pymongo import MongoClient

from maille_devstack.paths import bin_of
from maille_devstack.processes import DocstoreServer, NatsServer, ServiceProcess, free_port

ISSUER = "http://bench.invalid/realms/maille"


def serve_jwks(jwks: dict) -> int:
    """Serve `jwks` over HTTP on a free port (in a thread); the port."""
    body = json.dumps(jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def signing_key() -> tuple[RSAKey, str]:
    """A key the bench signs its tokens with, and the URL of its JWKS (served on a free port)."""
    key = RSAKey.generate_key(2048, parameters={"kid": "bench-1", "use": "sig", "alg": "RS256"})
    return key, f"http://127.0.0.1:{serve_jwks({'keys': [key.as_dict(private=False)]})}/jwks.json"


def bearer(key: RSAKey, audiences: list[str], subject: str, *roles: str, person: bool = True) -> str:
    """A bearer token as Keycloak would sign it (here with the bench's key), valid two hours, with `roles` of the
    realm: a signed-in person's (`ent_id`, through the portal), or with `person=False` a client's own (a vendor's
    or an operator's tool, signing in with its credentials)."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": audiences,
        "sub": subject,
        "azp": "bench-portal" if person else subject,
        "exp": now + 7200,
        "iat": now,
        "realm_access": {"roles": list(roles)},
        **({"ent_id": subject} if person else {}),
    }
    return "Bearer " + jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


@dataclass
class Platform:
    """What a benchmark runs on: NATS with JetStream and the docstore under `work`, the bench's key that signs the
    tokens its services trust (served as `jwks`); whatever it starts through `started` is stopped, the last first,
    when `platform()` is left."""

    work: Path
    key: RSAKey
    jwks: str
    nats: NatsServer
    store: DocstoreServer
    parts: list[Any]

    @property
    def logs(self) -> Path:
        return self.work / "log"

    def started(self, part: P) -> P:
        """`part` started, and stopped with the rest."""
        part.start()
        self.parts.append(part)
        return part

    def service(self, name: str, **more: str) -> ServiceProcess:
        """Service `name` on NATS and the docstore, trusting the bench's tokens, quiet in its log; `more` its other
        settings (`gar_url="…"` is `MAILLE_<NAME>_GAR_URL`)."""
        env = {"NATS_URL": self.nats.url, "MONGODB_URL": self.store.url, "LOG_LEVEL": "WARNING"}
        if name != "identity":
            env |= {"AUTH_ISSUER": ISSUER, "AUTH_JWKS_URL": self.jwks}
        env |= {key.upper(): value for key, value in more.items()}
        prefix = f"MAILLE_{name.upper()}_"
        return self.started(
            ServiceProcess(name, port=free_port(), log_dir=self.logs, env={prefix + k: v for k, v in env.items()})
        )

    def school(self, persons: int, tenant: str) -> tuple[ServiceProcess, list[dict[str, Any]]]:
        """Identity started, and a synthetic AAF feed of one school of `persons` imported by it (`import-aaf`, as an
        operator runs it): identity, and the persons as it stores them."""
        identity = self.service("identity", tenant=tenant)
        cli, feed = str(bin_of("maille-identity")), self.work / "feed"
        generate = [cli, "generate-aaf", str(feed), "--persons", str(persons), "--schools", "1"]
        subprocess.run(generate, check=True, capture_output=True)
        settings = {"NATS_URL": self.nats.url, "MONGODB_URL": self.store.url, "TENANT": tenant, "LOG_LEVEL": "WARNING"}
        env = os.environ | {f"MAILLE_IDENTITY_{k}": v for k, v in settings.items()}
        imported = [cli, "import-aaf", str(feed), "--report", str(self.work / "report.txt")]
        done = subprocess.run(imported, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stdout + done.stderr)
        with MongoClient(self.store.url) as client:
            return identity, list(client["maille_identity"]["persons"].find({}))

    def gateway(
        self, service: str, url: str, *, more_routes: dict[str, str] | None = None, **more: str
    ) -> ServiceProcess:
        """The gateway in front of one service (and `more_routes`), its rate limits lifted (the bench measures the
        service, not them)."""
        limits = {"rate_client": "1000000", "rate_person": "1000000", "rate_new_tokens": "1000000"}
        return self.service("gateway", routes=json.dumps({service: url, **(more_routes or {})}), **limits, **more)


P = TypeVar("P", bound="Startable")


class Startable(Protocol):
    def start(self) -> object: ...

    def stop(self) -> object: ...


@contextmanager
def platform(name: str) -> Iterator[Platform]:
    """NATS and the docstore started on free ports in a new folder for benchmark `name`, with the bench's key."""
    work = Path(tempfile.mkdtemp(prefix=f"maille-bench-{name}-"))
    key, jwks = signing_key()
    parts: list[Any] = []
    try:
        nats = NatsServer(port=free_port(), store_dir=work / "nats", log_dir=work / "log")
        nats.start()
        parts.append(nats)
        store = DocstoreServer(port=free_port(), data_dir=work / "docstore", log_dir=work / "log")
        store.start()
        parts.append(store)
        yield Platform(work, key, jwks, nats, store, parts)
    finally:
        for part in reversed(parts):
            part.stop()
        for made in work.iterdir():  # the data (hundreds of MB at times) is not kept, the logs are
            if made.is_dir() and made.name != "log":
                shutil.rmtree(made, ignore_errors=True)
            elif made.is_file():
                made.unlink()


def arguments(doc: str | None, **options: Any) -> argparse.Namespace:
    """The benchmark's command line, described by its `doc`: an option `--an-option` for each keyword `an_option`,
    given its default (the option takes values of the default's type; `False`, a flag) or (default, help)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, option in options.items():
        default, explained = option if isinstance(option, tuple) else (option, None)
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=explained)
        else:
            parser.add_argument(flag, type=str if default is None else type(default), default=default, help=explained)
    return parser.parse_args()


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (q in 0 – 100, to a tenth)."""
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] if len(values) > 10 else max(values, default=0.0)


async def paced(
    clients: list[httpx.AsyncClient], schedule: list[tuple[float, object]], call
) -> tuple[list[float], int, float]:
    """Each request when due (open loop), on whichever connection is free; latencies from when it was due; failures;
    and the rate at which requests completed while they were being offered, once the load had run for two seconds
    (completions between then and the last one's due time, over that time): what the platform sustains — in a steady
    state as many requests are in flight at the window's end as at its start. A request never waits behind a slow
    one that happened to be given the same connection."""
    latencies: list[float] = []
    done: list[float] = []
    failed = 0
    free: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
    for client in clients:
        free.put_nowait(client)

    async def one(due: float, item: object) -> None:
        nonlocal failed
        client = await free.get()
        try:
            ok = await call(client, item)
        finally:
            free.put_nowait(client)
        done.append(time.perf_counter())
        latencies.append((done[-1] - due) * 1000)
        failed += not ok

    tasks = []
    for due, item in schedule:
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        tasks.append(asyncio.create_task(one(due, item)))
    await asyncio.gather(*tasks)
    first, last = schedule[0][0] + 2.0, schedule[-1][0]
    return (
        latencies,
        failed,
        sum(1 for t in done if first < t <= last) / (last - first) if last > first else float(len(done)),
    )


def machine() -> str:
    """The line each benchmark ends its figures with: which machine, how many cores."""
    return f"machine: {host.node()} {host.machine()}, {len(os.sched_getaffinity(0))} cores"


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) process `pid` has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The child processes of `pid` (a supervisor's workers)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def scrape_cost(pids: list[int], url: str, scrapes: int = 200) -> dict[str, float]:
    """What a Prometheus scrape of `url` (`/metrics` of one of the processes `pids`, otherwise idle) costs: CPU
    milliseconds per scrape (over `scrapes` back to back), the series it gives and its size."""
    with httpx.Client(timeout=10) as client:
        text = client.get(url).raise_for_status().text
        before, started = sum(map(cpu_seconds, pids)), time.perf_counter()
        for _ in range(scrapes):
            client.get(url).raise_for_status()
        used, took = sum(map(cpu_seconds, pids)) - before, time.perf_counter() - started
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    return {
        "cpu_ms": 1000 * used / scrapes,
        "wall_ms": 1000 * took / scrapes,
        "series": series,
        "kib": len(text) / 1024,
    }
