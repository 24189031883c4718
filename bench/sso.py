"""The full brokered sign-in, as at 8 a.m.: gateway → Keycloak → EduConnect peer → Keycloak → gateway
(identity settling the account) → the person's first API call; sign-ins per second, and where the CPU
goes: Keycloak (with its database), Maille's own processes (gateway, identity, its NATS and docstore), the
peer. Then the token refresh and the sign-out, each on its own.

Starts its own NATS, docstore, Keycloak, EduConnect peer, identity and gateway, imports a synthetic
directory, then has `--browsers` concurrent browsers sign pupils in, over and over, for `--seconds` (each
pupil's very first sign-in, which creates and links their account, happens during a warm-up that is not
measured). CPU is read from /proc for each process tree before and after.

Keycloak runs as `--db` says: `mem`, start-dev on its in-memory database; `postgres`, `start` as production
runs it, on Debian's PostgreSQL started here in a directory of its own (persistent sessions, the JDBC pool),
PostgreSQL's CPU counted with Keycloak's. `--profile FILE` records a Java Flight Recording of Keycloak during
the measured sign-ins and prints where its CPU went.

    .venv/bin/python bench/sso.py [--db mem|postgres] [--browsers 6] [--seconds 60] [--pupils 200]
        [--refresh-seconds 30] [--signouts 120] [--profile keycloak.jfr]
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from pymongo import MongoClient

from maille_devstack.browser import Browser
from maille_devstack.keycloak_admin import admin_client
from maille_devstack.paths import bin_of
from maille_devstack.processes import (
    DocstoreServer,
    KeycloakServer,
    NatsServer,
    PostgresServer,
    SamlPeer,
    ServiceProcess,
    free_port,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pct  # noqa: E402

PASSWORD = "demo"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its descendants still alive, with that of the children they
    have reaped (PostgreSQL's backends that ended)."""
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
            total += sum(int(f) for f in fields[11:15]) / TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                kids = (task / "children").read_text().split()
                children.extend(int(k) for k in kids)
        except (OSError, IndexError):
            continue
    return total


FAILURES: list[str] = []  # what the first failed sign-ins ended on


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
    if not signed_in and len(FAILURES) < 5:
        FAILURES.append(f"{username}: {landed.status_code} at {landed.url.path}: {landed.text[:300]!r}")
    return signed_in and (not first_call or landed.json().get("kind") == "pupil")


GATEWAY_CLIENT = ("maille-gateway", "maille-gateway-dev-secret")  # identity's defaults: what sync-keycloak wrote


