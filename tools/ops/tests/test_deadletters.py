"""`maille-ops deadletters` against a real NATS with Maille's users: the catalog's consumer of identity's events
fails on one event and sets it aside; the operator lists it, reads why, replays it once the cause is gone — the
catalog handles it, the messaging (which had handled it) does not see it twice — and drops what can never be
applied. The `ops` user reads dead letters and replays events, and can do nothing else."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from maille.identity.v1 import directory_pb2
from maille_devstack.processes import NatsServer, free_port
from maille_devstack.pytest_plugin import IDENTITY_STREAM as IDENTITY
from maille_kit.bus import Bus, dead_letter_stream
from maille_kit.busauth import USERS, authorization
from maille_kit.consumer import EventConsumer
from maille_kit.docstore import Docstore
from maille_kit.events import Event, make_envelope

OPS = str(Path(sys.executable).parent / "maille-ops")


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[tuple[NatsServer, dict[str, str], dict[str, Bus]]]:
    passwords = {name: os.urandom(12).hex() for name in USERS}
    server = NatsServer(
        port=free_port(), store_dir=tmp_path / "nats", log_dir=tmp_path / "log", authorization=authorization(passwords)
    )
    server.start()
    buses: dict[str, Bus] = {}
    for name in ("identity", "catalog", "messaging"):
        bus = Bus(server.url, name=f"test-{name}", user=name, password=passwords[name], inbox_prefix=f"_INBOX_{name}")
        await bus.connect(timeout=5)
        buses[name] = bus
    await buses["identity"].ensure_streams([IDENTITY])
    for name in ("catalog", "messaging"):
        await buses[name].ensure_streams([dead_letter_stream(name)])
    yield server, passwords, buses
    for bus in buses.values():
        await bus.close()
    server.stop()


async def ops(server: NatsServer, password: str, *args: str) -> tuple[int, str]:
    """maille-ops, as an operator runs it; its exit status and what it printed."""
    process = await asyncio.create_subprocess_exec(
        OPS,
        "deadletters",
        "--nats-url",
        server.url,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "MAILLE_OPS_NATS_PASSWORD": password},
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


def person_updated(person: str) -> bytes:
    payload = directory_pb2.PersonUpdated(person=directory_pb2.Person(id=person))
    return make_envelope(
        type="identity.person.updated.v1", tenant="t", source="identity", payload=payload
    ).SerializeToString()


async def until(condition, what: str, seconds: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


async def test_an_operator_reads_replays_and_drops_dead_letters(platform, docstore: Docstore) -> None:
    server, passwords, buses = platform
    handled: dict[str, list[str]] = {"catalog": [], "messaging": []}
    broken = {"f" * 24}  # the catalog cannot handle this person's update until the cause is fixed

    def handler(service: str):
        async def handle(event: Event) -> None:
            person = event.unpack(directory_pb2.PersonUpdated).person.id
            if service == "catalog" and person in broken:
                raise RuntimeError("the person's school is unknown")
            handled[service].append(person)

        return handle

    durables = {"catalog": "catalog-directory", "messaging": "messaging-erasures"}
    consumers = [
        EventConsumer(
            buses[service],
            docstore,
            service=service,
            durable=durables[service],
            stream="IDENTITY",
            subjects=("identity.>",),
            handler=handler(service),
            max_deliver=2,
            retry_delay=0.05,
        )
        for service in ("catalog", "messaging")
    ]
    for consumer in consumers:
        await consumer.start()
    try:
        for person in ("a" * 24, "f" * 24, "b" * 24):
            await buses["identity"].js.publish("identity.person.updated.v1", person_updated(person), timeout=5)
        await until(lambda: len(handled["messaging"]) == 3 and len(handled["catalog"]) == 2, "events handled")
        letters = dead_letter_stream("catalog").name
        for _ in range(100):
            if (await buses["catalog"].js.stream_info(letters)).state.messages == 1:
                break
            await asyncio.sleep(0.1)

        # Listed, with its consumer and reason; shown whole.
        code, out = await ops(server, passwords["ops"], "list")
        assert code == 0, out
        assert "catalog-directory" in out and "identity.person.updated.v1" in out and "1 dead letters" in out, out
        number = next(line.split()[1] for line in out.splitlines() if line.startswith("catalog "))
        code, out = await ops(server, passwords["ops"], "show", "catalog", number)
        assert code == 0 and "the person's school is unknown" in out and "handler failed 2 times" in out, out

        # The cause fixed, replayed: the catalog handles it, the messaging does not see it again.
        broken.clear()
        code, out = await ops(server, passwords["ops"], "replay", "catalog", number)
        assert code == 0 and "1 dead letters of catalog replayed" in out, out
        await until(lambda: "f" * 24 in handled["catalog"], "the replayed event handled by the catalog")
        await asyncio.sleep(1)
        assert handled["messaging"].count("f" * 24) == 1
        assert (await buses["catalog"].js.stream_info(letters)).state.messages == 0

        # A letter that can never be applied (an unreadable event) is dropped.
        broken.add("c" * 24)
        await buses["identity"].js.publish("identity.person.updated.v1", b"not an event", timeout=5)
        for _ in range(100):
            if (await buses["catalog"].js.stream_info(letters)).state.messages == 1:
                break
            await asyncio.sleep(0.1)
        code, out = await ops(server, passwords["ops"], "list", "catalog")
        assert "unreadable" in out, out
        code, out = await ops(server, passwords["ops"], "drop", "catalog", "--all")
        assert code == 0 and "1 dead letters of catalog dropped" in out, out
        assert (await buses["catalog"].js.stream_info(letters)).state.messages == 0

        # A number that is not there is said so; a wrong password is refused by NATS, clearly.
        code, out = await ops(server, passwords["ops"], "show", "catalog", "999")
        assert code == 1 and "no dead letter 999 for catalog" in out, out
        code, out = await ops(server, "wrong", "list")
        assert code == 2 and "NATS at" in out, out
    finally:
        for consumer in consumers:
            await consumer.stop()


async def test_the_ops_user_can_do_nothing_else(platform) -> None:
    server, passwords, buses = platform
    bus = Bus(server.url, name="test-ops", user="ops", password=passwords["ops"], inbox_prefix="_INBOX_ops")
    refused: list[str] = []

    async def heard(exc: Exception) -> None:
        refused.append(str(exc))

    bus._on_error = heard
    await bus.connect(timeout=5)
    try:
        with pytest.raises(Exception):  # noqa: B017 — not its subject: no stream acknowledges it (a timeout)
            await bus.js.publish("catalog.resource.published.v1", b"x", timeout=2)
        with pytest.raises(Exception):  # noqa: B017 — not a dead-letter stream: no answer (a timeout)
            await bus.js.stream_info("IDENTITY")
        await bus.nc.flush()
        assert any("permissions violation" in e.lower() for e in refused), refused
    finally:
        await bus.close()
