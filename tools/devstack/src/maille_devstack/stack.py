"""The whole platform on one machine: `maille-devstack run` (what `make run` starts) and `stop`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from maille_devstack import seed
from maille_devstack.paths import DEPLOYABLES, NGINX, VAR, bin_of, require
from maille_devstack.pki import make_pki
from maille_devstack.processes import (
    Balancer,
    DocstoreServer,
    GarPeer,
    KeycloakServer,
    MailpitServer,
    NatsServer,
    NotReady,
    PmbPeerProcess,
    Process,
    SamlPeer,
    ServiceProcess,
    free_port,
    port_open,
)
from maille_kit.busauth import USERS, authorization

SERVICES = DEPLOYABLES[1:]  # behind the gateway


def state_file(var: Path) -> Path:
    """Where a running stack keeps the process ids `stop` needs."""
    return var / "run" / "stack.json"


# `make run`'s usage key: the pseudonyms of the uses told to the observatory (production: a Secret of its own).
DEV_USAGE_KEY = "maille-development-usage-key"
# Who tells uses, and so holds the key — never the observatory (it must not turn a pseudonym back into a person).
TELL_USES = ("gateway", "catalog", "messaging", "library", "timeline", "support")


@dataclass(frozen=True)
class Ports:
    """The ports of `make run` (the README lists them)."""

    gateway: int = 8000
    identity: int = 8101
    catalog: int = 8102
    messaging: int = 8103
    library: int = 8104
    timeline: int = 8105
    support: int = 8106
    observatory: int = 8107
    nats: int = 4222
    docstore: int = 27017
    keycloak: int = 8080
    educonnect: int = 8201
    academie: int = 8202
    gar: int = 8203
    gar_resources: int = 8204
    pmb: int = 8205
    smtp: int = 1025  # Mailpit: the SMTP relay of the timeline's e-mails
    mailpit: int = 8025  # Mailpit's web page and API (what it received)
    # Each deployable's /metrics (MAILLE_<SERVICE>_METRICS_PORT), for a Prometheus to scrape.
    gateway_metrics: int = 9100
    identity_metrics: int = 9101
    catalog_metrics: int = 9102
    messaging_metrics: int = 9103
    library_metrics: int = 9104
    timeline_metrics: int = 9105
    support_metrics: int = 9106
    observatory_metrics: int = 9107

    def metrics_targets(self) -> dict[str, str]:
        """Where each deployable's /metrics is (`host:port`, as Prometheus names a target)."""
        return {name: f"127.0.0.1:{getattr(self, f'{name}_metrics')}" for name in ("gateway", *SERVICES)}


