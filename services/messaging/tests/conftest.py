"""Messaging under test: the real identity service (a process) answering the communication rules on a
directory imported from a synthetic AAF feed, the session's NATS, docstore and Keycloak, and the
messaging service in the test's own process."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from maille_devstack.paths import bin_of
from maille_devstack.processes import DocstoreServer, NatsServer, ServiceProcess, free_port
from maille_devstack.pytest_plugin import KeycloakClients, make_person_login, running
from maille_messaging.main import app
from maille_messaging.settings import MessagingSettings

TENANT = "ac-messaging"


@dataclass
class Directory:
    """Who is who in the imported directory (read from identity's own database, as a test may)."""

    uai: str
    pupils: dict[str, list[str]]  # class id -> pupils
    teachers: list[str]
    parents_of: dict[str, list[str]]  # pupil -> parents
    names: dict[str, str]
    classes_of: dict[str, list[str]]  # teacher -> taught classes
    env: dict[str, str]
    feed: Path

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [str(bin_of("maille-identity")), *args], env={**os.environ, **self.env}, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


@pytest.fixture(scope="session")
def directory(
    nats_server: NatsServer, docstore_server: DocstoreServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Directory]:
    """Identity running on a school of about 700 persons (pupils in classes, their parents, teachers and staff)."""
    base = tmp_path_factory.mktemp("messaging-directory")
    database = f"test_identity_{uuid.uuid4().hex[:8]}"
    env = {
        "MAILLE_IDENTITY_NATS_URL": nats_server.url,
        "MAILLE_IDENTITY_MONGODB_URL": docstore_server.url,
        "MAILLE_IDENTITY_DATABASE": database,
        "MAILLE_IDENTITY_TENANT": TENANT,
    }
    identity = ServiceProcess("identity", port=free_port(), env=env, log_dir=base / "log")
    identity.start()
    try:
        feed = base / "feed"
        directory = Directory(
            uai="", pupils={}, teachers=[], parents_of={}, names={}, classes_of={}, env=env, feed=feed
        )
        directory.run("generate-aaf", str(feed), "--persons", "700", "--schools", "1")
        directory.run("import-aaf", str(feed), "--report", str(base / "report.txt"))
        with MongoClient(docstore_server.url) as client:
            persons = list(client[database].persons.find({}))
        pupils: dict[str, list[str]] = defaultdict(list)
        for doc in persons:
            directory.names[doc["_id"]] = f"{doc.get('first_name', '')} {doc.get('last_name', '')}".strip()
            codes = {p["code"] for p in doc.get("profiles", [])}
            if doc.get("kind") == "pupil":
                for cls in doc.get("classes", []):
                    pupils[cls].append(doc["_id"])
                directory.uai = doc["profiles"][0]["structure"]
            elif doc.get("kind") == "parent":
                for child in doc.get("children", []):
                    directory.parents_of.setdefault(child, []).append(doc["_id"])
            elif "National_ENS" in codes and doc.get("classes"):
                directory.teachers.append(doc["_id"])
                directory.classes_of[doc["_id"]] = list(doc["classes"])
        directory.pupils = {cls: sorted(ids) for cls, ids in pupils.items()}
        yield directory
    finally:
        identity.stop()


@dataclass
class Mail:
    """A messaging service under test and people signed in to it."""

    client: httpx.AsyncClient
    service: Any
    keycloak: KeycloakClients
    directory: Directory
    _tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    def who(self, person: str, *roles: str) -> dict[str, str]:
        """Headers of a person signed in through Keycloak (a real token, checked in full)."""
        key = f"{person}/{','.join(roles)}"
        if key not in self._tokens:
            token = make_person_login(self.keycloak, ent_id=person, audience="maille-messaging", roles=roles)
            self._tokens[key] = {"authorization": f"Bearer {token}"}
        return self._tokens[key]

    async def send(self, sender: str, *, to: list[dict[str, str]], expect: int = 201, **fields: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/api/messaging/v1/messages",
            headers=self.who(sender),
            json={
                "to": to,
                "subject": fields.pop("subject", "Bonjour"),
                "body": fields.pop("body", "<p>Texte</p>"),
                **fields,
            },
        )
        assert response.status_code == expect, response.text
        return response.json()

    async def folder(self, person: str, folder: str = "inbox", **params: Any) -> dict[str, Any]:
        response = await self.client.get(
            f"/api/messaging/v1/folders/{folder}/messages", headers=self.who(person), params=params
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def counts(self, person: str) -> dict[str, tuple[int, int]]:
        response = await self.client.get("/api/messaging/v1/folders", headers=self.who(person))
        assert response.status_code == 200, response.text
        return {f["id"]: (f["total"], f["unread"]) for f in response.json()}


def person(pid: str) -> dict[str, str]:
    return {"type": "person", "id": pid}


def group(gid: str) -> dict[str, str]:
    return {"type": "group", "id": gid}


@pytest.fixture
async def mail(
    directory: Directory,
    nats_server: NatsServer,
    docstore_server: DocstoreServer,
    database_name: str,
    keycloak_clients: KeycloakClients,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Mail]:
    overrides = getattr(request, "param", {})
    settings = MessagingSettings(
        nats_url=nats_server.url,
        mongodb_url=docstore_server.url,
        database=database_name,
        tenant=TENANT,
        auth_issuer=keycloak_clients.issuer,
        **overrides,
    )
    service = app(settings)
    async with running(service) as client:
        yield Mail(client=client, service=service, keycloak=keycloak_clients, directory=directory)
