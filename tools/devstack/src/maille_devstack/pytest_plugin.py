"""Pytest fixtures that start the real parts on free ports in temporary directories.

They neither need nor disturb a running `make run`. NATS and the docstore are started once per test
session, Keycloak too (only when a test asks for it); `nats_factory` gives a test its own NATS when it
must stop and restart it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from maille_devstack.keycloak_admin import (
    admin_client,
    audience_mappers,
    confidential_client,
    enable_user_attributes,
    ensure_service_client,
    ensure_user,
    ent_id_mapper,
    gateway_client,
    grant_roles,
)
from maille_devstack.processes import (
    DocstoreServer,
    KeycloakServer,
    MailpitServer,
    NatsServer,
    RedmineServer,
    ServiceProcess,
    free_port,
)
from maille_kit.bus import Bus, Stream
from maille_kit.docstore import Docstore


@pytest.fixture(scope="session")
def devstack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's directory for data and logs of the parts it starts."""
    return tmp_path_factory.mktemp("devstack")


@pytest.fixture(scope="session")
def nats_server(devstack_dir: Path) -> Iterator[NatsServer]:
    """A real nats-server with JetStream, for the whole session."""
    server = NatsServer(port=free_port(), store_dir=devstack_dir / "nats", log_dir=devstack_dir / "log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_factory(tmp_path: Path) -> Iterator[Callable[[], NatsServer]]:
    """Makes NATS servers of the test's own (stopped at the end of the test)."""
    servers: list[NatsServer] = []

    def make() -> NatsServer:
        server = NatsServer(port=free_port(), store_dir=tmp_path / f"nats{len(servers)}", log_dir=tmp_path / "log")
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def service_settings(
    nats_factory: Callable[[], NatsServer], docstore_server: DocstoreServer, keycloak_clients: KeycloakClients
) -> dict[str, Any]:
    """The settings a service under test takes from the test's parts: a NATS of the test's own (which it may stop),
    a database of its own on the session's docstore, and the test Keycloak's realm as the issuer of the tokens."""
    return {
        "nats_url": nats_factory().url,
        "mongodb_url": docstore_server.url,
        "database": f"test_{uuid.uuid4().hex[:12]}",
        "auth_issuer": keycloak_clients.issuer,
    }


@pytest.fixture(scope="session")
def docstore_server(devstack_dir: Path) -> Iterator[DocstoreServer]:
    """A real MongoDB-wire docstore (FerretDB on SQLite), for the whole session."""
    server = DocstoreServer(port=free_port(), data_dir=devstack_dir / "docstore", log_dir=devstack_dir / "log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redmine_server(devstack_dir: Path) -> Iterator[RedmineServer]:
    """Debian's Redmine for the whole session (a desk's tracker): its REST API on, a project with the custom fields a
    desk needs; `desk` says how a desk connects to it."""
    server = RedmineServer(port=free_port(), data_dir=devstack_dir / "redmine", log_dir=devstack_dir / "log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mailpit_server(devstack_dir: Path) -> Iterator[MailpitServer]:
    """A real SMTP server (Mailpit) for the whole session; its API tells what it received."""
    server = MailpitServer(
        smtp_port=free_port(), http_port=free_port(), data_dir=devstack_dir / "mailpit", log_dir=devstack_dir / "log"
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def keycloak_server(devstack_dir: Path) -> Iterator[KeycloakServer]:
    """A real Keycloak with the realm `maille` imported, once per session (it takes a while to start)."""
    server = KeycloakServer(port=free_port(), log_dir=devstack_dir / "log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def database_name() -> str:
    """A database of the test's own on the shared docstore."""
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def docstore(docstore_server: DocstoreServer, database_name: str) -> AsyncIterator[Docstore]:
    """The test's own database on the shared docstore (dropped afterwards), through the kit's client."""
    store = Docstore(docstore_server.url, database_name, app_name="maille-tests")
    await store.detect()
    yield store
    await store.client.drop_database(database_name)
    await store.close()


@pytest.fixture
def service_factory(
    nats_server: NatsServer, docstore_server: DocstoreServer, tmp_path: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    """Starts Maille deployables as real processes on the session's NATS and docstore."""
    started: list[ServiceProcess] = []

    def start(
        name: str, *, env: dict[str, str] | None = None, wait: bool = True, port: int | None = None
    ) -> ServiceProcess:
        prefix = f"MAILLE_{name.upper()}_"
        base = {
            f"{prefix}NATS_URL": nats_server.url,
            f"{prefix}MONGODB_URL": docstore_server.url,
            f"{prefix}DATABASE": f"test_{name}_{uuid.uuid4().hex[:8]}",
            f"{prefix}NATS_CONNECT_TIMEOUT": "5",
        }
        service = ServiceProcess(name, port=port or free_port(), env={**base, **(env or {})}, log_dir=tmp_path / "log")
        started.append(service)
        if wait:
            service.start()
        else:
            service.process.start()
        return service

    yield start
    for service in started:
        service.stop()


async def publish_event(bus: Any, type: str, payload: Any, tenant: str = "ac-test") -> str:
    """An event as its service publishes it (its envelope, JetStream, `Nats-Msg-Id`); its id."""
    from maille_kit.events import make_envelope

    envelope = make_envelope(type=type, tenant=tenant, source=type.split(".")[0], payload=payload)
    await bus.js.publish(envelope.type, envelope.SerializeToString(), headers={"Nats-Msg-Id": envelope.id})
    return str(envelope.id)


async def persons_known(bus: Any, collection: Any, persons: Any) -> None:
    """Identity's person events for `persons`, published; back once `collection` (a service's copy) holds the last."""
    for person in persons:
        await publish_event(bus, "identity.person.created.v1", _person_created(person))
    last = persons[-1].id

    async def known() -> bool:
        return await collection.find_one({"_id": last}) is not None

    await until(known, f"person {last}")


def _person_created(person: Any) -> Any:
    from maille.identity.v1 import directory_pb2

    return directory_pb2.PersonCreated(person=person)


async def until(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Wait until `condition()` (awaited when it gives an awaitable) gives something true — what a service does in
    the background shows — and return it; fail naming `what` after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def serving_peer(
    app: Any, *, scheme: str = "http", tries: int = 3, timeout: float = 10, **config: Any
) -> AsyncIterator[int]:
    """Serve `app` (a peer of a national system) with uvicorn in this event loop on a free port of the
    loopback, for the block; its port. The start has a deadline, and a port taken meanwhile by another
    process is tried again on another one (uvicorn ends its task when it cannot bind)."""
    for _ in range(tries):
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, **config)
        )
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        task = asyncio.create_task(server.serve())
        deadline = asyncio.get_running_loop().time() + timeout
        while not server.started and not task.done() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        if server.started:
            break
        server.should_exit = True
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 5)
    else:
        raise AssertionError(f"the {scheme} peer did not start on the loopback in {tries} tries")
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run `app` in the test's own process (lifespan and all) and talk to it over ASGI."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


# The identity service's stream as identity makes it: the tests of a service that follows the directory publish
# identity's events there themselves.
IDENTITY_STREAM = Stream(
    name="IDENTITY", subjects=("identity.>",), description="facts published by the identity service"
)


@asynccontextmanager
async def running_on_bus(app: FastAPI, streams: Sequence[Stream] = ()) -> AsyncIterator[tuple[httpx.AsyncClient, Bus]]:
    """`app` running (as `running`), with its own bus: the test publishes there what other services would, on
    `streams` made as their owners make them."""
    async with running(app) as client:
        bus: Bus = app.state.runtime.bus
        await bus.ensure_streams(list(streams))
        yield client, bus


class KeycloakClients:
    """Makes API clients in the test Keycloak's realm `maille` (client credentials), with realm roles,
    and fetches their tokens — through Keycloak's own admin API, as an operator would."""

    def __init__(self, server: KeycloakServer) -> None:
        self.server = server
        self.issuer = f"{server.url}/realms/maille"

    def _admin(self) -> httpx.Client:
        return admin_client(self.server.url, self.server.admin_user, self.server.admin_password)

    def browser_client(self, gateway_url: str, *, token_seconds: int | None = None) -> tuple[str, str]:
        """A browser sign-in client for a gateway at `gateway_url`; (client id, secret)."""
        client_id, secret = f"test-gateway-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        with self._admin() as admin:
            gateway_client(admin, client_id, secret, gateway_url, token_seconds=token_seconds)
        return client_id, secret

    def user(self, *, password: str, ent_id: str | None = None, roles: tuple[str, ...] = ()) -> str:
        """A new local user of the realm (linked to directory person `ent_id` if given); their username."""
        username = f"user-{uuid.uuid4().hex[:8]}"
        with self._admin() as admin:
            enable_user_attributes(admin)
            user_id = ensure_user(
                admin, username, password, first="Test", last="User", attributes={"ent_id": [ent_id]} if ent_id else {}
            )
            grant_roles(admin, user_id, roles)
        return username

    def make(self, *, roles: tuple[str, ...] = (), audience: str | None = None) -> tuple[str, str]:
        """A new confidential client with a service account holding `roles`; (client id, secret)."""
        client_id, secret = f"test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        with self._admin() as admin:
            ensure_service_client(admin, client_id, secret, roles=roles, audience=audience)
        return client_id, secret

    def token(self, client_id: str, secret: str) -> str:
        """An access token of the client (client credentials grant)."""
        return (
            httpx.post(
                f"{self.issuer}/protocol/openid-connect/token",
                data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
                timeout=30,
            )
            .raise_for_status()
            .json()["access_token"]
        )


@pytest.fixture(scope="session")
def keycloak_clients(keycloak_server: KeycloakServer) -> KeycloakClients:
    """API clients and their tokens from the session's real Keycloak."""
    return KeycloakClients(keycloak_server)


def make_person_login(
    clients: KeycloakClients, *, ent_id: str, audience: str | None = None, roles: tuple[str, ...] = ()
) -> str:
    """A Keycloak user linked to the directory person `ent_id` (attribute and token claim `ent_id`), and a
    token of theirs (password grant of a test client): what federation (issue 5) gives a signed-in person."""
    username, password = f"user-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    client_id, secret = f"test-login-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with clients._admin() as admin:
        enable_user_attributes(admin)
        admin.post(
            "/users",
            json={
                "username": username,
                "enabled": True,
                "firstName": "Test",
                "lastName": "User",
                "email": f"{username}@example.org",
                "emailVerified": True,
                "attributes": {"ent_id": [ent_id]},
                "credentials": [{"type": "password", "value": password, "temporary": False}],
            },
        ).raise_for_status()
        if roles:
            user_id = (
                admin.get("/users", params={"username": username, "exact": "true"}).raise_for_status().json()[0]["id"]
            )
            grant_roles(admin, user_id, tuple(roles))
        mappers = [*audience_mappers(audience), ent_id_mapper()]
        body = confidential_client(client_id, secret, mappers, directAccessGrantsEnabled=True)
        admin.post("/clients", json=body).raise_for_status()
    return (
        httpx.post(
            f"{clients.issuer}/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": client_id,
                "client_secret": secret,
                "username": username,
                "password": password,
            },
            timeout=30,
        )
        .raise_for_status()
        .json()["access_token"]
    )


@dataclass
class ServiceUnderTest:
    """A service running in the test's process (`running_on_bus`): its ASGI client, its app, its bus and the test
    Keycloak, with what its tests do through them. A subclass names the service's token audience and API prefix,
    and adds its own parts (a peer, a mailbox)."""

    client: httpx.AsyncClient
    service: FastAPI
    bus: Bus
    keycloak: KeycloakClients
    tokens: dict[str, str] = field(default_factory=dict, kw_only=True)
    audience: ClassVar[str] = "maille"
    api: ClassVar[str] = ""

    def runtime(self) -> Any:
        return self.service.state.runtime

    def part(self, kind: type[Any]) -> Any:
        return self.runtime().parts.get(kind)

    def as_person(self, ent_id: str, *roles: str) -> dict[str, str]:
        """Headers of directory person `ent_id` signed in through Keycloak (a real token, checked in full)."""
        key = f"{ent_id}:{','.join(roles)}"
        if key not in self.tokens:
            self.tokens[key] = make_person_login(self.keycloak, ent_id=ent_id, audience=self.audience, roles=roles)
        return {"authorization": f"Bearer {self.tokens[key]}"}

    async def publish(self, type: str, payload: Any, tenant: str = "ac-test") -> str:
        """An event of another service (identity's, messaging's…), as that service publishes it; its id."""
        return await publish_event(self.bus, type, payload, tenant)

    async def call(self, method: str, path: str, who: str, *roles: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, f"{self.api}{path}", headers=self.as_person(who, *roles), **kwargs)

    async def ok(self, method: str, path: str, who: str, *roles: str, **kwargs: Any) -> Any:
        """`call`, which must succeed: its JSON (none for an empty answer; the response itself for another kind)."""
        answer = await self.call(method, path, who, *roles, **kwargs)
        assert answer.status_code in (200, 201, 204), answer.text
        if not answer.content:
            return None
        return answer.json() if answer.headers.get("content-type", "").startswith("application/json") else answer
