"""Fixtures for the kit's integration tests: a bus on the real NATS (the database comes from the devstack plugin)."""

from collections.abc import AsyncIterator

import pytest

from maille_devstack.processes import NatsServer
from maille_kit.bus import Bus


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Bus]:
    connection = Bus(nats_server.url, name="maille-kit-tests")
    await connection.connect(timeout=10)
    yield connection
    await connection.close()
