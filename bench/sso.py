"""The full brokered sign-in, as at 8 a.m.: gateway → Keycloak → EduConnect peer → Keycloak → gateway
(identity settling the account) → the person's first API call; sign-ins per second, and where the CPU
goes: Keycloak, Maille's own processes (gateway, identity, its NATS and docstore), the peer.

Starts its own NATS, docstore, Keycloak (start-dev), EduConnect peer, identity and gateway, imports a
synthetic directory, then has `--browsers` concurrent browsers sign pupils in, over and over, for
`--seconds` (each pupil's very first sign-in, which creates and links their account, happens during a
warm-up that is not measured). CPU is read from /proc for each process tree before and after.

    .venv/bin/python bench/sso.py [--browsers 6] [--seconds 60] [--pupils 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from pymongo import MongoClient

from maille_devstack.browser import Browser
from maille_devstack.paths import bin_of
from maille_devstack.processes import DocstoreServer, KeycloakServer, NatsServer, SamlPeer, ServiceProcess, free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pct  # noqa: E402

PASSWORD = "demo"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its descendants still alive."""
    total = 0.0
    children = [pid]
    seen = set()
    while children:
        current = children.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                kids = (task / "children").read_text().split()
                children.extend(int(k) for k in kids)
        except (OSError, IndexError):
            continue
    return total


