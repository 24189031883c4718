"""What several benchmarks share: the bench's own signing key with its JWKS endpoint, NATS and the docstore started,
an open-loop load, and percentiles."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from maille_devstack.processes import DocstoreServer, NatsServer, ServiceProcess, free_port


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


def person_token(key: RSAKey, issuer: str, audiences: list[str], person: str, *roles: str) -> str:
    """A bearer token of a signed-in person (`ent_id`), as the gateway would pass it on: signed by the bench's key,
    valid two hours, with `roles` of the realm."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audiences,
        "sub": person,
        "azp": "bench-portal",
        "exp": now + 7200,
        "iat": now,
        "ent_id": person,
        "realm_access": {"roles": list(roles)},
    }
    return "Bearer " + jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def start_infrastructure(work: Path, parts: list) -> tuple[NatsServer, DocstoreServer]:
    """NATS with JetStream and the docstore on free ports under `work`, each added to `parts` once started."""
    nats = NatsServer(port=free_port(), store_dir=work / "nats", log_dir=work / "log")
    nats.start()
    parts.append(nats)
    store = DocstoreServer(port=free_port(), data_dir=work / "docstore", log_dir=work / "log")
    store.start()
    parts.append(store)
    return nats, store


def start_service(
    name: str, *, nats: NatsServer, store: DocstoreServer, issuer: str, jwks: str, logs: Path, parts: list, **more: str
) -> ServiceProcess:
    """Service `name` on NATS and the docstore, trusting the bench's tokens, quiet in its log; `more` its other
    settings (`gar_url="…"` is `MAILLE_<NAME>_GAR_URL`). Added to `parts` once started."""
    prefix = f"MAILLE_{name.upper()}_"
    env = {"NATS_URL": nats.url, "MONGODB_URL": store.url, "AUTH_ISSUER": issuer, "AUTH_JWKS_URL": jwks}
    env |= {"LOG_LEVEL": "WARNING"} | {key.upper(): value for key, value in more.items()}
    service = ServiceProcess(name, port=free_port(), log_dir=logs, env={prefix + k: v for k, v in env.items()})
    service.start()
    parts.append(service)
    return service


def start_gateway(
    service: str,
    url: str,
    *,
    nats: NatsServer,
    issuer: str,
    jwks: str,
    logs: Path,
    parts: list,
    more_routes: dict[str, str] | None = None,
) -> ServiceProcess:
    """The gateway in front of one service (and `more_routes`), its rate limits lifted (the bench measures the
    service, not them)."""
    gateway = ServiceProcess(
        "gateway",
        port=free_port(),
        log_dir=logs,
        env={
            "MAILLE_GATEWAY_NATS_URL": nats.url,
            "MAILLE_GATEWAY_ROUTES": json.dumps({service: url, **(more_routes or {})}),
            "MAILLE_GATEWAY_AUTH_ISSUER": issuer,
            "MAILLE_GATEWAY_AUTH_JWKS_URL": jwks,
            "MAILLE_GATEWAY_RATE_CLIENT": "1000000",
            "MAILLE_GATEWAY_RATE_PERSON": "1000000",
            "MAILLE_GATEWAY_RATE_NEW_TOKENS": "1000000",
            "MAILLE_GATEWAY_LOG_LEVEL": "WARNING",
        },
    )
    gateway.start()
    parts.append(gateway)
    return gateway


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
    return f"machine: {platform.node()} {platform.machine()}, {len(os.sched_getaffinity(0))} cores"


def stop_all(parts: list) -> None:
    """Stop what a benchmark started, the last started first."""
    for part in reversed(parts):
        part.stop()


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
