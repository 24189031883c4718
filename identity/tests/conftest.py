"""Fixtures for identity's integration tests: a NATS of the test's own and an outbox, on the real parts."""

from collections.abc import AsyncIterator, Callable

import pytest

from maille_devstack.processes import NatsServer
from maille_identity.events import STREAMS
from maille_kit.bus import Bus
from maille_kit.docstore import Docstore
from maille_kit.outbox import Outbox


@pytest.fixture
async def bus(nats_factory: Callable[[], NatsServer]) -> AsyncIterator[Bus]:
    """A bus on a NATS of the test's own, with identity's stream: what it holds was published by this test."""
    server = nats_factory()
    connection = Bus(server.url, name="maille-identity-tests")
    await connection.connect(timeout=10)
    await connection.ensure_streams(list(STREAMS))
    yield connection
    await connection.close()


@pytest.fixture
async def outbox(docstore: Docstore, bus: Bus) -> AsyncIterator[Outbox]:
    box = Outbox(docstore, bus, source="identity")
    box.start()
    yield box
    await box.stop()