def sign_in(gateway: str, username: str, first_call: bool) -> bool:
    """One brokered sign-in, ending when the gateway has the session and sends the browser on (to its
    /healthz: the sign-in's cost alone), or, with `first_call`, on to the person's /me."""
    browser = Browser()
    next_path = "/api/identity/v1/me" if first_call else "/healthz"
    page = browser.go(f"{gateway}/login", params={"idp": "educonnect", "next": next_path})
    landed = browser.sign_in_upstream(page, username, PASSWORD)
    browser.client.close()
    signed_in = (
        landed.status_code == 200 and landed.url.path == next_path and "maille_session" in browser.site_cookies(gateway)
    )
    return signed_in and (not first_call or landed.json().get("kind") == "pupil")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browsers", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--pupils", type=int, default=200)
    parser.add_argument(
        "--first-call", action="store_true", help="each sign-in followed by the person's GET /api/identity/v1/me"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="maille-bench-sso-"))
    database = f"bench_sso_{uuid.uuid4().hex[:6]}"
    nats = NatsServer(port=free_port(), store_dir=work / "nats", log_dir=work / "log")
    docstore = DocstoreServer(port=free_port(), data_dir=work / "docstore", log_dir=work / "log")
    keycloak = KeycloakServer(port=free_port(), log_dir=work / "log")
    parts: list = []
    try:
        keycloak.launch()
        parts.append(keycloak)
        for part in (nats, docstore):
            part.start()
            parts.append(part)
        env = {
            "MAILLE_IDENTITY_NATS_URL": nats.url,
            "MAILLE_IDENTITY_MONGODB_URL": docstore.url,
            "MAILLE_IDENTITY_DATABASE": database,
            "MAILLE_IDENTITY_KEYCLOAK_URL": keycloak.url,
            "MAILLE_IDENTITY_AUTH_ISSUER": f"{keycloak.url}/realms/maille",
            "CI": "1",
        }
        identity_bin = str(bin_of("maille-identity"))
        subprocess.run(
            [
                identity_bin,
                "generate-aaf",
                str(work / "feed"),
                "--persons",
                str(max(600, args.pupils * 3)),
                "--schools",
                "2",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [identity_bin, "import-aaf", str(work / "feed"), "--report", str(work / "report.txt")],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        with MongoClient(docstore.url) as client:
            pupils = [p["keys"][0] for p in client[database]["persons"].find({"kind": "pupil"}).limit(args.pupils)]
        peer = SamlPeer.started(
            "educonnect",
            keycloak_url=keycloak.url,
            mongodb_url=docstore.url,
            database=database,
            work=work,
            parts=parts,
            password=PASSWORD,
        )
        gateway_port = free_port()
        public = f"http://localhost:{gateway_port}"
        env |= {
            "MAILLE_IDENTITY_GATEWAY_URL": public,
            "MAILLE_IDENTITY_EDUCONNECT_METADATA_URL": peer.metadata_url,
            "MAILLE_IDENTITY_KEYCLOAK_SYNC_ON_START": "false",
        }
        keycloak.wait(300)
        subprocess.run([identity_bin, "sync-keycloak"], env={**os.environ, **env}, check=True, capture_output=True)
        identity = ServiceProcess("identity", port=free_port(), env=env, log_dir=work / "log")
        identity.start()
        parts.append(identity)
        gateway = ServiceProcess(
            "gateway",
            port=gateway_port,
            log_dir=work / "log",
            env={
                "MAILLE_GATEWAY_NATS_URL": nats.url,
                "MAILLE_GATEWAY_AUTH_ISSUER": f"{keycloak.url}/realms/maille",
                "MAILLE_GATEWAY_ROUTES": json.dumps({"identity": identity.url}),
                "MAILLE_GATEWAY_PUBLIC_URL": public,
                "MAILLE_GATEWAY_RATE_ANONYMOUS": "100000",
            },
        )
        gateway.start()
        parts.append(gateway)

        latencies: list[float] = []  # each measured sign-in, first redirect to landing

        def run(usernames: list[str], until: float | None) -> tuple[int, int]:
            done, failed, lock = [0], [0], threading.Lock()
            queue = list(usernames)

            def worker() -> None:
                while True:
                    with lock:
                        if until is None:
                            if not queue:
                                return
                            name = queue.pop()
                        else:
                            if time.monotonic() >= until:
                                return
                            name = usernames[(done[0] + failed[0]) % len(usernames)]
                    began = time.monotonic()
                    ok = sign_in(public, name, args.first_call)
                    with lock:
                        (done if ok else failed)[0] += 1
                        if ok and until is not None:
                            latencies.append(time.monotonic() - began)

            threads = [threading.Thread(target=worker) for _ in range(args.browsers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return done[0], failed[0]

        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"{args.browsers} browsers, {len(pupils)} pupils, Keycloak start-dev (dev-mem)"
            + ("; each sign-in followed by GET /api/identity/v1/me" if args.first_call else "")
        )
        warm_ok, warm_failed = run(pupils, None)  # each pupil's first sign-in: account created and linked
        print(f"warm-up: {warm_ok} first sign-ins (accounts created and linked), {warm_failed} failed")
        processes = {
            "keycloak": keycloak.process.pid,
            "gateway": gateway.process.pid,
            "identity": identity.process.pid,
            "nats": nats.process.pid,
            "docstore": docstore.process.pid,
            "peer": peer.process.pid,
        }
        # What each process spends doing nothing (timers, heartbeats), measured first: it does not grow
        # with sign-ins, and is shown apart.
        idle_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        time.sleep(10)
        idle = {name: (cpu_seconds(pid) - idle_before[name]) / 10 for name, pid in processes.items()}
        print("CPU at rest (ms per second): " + ", ".join(f"{name} {v * 1000:.1f}" for name, v in idle.items()))
        before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        started = time.monotonic()
        ok, failed = run(pupils, started + args.seconds)
        elapsed = time.monotonic() - started
        used = {name: cpu_seconds(pid) - before[name] for name, pid in processes.items()}
        mine = ("gateway", "identity", "nats", "docstore")
        maille = sum(used[name] for name in mine)
        busy = {name: max(0.0, used[name] - idle[name] * elapsed) for name in used}
        print(
            f"sign-ins: {ok / elapsed:.1f}/s ({ok} in {elapsed:.0f}s, {failed} failed); each, {args.browsers} at once: "
            f"p50 {pct(latencies, 50) * 1000:.0f} ms, p99 {pct(latencies, 99) * 1000:.0f} ms"
        )
        per = {name: seconds / max(ok, 1) * 1000 for name, seconds in used.items()}
        print("CPU per sign-in (ms), all counted: " + ", ".join(f"{name} {ms:.1f}" for name, ms in per.items()))
        print(
            "CPU per sign-in (ms), less each process's CPU at rest: "
            + ", ".join(f"{name} {seconds / max(ok, 1) * 1000:.1f}" for name, seconds in busy.items())
        )
        print(
            f"Maille's own processes (gateway, identity, NATS, docstore) on top of Keycloak's CPU per sign-in: "
            f"{maille / max(used['keycloak'], 1e-9) * 100:.1f}% all counted, "
            f"{sum(busy[n] for n in mine) / max(busy['keycloak'], 1e-9) * 100:.1f}% less the CPU at rest (goal <= "
            "15%); "
            f"the EduConnect peer: {used['peer'] / max(used['keycloak'], 1e-9) * 100:.1f}%"
        )
        print(
            f"Keycloak alone: {used['keycloak'] / max(ok, 1) * 1000:.1f} ms of CPU per brokered sign-in = "
            f"{ok / max(used['keycloak'], 1e-9):.1f} sign-ins per CPU-second"
        )
    finally:
        for part in reversed(parts):
            part.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
