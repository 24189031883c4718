"""Fixtures for the kit's integration tests: a bus and a database on the real parts."""

from collections.abc import AsyncIterator

import pytest

from maille_devstack.processes import DocstoreServer, NatsServer
from maille_kit.bus import Bus
from maille_kit.docstore import Docstore


@pytest.fixture
async def docstore(docstore_server: DocstoreServer, database_name: str) -> AsyncIterator[Docstore]:
    store = Docstore(docstore_server.url, database_name, app_name="maille-kit-tests")
    await store.detect()
    yield store
    await store.client.drop_database(database_name)
    await store.close()


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Bus]:
    connection = Bus(nats_server.url, name="maille-kit-tests")
    await connection.connect(timeout=10)
    yield connection
    await connection.close()
