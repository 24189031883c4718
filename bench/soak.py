"""The soak: `make run`'s whole platform, two replicas of every service behind a balancer (as Kubernetes runs them),
under a steady 8 a.m. mix for half an hour, while the night's work runs through it.

- The directory: a 20,000-person AAF feed imported first; then every `--import-every` minutes a delta changing
  every one of those 20,000 persons (their first names), imported by `maille-identity import-aaf`
  while the load goes on; the GAR export once, at a third of the run.
- The load, at a steady `--rate` of requests a second from signed-in people (pupils and parents through the
  EduConnect peer, teachers through the académie's): `/me`, inbox pages, sends (a pupil to a classmate, a
  teacher to a class), the médiacentre, CDI searches; and sign-ins (`--signins` a minute, whole SAML
  round trips through Keycloak). The 24 people's own first sign-ins, right after the platform started (Keycloak
  cold), are timed apart as "cold sign-in".
- Printed: every error (a 5xx, a refused connection, an unexpected 4xx) and every hang (over 10 s), the p99 of
  each route in each 5-minute window, each import's persons/s with the CPU each process spent meanwhile (and how
  busy the whole machine was) and what the platform itself measured meanwhile (the gateway's time for each route,
  the first replica of identity, the catalog and messaging: their time for each request and each docstore command,
  read from their /metrics), each process's memory (RSS) after the first 5 minutes and at the end; at the end,
  the two replicas of the catalog and of messaging asked the same questions directly (their in-memory offer and
  listings must agree), and how long the PMB readers the last delta changed took to reach the PMBs (the reader
  sync's changes are paced).

    make bench-tools && .venv/bin/python bench/soak.py [--minutes 30] [--rate 12]

Results go to bench/RESULTS.md by hand; the raw figures to .cache/soak/result.json.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
from pymongo import MongoClient

from maille_devstack.browser import Browser
from maille_devstack.paths import NGINX, bin_of
from maille_devstack.processes import free_port
from maille_devstack.stack import Ports, state_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, pct  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".cache" / "soak"
HANG = 10.0
SLOW = 2.0
WINDOW = 300.0


class Recorder:
    """Every call's route, time taken and outcome."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.hangs: list[str] = []
        self.slow: list[str] = []  # over SLOW: what to look at first when a p99 is off
        self.calls: list[tuple[float, str, float]] = []  # (began, route, took): p99 during the imports and apart
        self.busy: list[tuple[float, float]] = []  # when a delta import or the GAR export ran
        self.count = 0

    def call(self, route: str, do, ok=lambda r: r.status_code < 400) -> httpx.Response | None:
        began = time.monotonic()
        try:
            answer = do()
        except Exception as exc:
            answer, failure = None, f"{type(exc).__name__}: {str(exc)[:120]}"
        else:
            try:
                good = ok(answer)
            except ValueError:  # not the JSON expected
                good = False
            failure = None if good else f"{answer.status_code} {answer.text[:160]!r}"
        took = time.monotonic() - began
        with self.lock:
            self.count += 1
            self.calls.append((began - self.started, route, took))
            if failure:
                self.errors.append(f"{began - self.started:7.1f}s {route}: {failure}")
            if took > HANG:
                self.hangs.append(f"{began - self.started:7.1f}s {route}: {took:.1f}s")
            elif took > SLOW:
                self.slow.append(f"{began - self.started:7.1f}s {route}: {took:.1f}s")
        return answer if failure is None else None