def service_env(
    name: str,
    *,
    nats_url: str,
    mongodb_url: str,
    routes: dict[str, str],
    keycloak_url: str = "",
    gateway_url: str = "",
    peers: dict[str, str] | None = None,
    gar: GarPeer | None = None,
    nats_password: str = "",
    smtp: tuple[str, int] | None = None,
) -> dict[str, str]:
    """The environment `make run` gives a deployable (docker-compose.yml gives the same variables).

    Tokens name the issuer as browsers reach Keycloak (http://localhost:8080/realms/maille, the
    default); the services fetch its keys where they reach it themselves.
    """
    prefix = f"MAILLE_{name.upper()}_"
    env = {
        f"{prefix}ENVIRONMENT": "development",  # the code's default is production
        f"{prefix}NATS_URL": nats_url,
        f"{prefix}NATS_PASSWORD": nats_password,  # its own NATS user
    }
    if name in TELL_USES:  # the platform's usage key: the pseudonyms of the uses told to the observatory
        env[f"{prefix}USAGE_KEY"] = DEV_USAGE_KEY
    if keycloak_url:
        env[f"{prefix}AUTH_ISSUER"] = f"{keycloak_url.replace('127.0.0.1', 'localhost')}/realms/maille"
        env[f"{prefix}AUTH_JWKS_URL"] = f"{keycloak_url}/realms/maille/protocol/openid-connect/certs"
    if name == "gateway":
        env[f"{prefix}ROUTES"] = json.dumps(routes)
        if gateway_url:
            env[f"{prefix}PUBLIC_URL"] = gateway_url
        # Keycloak names the issuer after the address it is asked at (start-dev sets no hostname): the
        # gateway reaches it at the issuer's own address, localhost, for the tokens to carry that issuer.
    else:
        env[f"{prefix}MONGODB_URL"] = mongodb_url
    if (
        name == "catalog" and gar is not None and gar.pki is not None
    ):  # the GAR's resource list, with the ENT's certificate
        env |= {
            f"{prefix}GAR_URL": gar.resources_url,
            f"{prefix}GAR_CLIENT_CERT": str(gar.pki.client_cert),
            f"{prefix}GAR_CLIENT_KEY": str(gar.pki.client_key),
            f"{prefix}GAR_CA_FILE": str(gar.pki.ca),
            f"{prefix}GAR_LINK_URL": f"{gar.url}/domaineGar",
        }
    if name == "support" and gateway_url:  # links to the portal in the desks' Redmine
        env[f"{prefix}PUBLIC_URL"] = gateway_url
    if name == "timeline":  # the e-mails: Mailpit as the relay, links to the portal
        if smtp is not None:
            env[f"{prefix}SMTP_HOST"], env[f"{prefix}SMTP_PORT"] = smtp[0], str(smtp[1])
        if gateway_url:
            env[f"{prefix}PUBLIC_URL"] = gateway_url
    if name == "identity" and keycloak_url:  # Keycloak as code, account linking, the upstream IdPs
        env[f"{prefix}KEYCLOAK_URL"] = keycloak_url
        if gateway_url:
            env[f"{prefix}GATEWAY_URL"] = gateway_url
        for peer, url in (peers or {}).items():
            env[f"{prefix}{peer.upper()}_METADATA_URL"] = url
        if gar is not None:
            env[f"{prefix}GAR_SP_ENTITY_ID"] = gar.entity_id
            env[f"{prefix}GAR_SP_ACS_URL"] = gar.acs_url
    return env


