"""The gateway against nginx: authenticated requests/s through each to one trivial upstream, the latency
the gateway adds at half its top rate, and JWT validations/s on one core.

Everything runs on this machine in one run: nginx (from Debian's package, fetched into .cache/debs by
`make bench-tools`) serves the trivial upstream (`return 200` of a small JSON document, and the bench
issuer's JWKS) and does a plain `proxy_pass` of the same route with as many worker processes as the
gateway has; wrk (same source) is the load, in its own process. The gateway validates every request's
bearer token in full (RS256, issuer, audience, expiry) against that JWKS, applies its access rules and
rate limit, logs one JSON line per request (to a file) and records its metrics, as in production.

With its metrics on (the default), a scraper of the bench's own reads every worker's /metrics each second during the
rounds, and what one scrape costs a worker is measured after them; `--no-metrics` runs the same with /metrics off.

    .venv/bin/python bench/gateway.py [--workers 2] [--seconds 10] [--connections 64] [--rounds 3] [--no-metrics]
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from common import arguments, children, cpu_seconds, scrape_cost
from maille_devstack.processes import NatsServer, Process, free_port
from maille_kit.auth import TokenVerifier

ROOT = Path(__file__).resolve().parent.parent
DEBS = ROOT / ".cache" / "debs" / "root"
NGINX = DEBS / "usr" / "sbin" / "nginx"
WRK = DEBS / "usr" / "bin" / "wrk"
ISSUER = "http://bench.invalid/realms/maille"


def tools_env() -> dict[str, str]:
    return {**os.environ, "LD_LIBRARY_PATH": str(DEBS / "usr" / "lib" / "x86_64-linux-gnu")}


def make_token(key: RSAKey, *, subject: str, lifetime: int = 3600) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": ["maille"],
        "sub": subject,
        "azp": "bench-client",
        "exp": now + lifetime,
        "iat": now,
        "realm_access": {"roles": ["vendor"]},
        "scope": "profile",
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def nginx_conf(work: Path, upstream: int, proxy: int, workers: int) -> Path:
    conf = work / "nginx.conf"
    temp = work / "tmp"
    temp.mkdir(exist_ok=True)
    conf.write_text(f"""