def start_platform(var: Path, ports: Ports) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "MAILLE_DEVSTACK_PORTS": json.dumps(vars(ports)),
        "MAILLE_DEVSTACK_VAR": str(var),
        "MAILLE_DEVSTACK_REPLICAS": "2",
    }
    env.pop("MONGODB_URL", None)
    process = subprocess.Popen(
        [str(bin_of("maille-devstack")), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 600
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            sys.exit("the platform did not start:\n" + "".join(lines[-40:]))
        lines.append(line)
        if "Ctrl-C or `make stop`" in line:
            threading.Thread(
                target=lambda: [None for _ in process.stdout], daemon=True
            ).start()  # keep its pipe drained
            return process
    sys.exit("the platform did not start in 10 minutes")


def identity_env(var: Path, ports: Ports) -> dict[str, str]:
    env = {**os.environ, "MAILLE_DEVSTACK_PORTS": json.dumps(vars(ports)), "MAILLE_DEVSTACK_VAR": str(var)}
    out = subprocess.run(
        [str(bin_of("maille-devstack")), "env", "identity"], env=env, capture_output=True, text=True, check=True
    ).stdout
    return {**os.environ, **dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines())}


def import_feed(env: dict[str, str], feed: Path, report: Path) -> tuple[float, str]:
    began = time.monotonic()
    done = subprocess.run(
        [str(bin_of("maille-identity")), "import-aaf", str(feed), "--report", str(report)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    summary = done.stdout.strip().splitlines()[-2:] if done.stdout else []
    return time.monotonic() - began, (
        " / ".join(summary) if done.returncode == 0 else f"FAILED {done.returncode}: {done.stderr[-400:]}"
    )


def usage_of(pids: dict[str, int]) -> dict[str, tuple[float, float]]:
    """Each part's memory (its process group's RSS, MiB) and CPU time so far (s)."""
    usage = {}
    for name, pid in pids.items():
        memory = cpu = 0.0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[2]) == pid:  # pgid
                    memory += int((proc / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
                    cpu += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
            except (OSError, IndexError, ValueError):
                continue
        usage[name] = (memory / 2**20, cpu)
    return usage


def rss_of(pids: dict[str, int]) -> dict[str, float]:
    return {name: memory for name, (memory, _) in usage_of(pids).items()}


def cpu_during(pids: dict[str, int], work) -> tuple[object, dict[str, float]]:
    """What `work()` returns, and the CPU seconds each part and the work's own processes spent meanwhile."""
    before, children, own, busy = (
        usage_of(pids),
        _rusage(resource.RUSAGE_CHILDREN),
        _rusage(resource.RUSAGE_SELF),
        _busy(),
    )
    result = work()
    after = usage_of(pids)
    spent = {name: after[name][1] - before[name][1] for name in after if name in before}
    spent["import"] = _rusage(resource.RUSAGE_CHILDREN) - children
    spent["load generator"] = _rusage(resource.RUSAGE_SELF) - own
    spent["machine"] = _busy() - busy
    return result, spent


def buckets(metrics: str, name: str, label: str) -> dict[str, dict[float, float]]:
    """A process's count of one histogram's observations by a label and bucket (cumulative, as Prometheus keeps
    them)."""
    found: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    try:
        text = httpx.get(metrics, timeout=5).text
    except httpx.HTTPError:
        return {}
    for line in text.splitlines():
        if not line.startswith(name + "_bucket{"):
            continue
        labels, value = line.rsplit(" ", 1)
        fields = dict(part.split("=", 1) for part in labels[labels.index("{") + 1 : -1].split(","))
        le = fields.get("le", "").strip('"')
        found[fields.get(label, "?").strip('"')][float("inf") if le == "+Inf" else float(le)] += float(value)
    return found


def p99_between(before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]) -> dict[str, str]:
    """Each label's p99 between two scrapes, as the bucket it falls in ("≤ 25 ms (count)")."""
    found = {}
    for key, counts in after.items():
        bounds = sorted(counts)
        delta = [counts[b] - before.get(key, {}).get(b, 0.0) for b in bounds]
        if not delta or delta[-1] <= 0:
            continue
        bound = next(b for b, n in zip(bounds, delta, strict=True) if n >= 0.99 * delta[-1])
        found[key] = f"≤ {bound * 1000:g} ms ({delta[-1]:.0f})" if bound != float("inf") else "> 10 s"
    return found


class Inside:
    """What the platform itself measured while a delta ran: the gateway's time for each route, and the first
    replica of identity, the catalog and messaging — their time for each request and for each docstore command —
    so that a slow answer is placed (the gateway, a service, or the docstore under it)."""

    HISTOGRAMS = (
        ("http_server_request_duration_seconds", "http_route"),
        ("maille_docstore_duration_seconds", "command"),
    )

    def __init__(self, gateway_metrics: str, pids: dict[str, int]) -> None:
        self.targets = {"gateway": gateway_metrics}
        for name in ("identity", "catalog", "messaging"):
            try:
                environ = Path(f"/proc/{pids[f'{name}-1']}/environ").read_bytes().split(b"\0")
            except (KeyError, OSError):
                continue
            ports = [
                v.split(b"=", 1)[1] for v in environ if v.startswith(f"MAILLE_{name.upper()}_METRICS_PORT=".encode())
            ]
            if ports:
                self.targets[name] = f"http://127.0.0.1:{ports[0].decode()}/metrics"

    def scrape(self) -> dict[tuple[str, str], dict[str, dict[float, float]]]:
        return {
            (target, metric): buckets(url, metric, label)
            for target, url in self.targets.items()
            for metric, label in self.HISTOGRAMS
        }

    def between(self, before: dict, after: dict) -> str:
        parts = []
        for (target, metric), counts in after.items():
            found = p99_between(before.get((target, metric), {}), counts)
            what = "requests" if metric.startswith("http") else "docstore"
            if found:
                parts.append(f"{target} {what}: " + ", ".join(f"{k} {v}" for k, v in sorted(found.items())))
        return "; ".join(parts)


def _rusage(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _busy() -> float:
    """The CPU seconds the whole machine has spent busy (every core, every process) since it booted."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    args = arguments(
        __doc__,
        minutes=30.0,
        rate=(12.0, "API requests a second"),
        signins=(6.0, "sign-ins a minute"),
        persons=20_000,
        import_every=(5.0, "minutes between delta imports"),
        users=(24, "people signed in at once"),
    )
    if not NGINX.exists():
        sys.exit("nginx is missing: run `make bench-tools`")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    var = WORK / "var"
    ports = Ports(**{name: free_port() for name in vars(Ports())})
    platform = start_platform(var, ports)
    gateway = f"http://localhost:{ports.gateway}"
    metrics = f"http://127.0.0.1:{ports.gateway_metrics}/metrics"
    try:
        env = identity_env(var, ports)
        mongo = MongoClient(f"mongodb://127.0.0.1:{ports.docstore}", timeoutMS=60_000)
        print(f"platform up; importing the {args.persons}-person directory…", flush=True)
        feed = WORK / "feed"
        subprocess.run(
            [
                str(bin_of("maille-identity")),
                "generate-aaf",
                str(feed),
                "--persons",
                str(args.persons),
                "--schools",
                "10",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        took, summary = import_feed(env, feed, WORK / "first.txt")
        print(f"  first import: {took:.1f}s — {summary}", flush=True)
        persons = list(
            mongo.maille_identity.persons.find(
                {"detached_at": {"$exists": False}}, {"kind": 1, "keys": 1, "classes": 1}
            )
        )
        pupils = [p for p in persons if p["kind"] == "pupil" and p.get("classes")]
        teachers = [p for p in persons if p["kind"] == "staff" and p.get("classes")]
        parents = [p for p in persons if p["kind"] == "parent"]
        classmates: dict[str, list[str]] = defaultdict(list)
        for pupil in pupils:
            classmates[pupil["classes"][0]].append(pupil["_id"])
        recorder = Recorder()
        rng = random.Random(18)

        def sign_in(person: dict, idp: str, route: str = "sign-in") -> Browser | None:
            browser = Browser()
            page = browser.go(f"{gateway}/login", params={"idp": idp, "next": "/api/identity/v1/me"})
            me = recorder.call(
                route,
                lambda: browser.sign_in_upstream(page, person["keys"][0], "demo"),
                ok=lambda r: r.status_code == 200 and r.json().get("id") == person["_id"],
            )
            return browser if me is not None else None

        people: list[tuple[dict, str, Browser]] = []
        for person, idp in [
            *((p, "educonnect") for p in rng.sample(pupils, args.users // 2)),
            *((p, "educonnect") for p in rng.sample(parents, args.users // 4)),
            *((p, "academie") for p in rng.sample(teachers, args.users - args.users // 2 - args.users // 4)),
        ]:
            browser = sign_in(person, idp, "cold sign-in")  # the first ones after the platform started: told apart
            if browser is not None:
                people.append((person, idp, browser))
        print(
            f"  {len(people)} of {args.users} people signed in; load for {args.minutes:g} minutes at {args.rate:g}/s…",
            flush=True,
        )
        recorder.started = time.monotonic()
        stop = threading.Event()

        def act(person: dict, browser: Browser, r: random.Random) -> None:
            csrf = browser.site_cookies(gateway).get("maille_csrf", "")
            roll = r.random()
            if roll < 0.30:
                recorder.call("GET /me", lambda: browser.request("GET", f"{gateway}/api/identity/v1/me"))
            elif roll < 0.55:
                recorder.call(
                    "GET inbox", lambda: browser.request("GET", f"{gateway}/api/messaging/v1/folders/inbox/messages")
                )
            elif roll < 0.65 and person["kind"] != "parent":
                to = (
                    [{"type": "group", "id": f"{person['classes'][0]}/ELV"}]
                    if person["kind"] == "staff"
                    else [
                        {
                            "type": "person",
                            "id": r.choice(
                                [m for m in classmates[person["classes"][0]] if m != person["_id"]] or [person["_id"]]
                            ),
                        }
                    ]
                )
                recorder.call(
                    "POST send",
                    lambda: browser.request(
                        "POST",
                        f"{gateway}/api/messaging/v1/messages",
                        headers={"x-csrf-token": csrf},
                        json={"to": to, "subject": "Soak", "body": "<p>Pour demain</p>"},
                    ),
                    ok=lambda a: a.status_code in (201, 403, 422),
                )  # the rules may refuse a pair: an answer, not an error
            elif roll < 0.85:
                recorder.call(
                    "GET mediacentre", lambda: browser.request("GET", f"{gateway}/api/catalog/v1/mediacentre")
                )
            else:
                recorder.call(
                    "GET cdi search",
                    lambda: browser.request(
                        "GET", f"{gateway}/api/library/v1/search", params={"q": r.choice(["Germinal", "chat", "lune"])}
                    ),
                )

        def worker(n: int) -> None:
            r = random.Random(n)
            mine = people[n::4]
            interval = 4 / args.rate
            next_at = time.monotonic() + r.random() * interval
            while not stop.is_set() and mine:
                next_at += interval
                person, _, browser = r.choice(mine)
                act(person, browser, r)
                time.sleep(max(0.0, next_at - time.monotonic()))

        def signer() -> None:
            r = random.Random(99)
            interval = 60 / args.signins
            while not stop.wait(interval):
                person = r.choice(pupils + parents)
                sign_in(person, "educonnect")

        imports: list[str] = []

        def gar_export() -> None:
            if stop.wait(args.minutes * 60 * 0.4):  # between two deltas
                return
            began = time.monotonic()
            done = subprocess.run(
                [str(bin_of("maille-identity")), "export-gar", str(WORK / "gar")],
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            recorder.busy.append((began - recorder.started, time.monotonic() - recorder.started))
            imports.append(
                f"GAR export at {began - recorder.started:.0f}s: {time.monotonic() - began:.1f}s, exit "
                f"{done.returncode}" + ("" if done.returncode == 0 else f" — {done.stderr[-300:]}")
            )
            print("  " + imports[-1], flush=True)

        def nightly() -> None:
            k = 0
            while not stop.wait(args.import_every * 60):
                k += 1
                delta = WORK / f"delta{k}"
                subprocess.run(
                    [
                        str(bin_of("maille-identity")),
                        "generate-aaf",
                        str(delta),
                        "--persons",
                        str(args.persons),
                        "--schools",
                        "10",
                        "--delta",
                        str(k),
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                waiting = mongo.maille_library.reader_sync_pending.count_documents({})  # the last delta's, for PMB
                began, seen = time.monotonic(), inside.scrape()
                (took, summary), spent = cpu_during(pids, lambda: import_feed(env, delta, WORK / f"delta{k}.txt"))
                own = inside.between(seen, inside.scrape())
                recorder.busy.append((began - recorder.started, time.monotonic() - recorder.started))
                machine = spent.pop("machine")
                busiest = ", ".join(
                    f"{name} {s:.1f}" for name, s in sorted(spent.items(), key=lambda i: -i[1]) if s >= 0.3
                )
                imports.append(
                    f"delta {k} at {began - recorder.started:.0f}s: {took:.1f}s, {len(persons) / took:,.0f} persons/s "
                    f"— {summary}"
                    f" — CPU s meanwhile: {busiest}; the machine busy {machine:.0f}"
                    f" of {os.cpu_count() * took:.0f} core-s on {os.cpu_count()} cores;"
                    f" PMB readers still to write as it began: {waiting:,};"
                    f" p99 inside meanwhile — {own}"
                )
                print("  " + imports[-1], flush=True)

        pids = json.loads(state_file(var).read_text())["parts"]
        inside = Inside(metrics, pids)
        print(f"  measured inside: {sorted(inside.targets)}", flush=True)
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)] + [
            threading.Thread(target=signer),
            threading.Thread(target=nightly),
            threading.Thread(target=gar_export),
        ]
        for thread in threads:
            thread.start()
        memory_start: dict[str, float] = {}
        ends = time.monotonic() + args.minutes * 60
        while time.monotonic() < ends:
            time.sleep(5)
            if not memory_start and time.monotonic() - recorder.started > WINDOW:
                memory_start = rss_of(pids)
        stop.set()
        for thread in threads:
            thread.join(1800)
        memory_end = rss_of(pids)
        agree = replicas_agree(people, gateway)
        # The PMB readers the last delta changed reach the schools' PMBs at the reader sync's pace.
        pending, waited = mongo.maille_library.reader_sync_pending, time.monotonic()
        left = pending.count_documents({})
        while pending.count_documents({}) and time.monotonic() - waited < 600:
            time.sleep(1)
        imports.append(
            f"PMB readers still to write when the load ended: {left:,}; "
            + (
                f"all written {time.monotonic() - waited:.0f} s later"
                if not pending.count_documents({})
                else f"{pending.count_documents({}):,} still waiting 600 s later"
            )
        )
        report(recorder, imports, memory_start, memory_end, agree, args)
    finally:
        platform.send_signal(signal.SIGINT)
        try:
            platform.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(platform.pid, signal.SIGKILL)


def replicas_agree(people: list, gateway: str) -> list[str]:
    """The same questions asked until each replica of the catalog and of messaging has answered them (the balancer
    says which answered): their in-memory offer and listings must give the same answers."""
    found = []
    for person, _, browser in people[:8]:
        for service, path in (
            ("catalog", "/api/catalog/v1/mediacentre"),
            ("messaging", "/api/messaging/v1/folders/inbox/messages"),
        ):
            by_replica: dict[str, str] = {}
            for _ in range(8):
                reply = browser.request("GET", f"{gateway}{path}")
                by_replica.setdefault(reply.headers.get("x-maille-replica", "?"), _comparable(reply))
                if len(by_replica) >= 2:
                    break
            if len(by_replica) < 2:
                found.append(f"{service}: only {sorted(by_replica)} answered for {person['_id']}")
            elif len(set(by_replica.values())) > 1:
                found.append(f"{service} replicas disagree for {person['_id']} on {path}")
    return found


def _comparable(reply: httpx.Response) -> str:
    if reply.status_code != 200:
        return f"status {reply.status_code}"
    body = reply.json()
    if isinstance(body, dict):
        body.pop("genere", None)
    return json.dumps(body, sort_keys=True)


def report(
    recorder: Recorder, imports: list[str], memory_start: dict, memory_end: dict, agree: list[str], args
) -> None:
    latencies: dict[tuple[int, str], list[float]] = defaultdict(list)  # by 5-minute window and route
    for began, route, took in recorder.calls:
        latencies[(int(began // WINDOW), route)].append(took)
    routes = sorted({route for _, route in latencies})
    windows = sorted({w for w, _ in latencies})
    print(f"\nrequests {recorder.count}, errors {len(recorder.errors)}, hangs (> {HANG:g}s) {len(recorder.hangs)}")
    for line in recorder.errors[:30]:
        print("  error", line)
    for line in recorder.hangs[:30]:
        print("  hang ", line)
    print(f"slow (> {SLOW:g}s) {len(recorder.slow)}")
    for line in recorder.slow[:30]:
        print("  slow ", line)
    print("\np99 (ms) by 5-minute window:")
    print(f"  {'route':<16}" + "".join(f"{f'{w * 5}-{w * 5 + 5}':>10}" for w in windows))
    for route in routes:
        cells = [latencies.get((w, route), []) for w in windows]
        print(f"  {route:<16}" + "".join(f"{pct(c, 99) * 1000:>10.0f}" if c else f"{'—':>10}" for c in cells))
    during = defaultdict(list)
    apart = defaultdict(list)
    for began, route, took in recorder.calls:
        (during if any(start <= began <= end for start, end in recorder.busy) else apart)[route].append(took)
    print("\np99 (ms) while an import or the export ran, and apart:")
    for route in routes:
        cells = [
            f"{pct(group[route], 99) * 1000:>10.0f}" if group[route] else f"{'—':>10}" for group in (during, apart)
        ]
        print(f"  {route:<16}" + "".join(cells) + f"   ({len(during[route])} / {len(apart[route])} calls)")
    print("\nnight's work:")
    for line in imports:
        print("  " + line)
    print("\nmemory (MiB, RSS): after 5 minutes → end")
    for name in sorted(memory_end):
        start, end = memory_start.get(name, 0.0), memory_end[name]
        growth = f"{(end - start) / start * 100:+.0f}%" if start else "—"
        print(f"  {name:<14}{start:>9.0f} → {end:>7.0f}  {growth}")
    print("\nreplicas:", "agree" if not agree else "; ".join(agree))
    (WORK / "result.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "requests": recorder.count,
                "errors": recorder.errors,
                "hangs": recorder.hangs,
                "slow": recorder.slow,
                "imports": imports,
                "p99_ms": {f"{w}:{route}": pct(v, 99) * 1000 for (w, route), v in latencies.items()},
                "p99_ms_during_imports": {route: pct(v, 99) * 1000 for route, v in during.items() if v},
                "p99_ms_apart": {route: pct(v, 99) * 1000 for route, v in apart.items() if v},
                "memory_start": memory_start,
                "memory_end": memory_end,
                "replicas": agree,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