class Stack:
    """Every part of the platform, started in order and stopped in reverse."""

    def __init__(
        self, *, ports: Ports = Ports(), var: Path = VAR, mongodb_url: str | None = None, echo=print, replicas: int = 1
    ) -> None:
        self.ports = ports
        self.replicas = replicas  # of each service, behind a balancer when more than one (as Kubernetes runs them)
        self.var = var
        self.logs = var / "log"
        self.external_mongodb = mongodb_url
        self.echo = echo
        self.started: list[tuple[str, object]] = []

    def check_ports(self) -> None:
        """Refuse to start over something already listening on one of the ports."""
        wanted = {
            name: port for name, port in vars(self.ports).items() if not (name == "docstore" and self.external_mongodb)
        }
        taken = [f"{name} ({port})" for name, port in wanted.items() if port_open(port)]
        if taken:
            raise NotReady(f"ports already in use: {', '.join(taken)} — is Maille already running? (`make stop`)")

    def start(self) -> None:
        """Start everything, the slow Keycloak first so that it boots while the rest starts."""
        self.check_ports()
        keycloak = KeycloakServer(port=self.ports.keycloak, log_dir=self.logs, data_dir=self.var / "keycloak")
        keycloak.launch()
        self._record("keycloak", keycloak)
        passwords = bus_passwords(self.var)
        nats = NatsServer(
            port=self.ports.nats, store_dir=self.var / "nats", log_dir=self.logs, authorization=authorization(passwords)
        )
        self._launch("nats", nats)
        mongodb_url = self.external_mongodb
        if mongodb_url is None:
            docstore = DocstoreServer(port=self.ports.docstore, data_dir=self.var / "docstore", log_dir=self.logs)
            self._launch("docstore", docstore)
            mongodb_url = docstore.url
        # The upstream IdPs' peers: browsers meet Keycloak at localhost, and so does the SP metadata they read.
        browser_keycloak = f"http://localhost:{self.ports.keycloak}"
        peers = {}
        for kind in ("educonnect", "academie"):
            peer = SamlPeer(
                kind,
                port=getattr(self.ports, kind),
                keycloak_url=browser_keycloak,
                mongodb_url=mongodb_url,
                database="maille_identity",
                work_dir=self.var / "peers",
                log_dir=self.logs,
                password=os.environ.get("MAILLE_DEMO_PASSWORD") or "demo",
            )
            self._launch(f"peer-{kind}", peer)
            peers[kind] = peer.metadata_url
        gar = GarPeer(
            port=self.ports.gar,
            keycloak_url=browser_keycloak,
            work_dir=self.var / "peers",
            log_dir=self.logs,
            pki=make_pki(self.var / "pki"),
            resources_port=self.ports.gar_resources,
        )
        self._launch("peer-gar", gar)
        identity_env = service_env(
            "identity",
            nats_url=nats.url,
            mongodb_url=mongodb_url,
            routes={},
            keycloak_url=keycloak.url,
            gateway_url=f"http://localhost:{self.ports.gateway}",
            peers=peers,
            gar=gar,
            nats_password=passwords["identity"],
        )
        self.seed_directory(identity_env)
        schools = demo_schools(mongodb_url)
        # The CDIs' PMB: one database per demo school, its OPACs signing readers in through the realm's OPAC client.
        pmb = PmbPeerProcess(
            port=self.ports.pmb,
            databases=[f"cdi{uai}" for uai in schools],
            log_dir=self.logs,
            env={
                "PEER_OIDC_ISSUER": f"{browser_keycloak}/realms/maille",
                "PEER_OIDC_CLIENT_ID": "maille-pmb-opac",
                "PEER_OIDC_CLIENT_SECRET": os.environ.get("MAILLE_IDENTITY_PMB_OPAC_CLIENT_SECRET")
                or "maille-pmb-opac-dev-secret",
            },
        )
        self._launch("peer-pmb", pmb)
        self._launch(
            "mailpit",
            MailpitServer(
                smtp_port=self.ports.smtp,
                http_port=self.ports.mailpit,
                data_dir=self.var / "mailpit",
                log_dir=self.logs,
            ),
        )
        routes = {s: f"http://127.0.0.1:{getattr(self.ports, s)}" for s in SERVICES}
        spread: dict[str, tuple[int, list[int]]] = {}
        for name in (*SERVICES, "gateway"):
            env = service_env(
                name,
                nats_url=nats.url,
                mongodb_url=mongodb_url,
                routes=routes,
                keycloak_url=keycloak.url,
                gateway_url=f"http://localhost:{self.ports.gateway}",
                peers=peers,
                gar=gar,
                nats_password=passwords[name],
                smtp=("127.0.0.1", self.ports.smtp),
            )
            if name == "identity":  # its working folders under .var, not in the checkout
                env |= {
                    "MAILLE_IDENTITY_IMPORT_DIR": str(self.var / "aaf-imports"),
                    "MAILLE_IDENTITY_GAR_EXPORT_DIR": str(self.var / "gar-export"),
                }
            if name == "gateway" or self.replicas == 1:
                if spread and name == "gateway":
                    self._launch(
                        "balancer",
                        Balancer(
                            services=spread,
                            work=self.var / "balancer",
                            log_dir=self.logs,
                            nginx=require(NGINX, "nginx (`make bench-tools`)"),
                        ),
                    )
                self._launch(
                    name,
                    ServiceProcess(
                        name,
                        port=getattr(self.ports, name),
                        env=env,
                        log_dir=self.logs,
                        metrics_port=getattr(self.ports, f"{name}_metrics"),
                    ),
                )
                continue
            ports = [free_port() for _ in range(self.replicas)]
            spread[name] = (getattr(self.ports, name), ports)
            for n, port in enumerate(ports, start=1):
                self._launch(
                    f"{name}-{n}", ServiceProcess(name, port=port, env=env, log_dir=self.logs / f"replica-{n}")
                )
        self.echo("waiting for Keycloak (the first start takes a minute or two)…")
        keycloak.wait(300)
        self.setup_keycloak(keycloak, mongodb_url, identity_env)
        self.register_cdis(keycloak, pmb, schools)

    def register_cdis(self, keycloak: KeycloakServer, pmb: PmbPeerProcess, schools: list[str]) -> None:
        """Each demo school's CDI registered with the library (seed.register_cdis)."""
        seed.register_cdis(
            keycloak_url=f"http://localhost:{self.ports.keycloak}",
            admin=(keycloak.admin_user, keycloak.admin_password),
            gateway_url=f"http://localhost:{self.ports.gateway}",
            pmb_url=pmb.url,
            opac_url=pmb.url,
            schools=schools,
            echo=self.echo,
        )

    def setup_keycloak(self, keycloak: KeycloakServer, mongodb_url: str, identity_env: dict[str, str]) -> None:
        """The realm as code (`maille-identity sync-keycloak`), and the demo users linked (seed.demo_users)."""
        seed.sync_keycloak(identity_env, self.echo)
        seed.demo_users(keycloak.url, (keycloak.admin_user, keycloak.admin_password), identity_env, self.echo)

    def seed_directory(self, env: dict[str, str]) -> None:
        """The demo directory, imported once (seed.seed_directory; the feed kept in .var/demo-aaf)."""
        seed.seed_directory(self.var / "demo-aaf", env, self.logs / "demo-aaf-report.txt", self.echo)

    def _launch(self, name: str, part) -> None:
        self.echo(f"starting {name}…")
        try:
            part.start()
        finally:
            self._record(name, part)

    def _record(self, name: str, part) -> None:
        self.started.append((name, part))
        path = state_file(self.var)
        path.parent.mkdir(parents=True, exist_ok=True)
        parts = {name: part.process.pid for name, part in self.started}
        path.write_text(json.dumps({"devstack": os.getpid(), "parts": parts}))
        # For a Prometheus of one's own: `file_sd_configs: [{files: [.var/run/metrics-targets.json]}]`.
        targets = [
            {"targets": [target], "labels": {"service": name}} for name, target in self.ports.metrics_targets().items()
        ]
        (path.parent / "metrics-targets.json").write_text(json.dumps(targets, indent=2))

    def describe(self, mongodb_url: str | None = None) -> str:
        """What runs where."""
        p = self.ports
        rows = [
            ("gateway", f"http://localhost:{p.gateway}", "the public entry: /healthz, /api/<service>/…"),
            ("identity", f"http://127.0.0.1:{p.identity}", "directory, Keycloak as code, GAR"),
            ("catalog", f"http://127.0.0.1:{p.catalog}", "resources, subscriptions, médiacentre"),
            ("messaging", f"http://127.0.0.1:{p.messaging}", "ENT mail"),
            ("library", f"http://127.0.0.1:{p.library}", "PMB connector"),
            ("timeline", f"http://127.0.0.1:{p.timeline}", "notifications, feeds, e-mail digests"),
            ("support", f"http://127.0.0.1:{p.support}", "help requests, desks, knowledge base"),
            ("observatory", f"http://127.0.0.1:{p.observatory}", "the observatory of uses: dashboards, exports"),
            ("mailpit", f"http://localhost:{p.mailpit}", f"the e-mails sent (Mailpit; SMTP on port {p.smtp})"),
            ("keycloak", f"http://localhost:{p.keycloak}", "realm maille; admin console /admin (admin / admin)"),
            (
                "educonnect",
                f"http://localhost:{p.educonnect}",
                "EduConnect peer (SAML): pupils, parents — AAF join key / demo",
            ),
            (
                "academie",
                f"http://localhost:{p.academie}",
                "académie agents' IdP peer (SAML): staff — AAF join key / demo",
            ),
            (
                "gar",
                f"http://localhost:{p.gar}/sp/login",
                "GAR peer (SAML SP): shows the assertion Maille sends the GAR",
            ),
            (
                "gar-list",
                f"https://localhost:{p.gar_resources}",
                f"GAR peer's resource list (client certificates of {self.var / 'pki'})",
            ),
            (
                "pmb",
                f"http://localhost:{p.pmb}/opac/cdi<UAI>/",
                "PMB peer: the CDIs' catalogues (JSON-RPC) and OPACs (sign-on through Keycloak)",
            ),
            (
                "metrics",
                f"http://127.0.0.1:{p.gateway_metrics}/metrics",
                "Prometheus metrics of the gateway; identity, catalog, messaging, library, timeline, support, "
                "observatory on the next ports "
                f"({self.var / 'run' / 'metrics-targets.json'})",
            ),
            ("nats", f"nats://127.0.0.1:{p.nats}", f"JetStream, data in {self.var / 'nats'}"),
            (
                "docstore",
                self.external_mongodb or f"mongodb://127.0.0.1:{p.docstore}",
                "MongoDB (MONGODB_URL)"
                if self.external_mongodb
                else f"FerretDB on SQLite, data in {self.var / 'docstore'}",
            ),
        ]
        width = max(len(r[1]) for r in rows)
        lines = [f"  {name:<10} {where:<{width}}  {what}" for name, where, what in rows]
        return "\n".join(
            ["Maille is running:", *lines, f"  logs in {self.logs}/", "Ctrl-C or `make stop` stops everything."]
        )

    def watch(self, stop: threading.Event) -> None:
        """Wait for `stop`, saying so when a part dies on its own."""
        reported: set[str] = set()
        while not stop.wait(1.0):
            for name, part in self.started:
                process: Process = part.process
                if name not in reported and not process.running():
                    reported.add(name)
                    self.echo(
                        f"!! {name} exited ({process.popen.returncode if process.popen else '?'}); its "
                        f"log:\n{process.tail(15)}"
                    )

    def stop(self) -> None:
        """Stop everything, in reverse order."""
        for name, part in reversed(self.started):
            self.echo(f"stopping {name}…")
            part.stop()
        self.started.clear()
        state_file(self.var).unlink(missing_ok=True)