def tokens_of(keycloak_url: str, public: str, username: str) -> dict:
    """The tokens the gateway would hold for a person: a brokered sign-in through Keycloak for the gateway's
    client, the code taken from the redirect to the gateway's callback (which refuses it: not its sign-in) and
    exchanged here as the gateway does."""
    browser = Browser()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = f"{public}/auth/callback"
    page = browser.go(
        f"{keycloak_url}/realms/maille/protocol/openid-connect/auth",
        params={
            "client_id": GATEWAY_CLIENT[0],
            "redirect_uri": redirect,
            "response_type": "code",
            "scope": "openid profile email",
            "state": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "kc_idp_hint": "educonnect",
        },
    )
    landed = browser.sign_in_upstream(page, username, PASSWORD)
    browser.client.close()
    code = httpx.URL(str(landed.url)).params.get("code")
    assert code, f"no code for {username}: {landed.status_code} {str(landed.url)[:200]}"
    answer = httpx.post(
        f"{keycloak_url}/realms/maille/protocol/openid-connect/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "code_verifier": verifier},
        auth=GATEWAY_CLIENT,
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()


def in_threads(target, count: int, pids: dict[str, int]) -> tuple[float, dict[str, float]]:
    """Run `target(i)` in `count` threads until they all end; (seconds taken, CPU seconds each process spent)."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    began = time.monotonic()
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - began, {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}


def refresh(client: httpx.Client, keycloak_url: str, refresh_token: str) -> dict | None:
    """One refresh, as the gateway makes it (client_secret_basic); the new tokens, None when refused."""
    answer = client.post(
        f"{keycloak_url}/realms/maille/protocol/openid-connect/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=GATEWAY_CLIENT,
    )
    return answer.json() if answer.status_code == 200 else None


def signed_in_browser(gateway: str, username: str) -> Browser | None:
    """A browser signed in to the gateway (kept for a sign-out later)."""
    browser = Browser()
    page = browser.go(f"{gateway}/login", params={"idp": "educonnect", "next": "/healthz"})
    landed = browser.sign_in_upstream(page, username, PASSWORD)
    if landed.status_code == 200 and "maille_session" in browser.site_cookies(gateway):
        return browser
    browser.client.close()
    return None


def sign_out(gateway: str, browser: Browser) -> bool:
    """The person signs out: the gateway's button, Keycloak's end of session (its back-channel logout to the
    gateway), EduConnect's single logout, back home."""
    page = browser.go(f"{gateway}/logout")
    out = browser.through_saml(browser.post_form(page))
    browser.client.close()
    return out.status_code < 400 and "maille_session" not in browser.site_cookies(gateway)


TOGGLES = ("verify-profile", "import", "redirect", "lightweight", "all")


def toggle(name: str, keycloak: KeycloakServer, peer_url: str):
    """A switch between Maille's declaration (True) and the setting before it (False), for one change (or all of
    them), made through Keycloak's admin API."""

    def admin():
        return admin_client(keycloak.url, keycloak.admin_user, keycloak.admin_password)

    def switch(declared: bool) -> None:
        for each in TOGGLES[:-1] if name == "all" else (name,):
            change(each, declared)

    def change(name: str, declared: bool) -> None:
        with admin() as api:
            if name == "verify-profile":
                action = api.get("/authentication/required-actions/VERIFY_PROFILE").raise_for_status().json()
                api.put(
                    "/authentication/required-actions/VERIFY_PROFILE", json={**action, "enabled": not declared}
                ).raise_for_status()
            elif name == "import":
                mode = "IMPORT" if declared else "FORCE"
                idp = api.get("/identity-provider/instances/educonnect").raise_for_status().json()
                idp["config"]["syncMode"] = mode
                api.put("/identity-provider/instances/educonnect", json=idp).raise_for_status()
                for mapper in api.get("/identity-provider/instances/educonnect/mappers").raise_for_status().json():
                    mapper["config"]["syncMode"] = mode
                    api.put(
                        f"/identity-provider/instances/educonnect/mappers/{mapper['id']}", json=mapper
                    ).raise_for_status()
            elif name == "redirect":
                idp = api.get("/identity-provider/instances/educonnect").raise_for_status().json()
                idp["config"]["postBindingAuthnRequest"] = "false" if declared else "true"
                idp["config"]["singleSignOnServiceUrl"] = f"{peer_url}/idp/sso/{'redirect' if declared else 'post'}"
                api.put("/identity-provider/instances/educonnect", json=idp).raise_for_status()
            elif name == "lightweight":
                internal = api.get("/clients", params={"clientId": GATEWAY_CLIENT[0]}).raise_for_status().json()[0]
                internal["attributes"]["client.use.lightweight.access.token.enabled"] = str(declared).lower()
                api.put(f"/clients/{internal['id']}", json=internal).raise_for_status()

    return switch


def jfr_top(recording: Path, lines: int = 25) -> None:
    """Where Keycloak's CPU went in a Java Flight Recording: samples by kind of work (the first of the listed
    kinds whose package is on the stack), by the Keycloak class nearest the top, and the hottest methods."""
    out = subprocess.run(
        ["jfr", "print", "--events", "jdk.ExecutionSample", "--stack-depth", "96", str(recording)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    categories = [
        ("SAML: XML signature", r"org\.apache\.xml\.security|XMLSignature|xmlsec"),
        ("SAML: parsing and the broker", r"org\.keycloak\.(broker\.saml|saml|dom)"),
        ("PostgreSQL driver and Hibernate", r"org\.postgresql|org\.hibernate|io\.agroal"),
        ("Infinispan (caches, sessions)", r"org\.infinispan|org\.jgroups"),
        ("login pages (FreeMarker)", r"freemarker"),
        ("tokens: JWS signing", r"org\.keycloak\.(crypto|jose)|java\.security\.Signature|sun\.security\.rsa"),
        ("tokens: mappers and claims", r"org\.keycloak\.protocol\.oidc\.(mappers|TokenManager)"),
        ("user profile and attributes", r"org\.keycloak\.userprofile|UserAdapter|org\.keycloak\.models\.jpa"),
        ("events and logging", r"org\.keycloak\.events|org\.jboss\.logging|org\.jboss\.logmanager"),
        ("HTTP server (Vert.x, RESTEasy)", r"io\.vertx|io\.netty|org\.jboss\.resteasy|io\.quarkus\.vertx"),
        ("JSON", r"com\.fasterxml"),
    ]
    by_category: collections.Counter[str] = collections.Counter()
    by_method: collections.Counter[str] = collections.Counter()
    by_keycloak: collections.Counter[str] = collections.Counter()
    total = 0
    for event in out.split("jdk.ExecutionSample")[1:]:
        frames = re.findall(r"^\s+([\w.$<>]+)\(", event, re.M)
        if not frames:
            continue
        total += 1
        by_method[frames[0]] += 1
        mine = next((f for f in frames if f.startswith("org.keycloak.")), "(no Keycloak frame)")
        by_keycloak[mine.rsplit(".", 1)[0]] += 1
        stack = "\n".join(frames)
        found = next((name for name, pattern in categories if re.search(pattern, stack)), "other")
        by_category[found] += 1
    print(f"Keycloak's CPU samples (JFR, {total}), by the first of these found on the stack:")
    for name, count in by_category.most_common():
        print(f"  {count / max(total, 1) * 100:5.1f}%  {name}")
    print("by the Keycloak class nearest the top of the stack:")
    for name, count in by_keycloak.most_common(lines):
        print(f"  {count / max(total, 1) * 100:5.1f}%  {name}")
    print("hottest methods (self):")
    for name, count in by_method.most_common(lines):
        print(f"  {count / max(total, 1) * 100:5.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browsers", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--pupils", type=int, default=200)
    parser.add_argument(
        "--first-call", action="store_true", help="each sign-in followed by the person's GET /api/identity/v1/me"
    )
    parser.add_argument("--db", choices=("mem", "postgres"), default="mem", help="Keycloak's database")
    parser.add_argument("--refresh-seconds", type=int, default=30, help="token refreshes for so long (0: none)")
    parser.add_argument("--signouts", type=int, default=120, help="persons signed in, then out (0: none)")
    parser.add_argument("--profile", type=Path, help="a JFR recording of Keycloak during the measured sign-ins")
    parser.add_argument("--java-opts", default="", help="Keycloak's JAVA_OPTS_APPEND (JVM settings tried)")
    parser.add_argument(
        "--toggle", choices=TOGGLES, help="measure one change alone: declared and before, in turns, on one Keycloak"
    )
    parser.add_argument("--rounds", type=int, default=3, help="turns of each side with --toggle")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: everything it started is stopped too
    work = Path(tempfile.mkdtemp(prefix="maille-bench-sso-"))
    database = f"bench_sso_{uuid.uuid4().hex[:6]}"
    nats = NatsServer(port=free_port(), store_dir=work / "nats", log_dir=work / "log")
    docstore = DocstoreServer(port=free_port(), data_dir=work / "docstore", log_dir=work / "log")
    postgres = (
        PostgresServer(port=free_port(), data_dir=work / "postgres", log_dir=work / "log")
        if args.db == "postgres"
        else None
    )
    keycloak = KeycloakServer(port=free_port(), log_dir=work / "log", postgres=postgres, java_opts=args.java_opts)
    parts: list = []
    try:
        if postgres is not None:
            postgres.start()
            parts.append(postgres)
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
                "MAILLE_GATEWAY_RATE_SIGN_IN": "100000",  # all browsers here share one address
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
            f"{args.browsers} browsers, {len(pupils)} pupils, Keycloak "
            + ("start on PostgreSQL (persistent sessions)" if postgres else "start-dev (dev-mem)")
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
        if postgres is not None:
            processes["postgres"] = postgres.process.pid
        # What each process spends doing nothing (timers, heartbeats), measured first: it does not grow
        # with sign-ins, and is shown apart.
        idle_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        time.sleep(10)
        idle = {name: (cpu_seconds(pid) - idle_before[name]) / 10 for name, pid in processes.items()}
        print("CPU at rest (ms per second): " + ", ".join(f"{name} {v * 1000:.1f}" for name, v in idle.items()))

        if args.toggle:
            # One change to Keycloak's configuration measured alone, on the same Keycloak (its JIT as warm, the
            # machine as busy): Maille's declaration and the setting before it, in turns, each turn as long.
            switch = toggle(args.toggle, keycloak, peer.url)
            spent: dict[bool, list[float]] = {True: [], False: []}
            counted: dict[bool, list[int]] = {True: [], False: []}
            turn = args.seconds / (2 * args.rounds)
            run(pupils, time.monotonic() + turn)  # one turn more first, not counted: Keycloak's JIT still warming
            for n in range(args.rounds * 2):
                declared = n % 2 == 0
                switch(declared)
                time.sleep(1)
                if n < 2:  # what the services receive on each call, either way
                    sample = tokens_of(keycloak.url, public, pupils[0])["access_token"]
                    print(f"  {'declared' if declared else 'before  '}: an access token of {len(sample)} bytes")
                marks = {name: cpu_seconds(processes[name]) for name in ("keycloak", "postgres") if name in processes}
                ok, failed = run(pupils, time.monotonic() + turn)
                spent[declared].append(sum(cpu_seconds(processes[k]) - v for k, v in marks.items()))
                counted[declared].append(ok)
                print(
                    f"  {'declared' if declared else 'before  '}: {ok} sign-ins, {failed} failed, Keycloak"
                    f"{' + PostgreSQL' if postgres else ''} {spent[declared][-1] / max(ok, 1) * 1000:.1f} ms each"
                )
            switch(True)
            per = {k: sum(spent[k]) / max(sum(counted[k]), 1) * 1000 for k in (True, False)}
            print(
                f"toggle {args.toggle}: Keycloak{' + PostgreSQL' if postgres else ''} {per[True]:.1f} ms per sign-in "
                f"as declared, {per[False]:.1f} before ({(per[True] - per[False]) / per[False] * 100:+.1f}%)"
            )
            return

        def jcmd(*command: str) -> None:
            subprocess.run(["jcmd", str(keycloak.process.pid), *command], check=True, capture_output=True, timeout=60)

        if args.profile:
            jcmd("JFR.start", "name=bench", "settings=profile", f"filename={args.profile.resolve()}")
        before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        started = time.monotonic()
        ok, failed = run(pupils, started + args.seconds)
        elapsed = time.monotonic() - started
        used = {name: cpu_seconds(pid) - before[name] for name, pid in processes.items()}
        if args.profile:
            jcmd("JFR.stop", "name=bench")
        mine = ("gateway", "identity", "nats", "docstore")
        maille = sum(used[name] for name in mine)
        busy = {name: max(0.0, used[name] - idle[name] * elapsed) for name in used}
        for failure in FAILURES:
            print(f"failed: {failure}")
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
        if postgres is not None:
            both = used["keycloak"] + used["postgres"]
            print(
                f"Keycloak + PostgreSQL: {both / max(ok, 1) * 1000:.1f} ms of CPU per brokered sign-in "
                f"(PostgreSQL {used['postgres'] / max(ok, 1) * 1000:.1f}) = {ok / max(both, 1e-9):.1f} sign-ins per "
                "CPU-second"
            )
        if args.profile:
            jfr_top(args.profile)
        server_side = [n for n in ("keycloak", "postgres") if n in processes]

        if args.refresh_seconds:
            # The refresh: the gateway's client refreshing persons' tokens, as the gateway does before expiry.
            holders = pupils[: max(args.browsers * 4, 24)]
            held = [tokens_of(keycloak.url, public, name) for name in holders]
            sample = held[0]["access_token"]
            claims = json.loads(base64.urlsafe_b64decode(sample.split(".")[1] + "=="))
            print(f"an access token: {len(sample)} bytes, claims {', '.join(sorted(claims))}")
            counts, lock = [0, 0], threading.Lock()
            stop_at = [0.0]

            def refresher(index: int) -> None:
                with httpx.Client(timeout=10) as client:
                    n = index
                    while time.monotonic() < stop_at[0]:
                        tokens = refresh(client, keycloak.url, held[n % len(held)]["refresh_token"])
                        with lock:
                            counts[0 if tokens else 1] += 1
                        if tokens:
                            held[n % len(held)] = tokens
                        n += args.browsers

            stop_at[0] = time.monotonic() + args.refresh_seconds
            took, spent = in_threads(refresher, args.browsers, {name: processes[name] for name in server_side})
            print(
                f"refresh: {counts[0] / took:.0f}/s ({counts[0]} in {took:.0f}s, {counts[1]} refused); CPU each: "
                + ", ".join(f"{n} {v / max(counts[0], 1) * 1000:.2f} ms" for n, v in spent.items())
                + f"; Keycloak all counted {sum(spent.values()) / max(counts[0], 1) * 1000:.2f} ms"
            )

        if args.signouts:
            # The sign-out: persons signed in first (not measured), then each signs out through the gateway.
            browsers = [b for b in (signed_in_browser(public, name) for name in pupils[: args.signouts]) if b]
            watched = [*server_side, "gateway", "peer"]
            outcomes: list[bool] = []
            lock = threading.Lock()

            def signer(_: int) -> None:
                while True:
                    with lock:
                        if not browsers:
                            return
                        browser = browsers.pop()
                    done = sign_out(public, browser)
                    with lock:
                        outcomes.append(done)

            took, spent = in_threads(signer, args.browsers, {name: processes[name] for name in watched})
            out = sum(outcomes)
            print(
                f"sign-out: {out / took:.1f}/s ({out} signed out, {len(outcomes) - out} failed); CPU per sign-out: "
                + ", ".join(f"{n} {v / max(out, 1) * 1000:.1f} ms" for n, v in spent.items())
            )
    finally:
        for part in reversed(parts):
            part.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
