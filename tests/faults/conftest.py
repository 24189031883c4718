"""A platform of the test's own for the fault tests: its own NATS and docstore (so that a test may `kill -9`
them), identity, messaging and catalog as real processes, a synthetic directory imported. Whoever dies is
started again on the same port and data; every wait has a deadline."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest
from pymongo import MongoClient

from maille_devstack.paths import bin_of
from maille_devstack.processes import DocstoreServer, NatsServer, ServiceProcess, free_port
from maille_devstack.pytest_plugin import KeycloakClients

TENANT = "ac-faults"
TAKEOVER = "3"  # seconds before a replica finishes what a dead one left (60 in production)


@dataclass
class Platform:
    work: Path
    nats: NatsServer
    docstore: DocstoreServer
    issuer: str
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def env(self, name: str) -> dict[str, str]:
        prefix = f"MAILLE_{name.upper()}_"
        return {
            f"{prefix}NATS_URL": self.nats.url,
            f"{prefix}MONGODB_URL": self.docstore.url,
            f"{prefix}DATABASE": f"faults_{name}",
            f"{prefix}TENANT": TENANT,
            f"{prefix}AUTH_ISSUER": self.issuer,
            f"{prefix}TAKEOVER_SECONDS": TAKEOVER,
            f"{prefix}ENVIRONMENT": "development",
            f"{prefix}NATS_GRACE_SECONDS": "60",
        }

    def start(self, name: str) -> ServiceProcess:
        service = self.services.get(name) or ServiceProcess(
            name, port=free_port(), env=self.env(name), log_dir=self.work / "log"
        )
        self.services[name] = service
        service.start(timeout=90)
        return service

    def identity(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """An operator's `maille-identity` command on this platform."""
        return subprocess.run(
            [str(bin_of("maille-identity")), *args],
            env={**os.environ, **self.env("identity")},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def db(self, name: str):
        return MongoClient(self.docstore.url, serverSelectionTimeoutMS=5000, timeoutMS=30_000)[f"faults_{name}"]

    def restart_nats(self, after: float = 2.0) -> None:
        """NATS `kill -9`ed: started again on its port and its JetStream store after `after` seconds."""
        self.nats.process.kill()
        time.sleep(after)
        self.nats.start()

    def restart_docstore(self, after: float = 2.0) -> None:
        self.docstore.process.kill()
        time.sleep(after)
        self.docstore.start()

    def stream(self, stream: str, subject: str, *, timeout: float = 30) -> list[tuple[str, bytes]]:
        """(message id, data) of every message the stream holds on `subject`, read by a consumer of the test's own."""

        async def read() -> list[tuple[str, bytes]]:
            connection = await nats.connect(self.nats.url, connect_timeout=5)
            try:
                js = connection.jetstream()
                info = await js.stream_info(stream)
                sub = await js.pull_subscribe(subject, stream=stream)
                found: list[tuple[str, bytes]] = []
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    try:
                        batch = await sub.fetch(500, timeout=1)
                    except TimeoutError:
                        break
                    for message in batch:
                        found.append((message.headers.get("Nats-Msg-Id", "") if message.headers else "", message.data))
                        await message.ack()
                    if batch and batch[-1].metadata.sequence.stream >= info.state.last_seq:
                        break
                return found
            finally:
                await connection.close()

        return asyncio.run(read())


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not after {timeout:.0f}s: {what}")


@pytest.fixture
def platform(tmp_path: Path, keycloak_clients: KeycloakClients) -> Iterator[Platform]:
    nats_server = NatsServer(
        port=free_port(), store_dir=tmp_path / "nats", log_dir=tmp_path / "log", name=f"faults-{uuid.uuid4().hex[:6]}"
    )
    docstore = DocstoreServer(port=free_port(), data_dir=tmp_path / "docstore", log_dir=tmp_path / "log")
    nats_server.start()
    docstore.start()
    platform = Platform(tmp_path, nats_server, docstore, keycloak_clients.issuer)
    try:
        yield platform
    finally:
        for service in platform.services.values():
            service.stop()
        docstore.stop()
        nats_server.stop()