def bus_passwords(var: Path) -> dict[str, str]:
    """Each deployable's NATS password, made at the first start and kept in .var/nats-users.json (readable by you
    alone): what an operator's command run against `make run`'s NATS uses as well."""
    path = var / "nats-users.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    passwords = {name: known.get(name) or os.urandom(16).hex() for name in USERS}
    if passwords != known:
        var.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(passwords, indent=1))
        path.chmod(0o600)
    return passwords


def link_local_account(identity_env: dict[str, str], username: str, person_id: str) -> None:
    """`maille-identity link-account`: identity links a local account of the realm to a directory person."""
    linked = subprocess.run(
        [str(bin_of("maille-identity")), "link-account", username, person_id],
        env={**os.environ, **identity_env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if linked.returncode != 0:
        raise NotReady(f"{username} could not be linked to {person_id}: {linked.stderr.strip()[-500:]}")


def demo_people(mongodb_url: str) -> dict[str, dict]:
    """A pupil with a parent, that parent, a teacher and a principal, from the demo directory (identity's database;
    a set-up step of the developer's platform, not a service reading another's data)."""
    from pymongo import MongoClient

    with MongoClient(mongodb_url, serverSelectionTimeoutMS=5000) as client:
        persons = client["maille_identity"]["persons"]
        present = {"detached_at": {"$exists": False}}  # a later full feed may have detached the first ones found
        pupil = next((p for p in persons.find({"kind": "pupil", **present}).limit(200) if p.get("relatives")), {})
        parent = persons.find_one({"_id": pupil["relatives"][0]["person"], **present}) if pupil else None
        teacher = next(
            (
                p
                for p in persons.find({"kind": "staff", **present}).limit(500)
                if any(pr.get("code") == "National_ENS" for pr in p.get("profiles", []))
            ),
            {},
        )
        principal = next(
            (
                p
                for p in persons.find({"kind": "staff", **present}).limit(500)
                if any(f.get("code") == "DIR" for f in p.get("functions", []))
            ),
            {},
        )
    return {
        "demo-eleve": pupil,
        "demo-parent": parent or {},
        "demo-enseignant": teacher,
        "demo-direction": principal or {},
    }


def demo_schools(mongodb_url: str) -> list[str]:
    """The UAIs of the demo directory's schools (identity's database, as demo_people)."""
    from pymongo import MongoClient

    with MongoClient(mongodb_url, serverSelectionTimeoutMS=5000) as client:
        return sorted(s["_id"] for s in client["maille_identity"]["structures"].find({}, {"_id": 1}))


def command_env(name: str) -> dict[str, str]:
    """The environment an operator's command of deployable `name` (`maille-identity import-aaf`…) needs against the
    platform `make run` started: development, its NATS user and password, the docstore, Keycloak."""
    ports = Ports(**json.loads(os.environ.get("MAILLE_DEVSTACK_PORTS", "{}")))
    var = Path(os.environ.get("MAILLE_DEVSTACK_VAR", str(VAR)))
    users = var / "nats-users.json"
    if not users.exists():
        raise NotReady(f"no {users}: start the platform first (make run)")
    return service_env(
        name,
        nats_url=f"nats://127.0.0.1:{ports.nats}",
        mongodb_url=os.environ.get("MONGODB_URL") or f"mongodb://127.0.0.1:{ports.docstore}",
        routes={},
        keycloak_url=f"http://127.0.0.1:{ports.keycloak}" if name == "identity" else "",
        nats_password=json.loads(users.read_text())[name],
    )


def run() -> int:
    """Start the platform in the foreground until Ctrl-C or SIGTERM."""
    # MAILLE_DEVSTACK_PORTS (JSON, e.g. {"gateway": 9000}) and MAILLE_DEVSTACK_VAR move a second
    # platform out of the way of the first (the tests use them).
    ports = Ports(**json.loads(os.environ.get("MAILLE_DEVSTACK_PORTS", "{}")))
    var = Path(os.environ.get("MAILLE_DEVSTACK_VAR", str(VAR)))
    # MAILLE_DEVSTACK_REPLICAS=2: two replicas of each service behind a balancer (nginx), as Kubernetes runs them.
    stack = Stack(
        ports=ports,
        var=var,
        mongodb_url=os.environ.get("MONGODB_URL") or None,
        echo=lambda s: print(s, flush=True),
        replicas=int(os.environ.get("MAILLE_DEVSTACK_REPLICAS", "1")),
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    try:
        stack.start()
    except Exception as exc:
        print(f"could not start: {exc}", file=sys.stderr, flush=True)
        stack.stop()
        return 1
    print(f"\n{stack.describe()}\n(up in {time.monotonic() - started:.0f}s)", flush=True)
    try:
        stack.watch(stop)
    finally:
        stack.stop()
    return 0


def stop_running() -> int:
    """Stop a platform started by `run` in another terminal (`make stop`)."""
    path = state_file(Path(os.environ.get("MAILLE_DEVSTACK_VAR", str(VAR))))
    if not path.exists():
        print("Maille is not running (no state file).")
        return 0
    state = json.loads(path.read_text())
    # Ask the foreground `run` to stop everything in order; then make sure nothing is left.
    try:
        os.kill(state["devstack"], signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and path.exists():
            time.sleep(0.2)
    except ProcessLookupError:
        pass
    pids: dict[str, int] = state["parts"]
    for name, pid in reversed(list(pids.items())):
        try:
            os.killpg(pid, signal.SIGTERM)
            print(f"stopping {name} ({pid})…")
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 30
    for pid in pids.values():
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return 0


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True