worker_processes {workers};
error_log {work}/nginx-error.log;
pid {work}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {temp}; proxy_temp_path {temp}; fastcgi_temp_path {temp}; uwsgi_temp_path {temp};
  scgi_temp_path {temp};
  upstream trivial {{ server 127.0.0.1:{upstream}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{upstream};
    location = /jwks.json {{ root {work}; default_type application/json; }}
    location / {{ default_type application/json; return 200 '{{"ok":true}}'; }}
  }}
  server {{
    listen 127.0.0.1:{proxy};
    location / {{ proxy_pass http://trivial; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
""")
    return conf


def wrk(url: str, *, seconds: int, connections: int, token: str, rate: float | None = None) -> dict[str, float]:
    """Run wrk; requests/s and latency percentiles (ms). With `rate`, each connection paces itself."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    lines = [f'wrk.headers["Authorization"] = "Bearer {token}"']
    if rate:
        # wrk has no fixed-rate mode: each connection waits between its requests so that all together
        # send about `rate` requests a second (an open-loop approximation; wrk2 is not packaged).
        lines.append(f"function delay() return {max(0.0, connections / rate * 1000):.3f} end")
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        [str(WRK), "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        env=tools_env(),
        check=True,
    ).stdout
    script.unlink()
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "90", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)\b", out).groups()
        result[f"p{pct}"] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["errors"] = float(errors.group(1)) if errors else 0.0
    return result


def validations_per_second(key: RSAKey, jwks: dict, *, people: int, seconds: float = 3.0) -> tuple[float, float]:
    """Bearer validations/s on one core: (warm cache, every token new)."""

    async def run() -> tuple[float, float]:
        verifier = TokenVerifier(issuer=ISSUER, audience="maille", jwks_url="http://unused.invalid/")
        from joserfc.jwk import KeySet

        verifier._keys = KeySet.import_key_set(jwks)  # warm JWKS: the fetch is not what is measured
        verifier._fetched = time.monotonic()
        tokens = [make_token(key, subject=f"person-{i}") for i in range(people)]
        for token in tokens:  # each person's first request
            await verifier.verify(token)
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for token in tokens:
                await verifier.verify(token)
            done += len(tokens)
        warm = done / (time.perf_counter() - started)
        fresh = [make_token(key, subject=f"new-{i}") for i in range(2000)]
        started = time.perf_counter()
        for token in fresh:
            await verifier.verify(token)
        cold = len(fresh) / (time.perf_counter() - started)
        return warm, cold

    return asyncio.run(run())


def scrape_every_second(urls: list[str], stop: threading.Event) -> None:
    with httpx.Client(timeout=5) as client:
        while not stop.wait(1.0):
            for url in urls:
                client.get(url).raise_for_status()


def scrape_figures(workers: list[int], metrics_port: int, busy: float) -> None:
    """What a Prometheus scrape costs each worker, against what the bench's load made it use (its share of a core)."""
    # Each worker serves its own on the metrics port plus its number; the others idle meanwhile.
    costs = [scrape_cost(workers, f"http://127.0.0.1:{metrics_port + n}/metrics") for n in range(len(workers))]
    cpu_ms = max(cost["cpu_ms"] for cost in costs)
    for interval in (15, 30):
        share = cpu_ms / (interval * 1000) / busy * 100
        print(
            f"a scrape of a worker's /metrics: {cpu_ms:.2f} ms of its CPU ({costs[0]['series']:.0f} series, "
            f"{costs[0]['kib']:.0f} KiB); every {interval} s = {share:.3f} % of the worker's CPU at the bench's load "
            f"({busy * 100:.0f} % of a core) (goal <= 1 %)"
        )


def main() -> None:
    args = arguments(
        __doc__,
        workers=(2, "gateway processes, and nginx workers"),
        seconds=10,
        connections=64,
        rounds=(3, "alternating rounds of nginx and the gateway (medians)"),
        no_metrics=(False, "the gateway's /metrics off (to compare: the figures with them on)"),
    )
    if not NGINX.exists() or not WRK.exists():
        sys.exit("nginx and wrk are missing: run `make bench-tools` (Debian packages unpacked into .cache/debs)")
    work = Path(tempfile.mkdtemp(prefix="maille-bench-gateway-"))
    work.chmod(0o755)  # nginx workers run as nobody when started by root: they read the JWKS here
    key = RSAKey.generate_key(2048, parameters={"kid": "bench-1", "use": "sig", "alg": "RS256"})
    jwks = {"keys": [key.as_dict(private=False)]}
    (work / "jwks.json").write_text(json.dumps(jwks))
    token = make_token(key, subject="bench-vendor")
    upstream_port, nginx_port, gateway_port, metrics_port = free_port(), free_port(), free_port(), free_port()
    metrics_port = 0 if args.no_metrics else metrics_port  # each worker: this port plus its number
    conf = nginx_conf(work, upstream_port, nginx_port, args.workers)
    nginx = Process(
        "nginx",
        [str(NGINX), "-c", str(conf), "-p", str(work), "-g", "daemon off;"],
        work / "nginx.log",
        env=tools_env(),
    )
    nats = NatsServer(port=free_port(), store_dir=work / "nats", log_dir=work)
    gateway = Process(
        "gateway",
        [str(Path(sys.executable).parent / "maille-gateway")],
        work / "gateway.log",
        env={
            "MAILLE_GATEWAY_HTTP_PORT": str(gateway_port),
            "MAILLE_GATEWAY_WORKERS": str(args.workers),
            "MAILLE_GATEWAY_NATS_URL": "",
            "MAILLE_GATEWAY_ROUTES": json.dumps({"bench": f"http://127.0.0.1:{upstream_port}"}),
            "MAILLE_GATEWAY_AUTH_ISSUER": ISSUER,
            "MAILLE_GATEWAY_AUTH_JWKS_URL": f"http://127.0.0.1:{upstream_port}/jwks.json",
            "MAILLE_GATEWAY_RATE_CLIENT": "1000000",
            "MAILLE_GATEWAY_METRICS_PORT": str(metrics_port),
        },
    )
    try:
        nginx.start()
        nats.start()
        gateway.env["MAILLE_GATEWAY_NATS_URL"] = nats.url
        gateway.start()
        gateway.wait_ready(
            lambda: httpx.get(f"http://127.0.0.1:{gateway_port}/readyz", timeout=1).status_code == 200, 30
        )
        route = "/api/bench/v1/ping"
        check = httpx.get(f"http://127.0.0.1:{gateway_port}{route}", headers={"authorization": f"Bearer {token}"})
        assert check.status_code == 200 and check.json() == {"ok": True}, check.text
        refused = httpx.get(f"http://127.0.0.1:{gateway_port}{route}")
        assert refused.status_code == 401, refused.text
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"gateway and nginx with {args.workers} worker processes each; wrk -t2 -c{args.connections} "
            f"-d{args.seconds}s"
        )
        wrk(f"http://127.0.0.1:{gateway_port}{route}", seconds=2, connections=args.connections, token=token)  # warm-up
        # Rounds alternate nginx and the gateway, so that both see the same moods of a shared machine.
        directs, throughs = [], []
        workers = children(gateway.popen.pid)
        busy = 0.0
        # With metrics on, a Prometheus of the bench's own scrapes every worker each second throughout (15 times
        # as often as a real one would).
        scraping = threading.Event()
        if metrics_port:
            threading.Thread(
                target=scrape_every_second,
                args=([f"http://127.0.0.1:{metrics_port + n}/metrics" for n in range(args.workers)], scraping),
                daemon=True,
            ).start()
        for _ in range(args.rounds):
            directs.append(
                wrk(
                    f"http://127.0.0.1:{nginx_port}{route}",
                    seconds=args.seconds,
                    connections=args.connections,
                    token=token,
                )
            )
            before = sum(cpu_seconds(worker) for worker in workers)
            throughs.append(
                wrk(
                    f"http://127.0.0.1:{gateway_port}{route}",
                    seconds=args.seconds,
                    connections=args.connections,
                    token=token,
                )
            )
            busy += (sum(cpu_seconds(worker) for worker in workers) - before) / (args.seconds * len(workers))
        direct = sorted(directs, key=lambda r: r["rps"])[len(directs) // 2]
        through = sorted(throughs, key=lambda r: r["rps"])[len(throughs) // 2]
        share = through["rps"] / direct["rps"] * 100
        rounds = ", ".join(f"{t['rps']:,.0f}/{d['rps']:,.0f}" for t, d in zip(throughs, directs))
        print(f"nginx plain proxy_pass: {direct['rps']:,.0f} requests/s (median of {args.rounds} rounds)")
        print(
            f"gateway, authenticated: {through['rps']:,.0f} requests/s = {share:.0f}% of nginx "
            f"({sum(t['errors'] for t in throughs):.0f} non-2xx; rounds gateway/nginx: {rounds}) (goal >= 30%)"
        )
        half = through["rps"] / 2
        base = wrk(
            f"http://127.0.0.1:{upstream_port}{route}",
            seconds=args.seconds,
            connections=args.connections,
            token=token,
            rate=half,
        )
        paced = wrk(
            f"http://127.0.0.1:{gateway_port}{route}",
            seconds=args.seconds,
            connections=args.connections,
            token=token,
            rate=half,
        )
        print(
            f"at half that load ({paced['rps']:,.0f} requests/s): p99 {paced['p99']:.2f} ms through the gateway, "
            f"{base['p99']:.2f} ms straight to the upstream: added p99 {paced['p99'] - base['p99']:.2f} ms "
            f"(p50 {paced['p50']:.2f} vs {base['p50']:.2f} ms) (goal <= 5 ms)"
        )
        scraping.set()
        if metrics_port:
            scrape_figures(workers, metrics_port, busy / args.rounds)
    finally:
        gateway.stop()
        nats.stop()
        nginx.stop()
    warm, cold = validations_per_second(key, jwks, people=5000)
    print(
        f"JWT validations on one core, warm JWKS: {warm:,.0f}/s with 5,000 people's tokens each verified once then "
        f"remembered until expiry; {cold:,.0f}/s when every token is new (goal >= 20,000/s)"
    )


if __name__ == "__main__":
    main()
