"""The bus is not open to every pod: a real NATS server with Maille's users and permissions
(`maille_kit.busauth`, what `make run`, compose and the charts configure), each deployable connecting as
itself. A service's credentials do what the service needs and nothing more."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.js.api import KeyValueConfig
from nats.js.errors import KeyNotFoundError

from maille.identity.v1 import directory_pb2
from maille_devstack.processes import NatsServer, free_port
from maille_kit.bus import Bus, Stream, dead_letter_stream
from maille_kit.busauth import USERS, authorization
from maille_kit.consumer import EventConsumer
from maille_kit.docstore import Docstore
from maille_kit.events import Event, make_envelope

IDENTITY = Stream(name="IDENTITY", subjects=("identity.>",))
SESSIONS = "maille_gateway_sessions"


@pytest.fixture
async def bus_of(tmp_path: Path) -> AsyncIterator:
    passwords = {name: os.urandom(12).hex() for name in USERS}
    server = NatsServer(
        port=free_port(), store_dir=tmp_path / "nats", log_dir=tmp_path / "log", authorization=authorization(passwords)
    )
    server.start()
    buses: list[Bus] = []
    errors: dict[str, list[str]] = {}

    async def connect(name: str, password: str | None = None) -> Bus:
        bus = Bus(
            server.url,
            name=f"test-{name}",
            user=name,
            password=passwords[name] if password is None else password,
            inbox_prefix=USERS[name].inbox_prefix,
        )
        errors[name] = []

        async def heard(exc: Exception) -> None:
            errors[name].append(str(exc))

        bus._on_error = heard  # what the server says back (permissions violations), kept for the test to read
        await bus.connect(timeout=5)
        buses.append(bus)
        return bus

    connect.errors = errors  # type: ignore[attr-defined]
    yield connect
    for bus in buses:
        await bus.close()
    server.stop()


def _person_updated(person: str) -> bytes:
    payload = directory_pb2.PersonUpdated(person=directory_pb2.Person(id=person))
    return make_envelope(
        type="identity.person.updated.v1", tenant="t", source="identity", payload=payload
    ).SerializeToString()


async def test_catalogs_credentials_cannot_publish_identity_events(bus_of) -> None:
    identity = await bus_of("identity")
    await identity.ensure_streams([IDENTITY])
    catalog = await bus_of("catalog")
    with pytest.raises(Exception):  # no stream ever acknowledges it: the server dropped it
        await catalog.js.publish("identity.person.updated.v1", _person_updated("f" * 24), timeout=2)
    await catalog.nc.flush()
    assert any(
        "permissions violation" in e.lower() and "identity.person.updated.v1" in e for e in bus_of.errors["catalog"]
    )
    assert (await identity.js.stream_info("IDENTITY")).state.messages == 0
    # Its own events it may publish (into its own stream).
    await catalog.ensure_streams([Stream(name="CATALOG", subjects=("catalog.>",))])
    assert (await catalog.js.publish("catalog.resource.published.v1", b"x", timeout=5)).stream == "CATALOG"
    # Nor may it delete another's stream.
    with pytest.raises(Exception):
        await catalog.js.delete_stream("IDENTITY")
    assert (await identity.js.stream_info("IDENTITY")).config.name == "IDENTITY"


async def test_only_the_gateway_reads_and_writes_the_sessions(bus_of) -> None:
    gateway = await bus_of("gateway")
    sessions = await gateway.js.create_key_value(KeyValueConfig(bucket=SESSIONS, ttl=600, history=1))
    await sessions.put("k1", b"sealed session")
    assert (await sessions.get("k1")).value == b"sealed session"
    catalog = await bus_of("catalog")
    with pytest.raises(Exception):
        kv = await catalog.js.key_value(SESSIONS)
        await kv.get("k1")
    # Nor by the KV's own subjects, nor by listening on the gateway's replies.
    heard: list[bytes] = []

    async def listen(message) -> None:
        heard.append(message.data)

    await catalog.nc.subscribe(f"$KV.{SESSIONS}.>", cb=listen)
    await catalog.nc.subscribe(f"{USERS['gateway'].inbox_prefix}.>", cb=listen)
    await catalog.nc.publish(f"$KV.{SESSIONS}.k1", b"forged")  # overwrite a session
    await catalog.nc.flush()
    await sessions.put("k2", b"another session")
    assert (await sessions.get("k2")).value == b"another session"
    await asyncio.sleep(0.3)
    assert heard == []
    assert (await sessions.get("k1")).value == b"sealed session"
    violations = " ".join(bus_of.errors["catalog"]).lower()
    assert "subscription" in violations and "publish" in violations
    with pytest.raises(KeyNotFoundError):
        await sessions.get("absent")


async def test_each_service_still_does_its_work(bus_of, docstore: Docstore) -> None:
    """identity publishes, catalog consumes it with its durable consumer; messaging asks identity's rules."""
    identity, catalog, messaging = await bus_of("identity"), await bus_of("catalog"), await bus_of("messaging")
    await identity.ensure_streams([IDENTITY, dead_letter_stream("identity")])
    await catalog.ensure_streams([dead_letter_stream("catalog")])
    got: list[Event] = []

    async def handle(event: Event) -> None:
        got.append(event)

    consumer = EventConsumer(
        catalog,
        docstore,
        service="catalog",
        durable="catalog-directory",
        stream="IDENTITY",
        subjects=("identity.person.>",),
        handler=handle,
    )
    await consumer.start()
    try:
        assert (
            await identity.js.publish("identity.person.updated.v1", _person_updated("a" * 24), timeout=5)
        ).stream == "IDENTITY"
        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.1)
        assert [e.type for e in got] == ["identity.person.updated.v1"]
    finally:
        await consumer.stop()

    async def answer(message) -> None:
        await message.respond(b"visibles")

    await identity.nc.subscribe("rpc.identity.rules.visibles.v1", queue="identity", cb=answer)
    await identity.nc.flush()
    assert (await messaging.nc.request("rpc.identity.rules.visibles.v1", b"?", timeout=5)).data == b"visibles"
    # The library may not ask the rules (it has no need to), nor may a wrong password connect at all.
    library = await bus_of("library")
    with pytest.raises(Exception):
        await library.nc.request("rpc.identity.rules.visibles.v1", b"?", timeout=1)
    with pytest.raises(Exception):
        await bus_of("catalog", password="wrong")
